"""The floor of ``up`` (``benchmarks/replay.py``) replays recorded calls in their order: a
call waits for the very calls that had ended before it started, not for as many others."""

from __future__ import annotations

from benchmarks.replay import replay
from tests.helpers import Emulator

RECORDED_KEY = "0123abcd-0000-4000-8000-recorded0001"


def test_a_call_waits_for_the_calls_it_followed_not_for_any_that_ended_first(emulator: Emulator) -> None:
    # GIVEN a recording: a key created (0-1 s); a call that failed (0-2 s, it fails before
    # reaching the emulator in the replay too); then the created key's rotation enabled
    # (from 1.5 s): it followed the create only
    calls = [
        {"service": "kms", "operation": "create_key", "params": {"Description": "replayed"},
         "response": {"KeyMetadata": {"KeyId": RECORDED_KEY,
                                      "Arn": f"arn:aws:kms:eu-west-1:123456789012:key/{RECORDED_KEY}"}},
         "start": 0.0, "end": 1.0, "error": None},
        {"service": "sts", "operation": "get_caller_identity", "params": {"NoSuchParameter": "x"},
         "response": {}, "start": 0.0, "end": 2.0, "error": "ParamValidationError"},
        {"service": "kms", "operation": "enable_key_rotation", "params": {"KeyId": RECORDED_KEY},
         "response": {}, "start": 1.5, "end": 1.6, "error": None},
    ]
    # WHEN it is replayed against a fresh emulator
    _, errors = replay(calls, emulator.url, "eu-west-1", emulator.ca_bundle)
    # THEN only the recorded failure fails again: the rotation went to the replayed key
    assert errors == 1
    kms = emulator.client("kms")
    (key,) = kms.list_keys()["Keys"]
    assert key["KeyId"] != RECORDED_KEY
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
