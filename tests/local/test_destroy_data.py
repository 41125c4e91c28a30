"""``destroy`` never deletes data nobody declared, unless the user says so; the data capture
of the endpoints it removes is theirs, and goes with them."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.ml.artifacts import attach_artifacts
from modelops.cli.main import main
from modelops.spec.envs import load_environment
from modelops.errors import ApplyError
from modelops.local.apply import destroy, up
from modelops.ml.monitor_run import run_monitors
from tests.helpers import Emulator
from tests.local.helpers import copy_project

pytestmark = [pytest.mark.aws, pytest.mark.slow]

DATASET_BUCKET = "churn-dev-customers-123456789012"
CAPTURE_PREFIX = "capture/churn-classifier/churn-dev-churn-classifier/"
#: a file a user put in the bucket by hand: no resource of the spec wrote it
UPLOAD_KEY = "uploads/notes.csv"


def test_a_bucket_holding_undeclared_data_stops_destroy_until_the_user_opts_in(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    # GIVEN the churn dev environment, provisioned, and a file a user uploaded to its bucket
    spec = copy_project("churn", tmp_path / "project")
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    up(env, emulator.target(), spec.parent)
    s3 = emulator.client("s3")
    s3.put_object(Bucket=DATASET_BUCKET, Key=UPLOAD_KEY, Body=b"a,b\n1,2\n")

    # WHEN destroy runs without the opt-in
    with pytest.raises(ApplyError, match=rf"bucket {DATASET_BUCKET} still holds objects .*--empty-buckets"):
        destroy(env, emulator.target(), spec.parent)
    # THEN the uploaded file is still there
    assert s3.get_object(Bucket=DATASET_BUCKET, Key=UPLOAD_KEY)["Body"].read() == b"a,b\n1,2\n"

    # WHEN the user opts in THEN the rest goes, bucket and data included
    destroy(env, emulator.target(), spec.parent, empty_buckets=True)
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert DATASET_BUCKET not in names
    assert not [n for n in names if n.startswith("churn-dev-")]


def test_destroy_after_serve_capture_to_env_removes_the_capture_with_the_endpoint(
    emulator: Emulator, artifact_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the churn dev environment, provisioned, and `modelops serve --capture-to-env dev`
    # capturing a request into its dataset bucket, as the endpoint does in AWS
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    up(env, emulator.target(), spec.parent)
    serve = subprocess.Popen(
        [sys.executable, "-m", "modelops", "serve", "churn-classifier", str(spec), "--env", "dev", "--port", "0",
         "--capture-to-env", "dev", "--endpoint-url", emulator.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle}, cwd=spec.parent,
    )
    try:
        lines = [serve.stdout.readline(), serve.stdout.readline()]
        port = int(lines[1].split("http://127.0.0.1:")[1].split()[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/invocations", body="32,62.84,0,month-to-month,bank-transfer",
                      headers={"Content-Type": "text/csv"})
        answer = conn.getresponse()
        assert answer.status == 200 and b"predictions" in answer.read()
        # a refused request on the same connection is answered once the first one's capture is
        # written (one thread per connection), and is not captured itself
        conn.request("POST", "/invocations", body="not,a,row", headers={"Content-Type": "text/csv"})
        assert conn.getresponse().status >= 400
        conn.close()
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    s3 = emulator.client("s3")
    captured = s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix=CAPTURE_PREFIX)["Contents"]
    assert [o["Key"].endswith(".jsonl") for o in captured] == [True]

    # WHEN the user destroys the environment, as the CLI does
    monkeypatch.setenv("AWS_CA_BUNDLE", emulator.ca_bundle)
    code = main(["destroy", str(spec), "--env", "dev", "--endpoint-url", emulator.url])
    # THEN it succeeds and nothing of the environment is left, its capture included
    assert code == 0
    assert not [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("churn-dev-")]


def test_destroy_removes_the_monitor_jobs_outputs_with_its_pipeline(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    # GIVEN the churn dev environment, provisioned, and its monitor job run once: results under
    # monitoring/<monitor>/ and shard statistics under monitoring/_stats/ of the dataset bucket
    spec = copy_project("churn", tmp_path / "project")
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    up(env, emulator.target(), spec.parent)
    run_monitors(env, emulator.target(), monitor="churn-drift")
    s3 = emulator.client("s3")
    written = [o["Key"] for o in s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix="monitoring/")["Contents"]]
    assert "monitoring/churn-drift/latest.json" in written
    assert any(k.startswith("monitoring/_stats/churn-classifier/") for k in written)

    # WHEN the environment is destroyed, without --empty-buckets
    destroy(env, emulator.target(), spec.parent)
    # THEN the job's outputs went with the bucket, and nothing of the environment is left
    assert not [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("churn-dev-")]
