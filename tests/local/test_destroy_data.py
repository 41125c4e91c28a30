"""``destroy`` never deletes data nobody declared, unless the user says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from modelops.errors import ApplyError
from modelops.local.apply import destroy, up
from tests.helpers import Emulator
from tests.local.helpers import copy_project

pytestmark = [pytest.mark.aws, pytest.mark.slow]

DATASET_BUCKET = "churn-dev-customers-123456789012"
CAPTURE_KEY = "capture/churn-classifier/churn-dev-churn-classifier/primary/2026/11/23/10/capture.jsonl"


def test_a_bucket_holding_undeclared_data_stops_destroy_until_the_user_opts_in(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    # GIVEN the churn dev environment, provisioned, whose endpoint captured a request
    spec = copy_project("churn", tmp_path / "project")
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    up(env, emulator.target(), spec.parent)
    s3 = emulator.client("s3")
    s3.put_object(Bucket=DATASET_BUCKET, Key=CAPTURE_KEY, Body=b'{"captureData": {}}\n')

    # WHEN destroy runs without the opt-in
    with pytest.raises(ApplyError, match=rf"bucket {DATASET_BUCKET} still holds objects .*--empty-buckets"):
        destroy(env, emulator.target(), spec.parent)
    # THEN the captured data is still there
    assert s3.get_object(Bucket=DATASET_BUCKET, Key=CAPTURE_KEY)["Body"].read() == b'{"captureData": {}}\n'

    # WHEN the user opts in THEN the rest goes, bucket and data included
    destroy(env, emulator.target(), spec.parent, empty_buckets=True)
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert DATASET_BUCKET not in names
    assert not [n for n in names if n.startswith("churn-dev-")]
