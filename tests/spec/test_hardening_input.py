"""Bad input, hardened: every mistake a YAML file can hold is a one-line problem, in bounded
CPU, and nothing is ever provisioned from it.

The corpus itself (exact messages) is run by tests/spec/test_invalid.py; here every case
also has to name a fix, finish in bounded CPU, and provision nothing through the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modelops.components import naming
from modelops.spec.envs import validate
from modelops.errors import SpecError
from modelops.spec.loader import MAX_BYTES, load_yaml
from tests.helpers import ROOT
from tests.spec.helpers import INVALID, expected_lines, invalid_cases, invalid_spec

CASES = invalid_cases()
#: a few invalid specs of different classes fed to `up` against a live server
UP_CASES = ["yaml-bad-indentation", "dangling-notify", "alias-bomb", "overlay-unknown-key", "circular-model-on-model"]
#: every class of mistake the brief names, each with at least one corpus case
CLASSES = {
    "yaml syntax": "yaml-unclosed-flow",
    "duplicate keys": "duplicate-key-nested",
    "wrong types": "wrong-type-instance-count",
    "unknown keys": "unknown-key-serving",
    "missing required": "missing-train-target",
    "dangling reference": "dangling-monitor-model",
    "circular reference (monitor on a monitor)": "circular-monitor-on-monitor",
    "circular reference (model on a model)": "circular-model-on-model",
    "duplicate names": "duplicate-name-across-kinds",
    "environment name too long": "overlay-env-name-too-long",
    "bad duration": "bad-duration",
    "bad threshold (nan)": "threshold-nan",
    "bad threshold (inf)": "threshold-inf",
    "overlay unknown key": "overlay-unknown-top-key",
    "overlay wrong type": "overlay-wrong-type",
    "alias bomb": "alias-bomb",
    "overlay alias bomb": "overlay-alias-bomb",
    "too deep": "too-deep",
    "binary": "binary-file",
    "non-utf-8": "non-utf8",
    "directory as spec": "spec-is-directory",
    "empty": "empty-file",
}


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("MODELOPS_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_every_class_of_mistake_has_a_corpus_case():
    missing = {label: name for label, name in CLASSES.items() if name not in CASES}
    assert not missing


@pytest.mark.parametrize("name", CASES)
def test_every_problem_names_place_path_and_fix(name, monkeypatch):
    monkeypatch.chdir(INVALID)
    problems = validate(invalid_spec(name))
    assert problems
    for problem in problems:
        assert problem.file and problem.line >= 1 and problem.column >= 1
        assert problem.fix, str(problem)
        # a problem inside the document names its spec path; a whole-file one (syntax, bytes) may not
        assert problem.path or problem.code.startswith(
            ("E-YAML", "E-BINARY", "E-ENCODING", "E-EMPTY", "E-ALIAS", "E-TOO-", "E-NOT-A-FILE", "E-TOP-LEVEL",
             "E-ENV-NAME")
        ), str(problem)


@pytest.mark.parametrize("name", CASES)
def test_each_case_takes_under_a_second_of_cpu(name, monkeypatch):
    # a bound on pathological inputs (alias bombs, deep nesting), not a speed target
    monkeypatch.chdir(INVALID)
    started = time.process_time()
    problems = validate(invalid_spec(name))
    spent = time.process_time() - started
    assert problems
    assert spent < 1.0, f"{name}: {spent:.2f}s of CPU"


def test_an_unreadable_path_is_a_problem_not_a_traceback(tmp_path):
    # GIVEN a "spec" below a regular file (ENOTDIR: unreadable even for root, unlike chmod 000)
    blocker = tmp_path / "modelops.yaml"
    blocker.write_text("apiVersion: modelops/v1\n")
    with pytest.raises(SpecError) as raised:
        load_yaml(blocker / "modelops.yaml")
    [problem] = raised.value.problems
    assert problem.code in ("E-UNREADABLE", "E-NOT-FOUND") and problem.fix
    # AND the CLI says so in one line, exit 2
    result = _cli("validate", str(blocker / "modelops.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_very_large_file_is_refused_before_it_is_read(tmp_path):
    # GIVEN a sparse file one byte over the limit (no 8 MiB written to disk)
    big = tmp_path / "modelops.yaml"
    with open(big, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)
    started = time.process_time()
    with pytest.raises(SpecError, match=r"larger than the 8,388,608-byte limit"):
        load_yaml(big)
    assert time.process_time() - started < 1.0
    # AND a 1 MiB file of 50,000 tags is answered with problems (not a hang, not a crash)
    big.write_text("apiVersion: modelops/v1\ntags:\n" + "".join(f"  k{i:014d}: v\n" for i in range(50_000)))
    started = time.process_time()
    problems = validate(big)
    assert problems and all(p.fix for p in problems if p.code != "E-SCHEMA-TYPE")
    assert time.process_time() - started < 20.0


def test_a_name_valid_in_one_environment_fits_every_environment():
    # The per-environment AWS limit cannot be exceeded: project <= 16, environment <= 10 and
    # names <= 20 characters are enforced by the schema, and the longest derived names fit.
    longest = naming.longest_names("p" * 16, "e" * 10, "n" * 20)
    assert {role: len(name) <= limit for role, (name, limit) in longest.items()} == dict.fromkeys(longest, True)
    # AND the closest mistakes are refused: an 11-character environment, a 17-character project
    assert expected_lines("overlay-env-name-too-long")[0].endswith("rename the overlay file, e.g. stacks/prod.yaml")
    assert "at most 16 allowed" in expected_lines("project-too-long")[0]
    assert naming.ENV_PATTERN.match("e" * 10) and not naming.ENV_PATTERN.match("e" * 11)


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _everything(url: str) -> dict[str, list]:
    def client(service):
        return boto3.client(service, endpoint_url=url, region_name="eu-west-1")

    return {
        "buckets": client("s3").list_buckets()["Buckets"],
        "roles": client("iam").list_roles()["Roles"],
        "topics": client("sns").list_topics()["Topics"],
        "keys": client("kms").list_keys()["Keys"],
        "models": client("sagemaker").list_models()["Models"],
        "alarms": client("cloudwatch").describe_alarms()["MetricAlarms"],
    }


@pytest.mark.aws
@pytest.mark.parametrize("name", UP_CASES)
def test_up_on_an_invalid_spec_exits_2_and_provisions_nothing(name, moto_url, tmp_path):
    # GIVEN an invalid spec and a live server
    spec = invalid_spec(name)
    env_name = "prod" if name.startswith("overlay") else "dev"
    # WHEN a user runs up against it
    result = _cli("up", spec, "--env", env_name, "--endpoint-url", moto_url, cwd=INVALID)
    # THEN exit 2 with the same one-line problems as validate, no traceback
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line.removeprefix("error: ") for line in result.stderr.splitlines()]
    assert lines and set(lines) <= set(expected_lines(name)), lines
    # AND nothing exists on the server, and no state was written
    assert _everything(moto_url) == {k: [] for k in ("buckets", "roles", "topics", "keys", "models", "alarms")}
    assert not (INVALID / ".modelops").exists()
    assert not list((INVALID / name).glob(".modelops")) if (INVALID / name).is_dir() else True


def test_a_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_yaml(tmp_path / "absent.yaml")


def test_a_fifo_given_as_the_spec_is_refused_not_waited_on(tmp_path):
    # GIVEN a named pipe with no writer as the spec (`modelops validate <(...)`-style mistakes)
    fifo = tmp_path / "modelops.yaml"
    os.mkfifo(fifo)
    # WHEN validated (in a subprocess: a hang must not hang the suite)
    try:
        result = _cli("validate", str(fifo), cwd=tmp_path, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("validate waited on the FIFO for 10 s")
    # THEN one line, exit 2
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a regular file" in result.stderr and "save the spec to a file" in result.stderr
