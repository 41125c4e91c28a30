"""The ``modelops up`` / ``destroy`` / ``local`` commands as a user runs them: subprocesses,
exit codes, one-line errors, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from moto.server import ThreadedMotoServer

from modelops.cli.main import main
from modelops.errors import UsageError
from modelops.local import server
from modelops.local.emulator import install_missing_operations
from tests.helpers import FIXTURES, ROOT, Emulator
from tests.local.helpers import copy_project, env_buckets

pytestmark = [pytest.mark.aws, pytest.mark.slow]

MODELOPS = [sys.executable, "-m", "modelops"]
MISSPELLED = FIXTURES / "local" / "misspelled" / "modelops.yaml"


def modelops(*args: str, ca_bundle: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    return subprocess.run([*MODELOPS, *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd or ROOT, check=False)


def test_up_then_up_then_destroy_with_endpoint_url(
    emulator: Emulator, tmp_path: Path, artifact_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    # WHEN up runs against the server
    first = modelops("up", str(spec), "--env", "dev", "--endpoint-url", emulator.url, "--json",
                     ca_bundle=emulator.ca_bundle)
    # THEN it exits 0 with every resource created and every check passed
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["counts"] == {"created": len(result["resources"])} and all(c["ok"] for c in result["checks"])
    assert "Traceback" not in first.stderr
    # AND it says how long each part took: the spec check before the run, then the run's parts
    phases = result["phases"]
    assert list(phases) == ["check", "publish", "apply", "smoke_checks"] and all(v > 0 for v in phases.values())
    assert sum(v for k, v in phases.items() if k != "check") == pytest.approx(result["seconds"], abs=0.01)
    # AND a second run has nothing to do and says so (in-process: the same entry point)
    os.environ["AWS_CA_BUNDLE"] = emulator.ca_bundle
    try:
        code = main(["up", str(spec), "--env", "dev", "--endpoint-url", emulator.url])
    finally:
        del os.environ["AWS_CA_BUNDLE"]
    assert code == 0
    out = capsys.readouterr().out
    assert f"churn-dev: no changes; {len(result['resources'])} resources up to date" in out
    # AND the command it prints to inspect the target is one line, as it must be copied
    inspect = [line for line in out.splitlines() if line.startswith("inspect: ")]
    assert len(inspect) == 1 and inspect[0].endswith("--region eu-west-1 sagemaker list-endpoints"), out
    # AND destroy removes it all, with a plain table in a log (stdout not a terminal): one line per resource
    gone = modelops("destroy", str(spec), "--env", "dev", "--endpoint-url", emulator.url, ca_bundle=emulator.ca_bundle)
    assert gone.returncode == 0, gone.stderr
    lines = gone.stdout.splitlines()
    assert lines[0] == f"churn-dev at the moto server {emulator.url}"
    assert lines[1].split() == ["spec", "entity", "type", "AWS", "name", "or", "ARN", "action"]
    deleted = [line for line in lines[2:] if line.endswith(" deleted")]
    assert len(deleted) == len(result["resources"])
    assert all(r["label"] in gone.stdout for r in result["resources"])
    assert f"{len(result['resources'])} deleted in " in gone.stdout
    assert env_buckets(emulator.client("s3")) == []
    assert emulator.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_a_non_loopback_endpoint_is_refused(tmp_path: Path) -> None:
    done = modelops("up", str(ROOT / "modelops.yaml"), "--env", "dev", "--endpoint-url", "http://192.0.2.10:4566")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "only a local emulator on 127.0.0.1 is accepted" in done.stderr


def test_an_invalid_spec_provisions_nothing(emulator: Emulator) -> None:
    done = modelops("up", str(MISSPELLED), "--env", "dev", "--endpoint-url", emulator.url,
                    ca_bundle=emulator.ca_bundle)
    assert done.returncode == 2
    assert "modelops.yaml:14:7: models.scorer.serving.instance_cout: unknown key" in done.stderr
    assert "Traceback" not in done.stderr
    assert emulator.client("s3").list_buckets()["Buckets"] == []


def test_a_plain_moto_server_fails_with_the_reason_and_destroy_leaves_no_orphan(
    tmp_path: Path, artifact_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stock moto server (plain HTTP, no policy conditions); it gets the one operation
    # moto lacks that destroy needs, so that what is tested is the policy, not that gap
    install_missing_operations()
    plain = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    plain.start()
    try:
        host, port = plain.get_host_and_port()
        url = f"http://{host}:{port}"
        spec = copy_project("churn", tmp_path / "project", artifact_root)
        # WHEN up runs there (in-process, the CLI's entry point), the registry's TLS-only policy
        # denies the first package upload: exit 1 and the reason, on one line
        assert main(["up", str(spec), "--env", "dev", "--endpoint-url", url]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        message = err.strip().splitlines()[-1]
        assert message.startswith("error: publishing dev's packages to the registry s3://churn-registry-"), message
        assert "plain moto does not evaluate policy conditions" in message
        assert "nothing of dev was created" in message
        # AND destroy removes what was made
        assert main(["destroy", str(spec), "--env", "dev", "--endpoint-url", url]) == 0
        import boto3

        s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1")
        assert env_buckets(s3) == []
    finally:
        plain.stop()


def test_embedded_emulator_starts_once_is_reused_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "modelops.yaml"
    spec.write_text("# only the project root matters here\n")
    try:
        # WHEN two commands need the emulator
        url = server.endpoint_url(tmp_path)
        info = json.loads((tmp_path / ".modelops" / "local" / "server.json").read_text())
        # THEN one detached process on 127.0.0.1 serves both
        assert url.startswith("https://127.0.0.1:") and info["url"] == url
        assert server.endpoint_url(tmp_path) == url
        assert main(["local", "status", str(spec), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["running"] is True and status["pid"] == info["pid"]
        # AND it answers over TLS with its own certificate
        import boto3

        sts = boto3.client("sts", endpoint_url=url, verify=info["ca_bundle"], region_name="eu-west-1")
        assert sts.get_caller_identity()["Account"] == "123456789012"
        # WHEN stopped, it is gone, and `endpoint_url(start=False)` says how to start one
        assert main(["local", "stop", str(spec)]) == 0
        assert f"pid {info['pid']}" in capsys.readouterr().out
        assert server.status(tmp_path) is None
        with pytest.raises(Exception, match=r"no local emulator is running .* run `modelops up` first"):
            server.endpoint_url(tmp_path, start=False)
    finally:
        server.stop(tmp_path)


# --- the emulator record (.modelops/local/server.json) ------------------------------------------


@pytest.fixture
def listener() -> Iterator[subprocess.Popen]:
    """Another program on 127.0.0.1 (a plain HTTP server): alive, listening, not our emulator."""
    process = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 43210 (http://...) ..."
        process.port = int(line.split(" port ")[1].split()[0])  # type: ignore[attr-defined]
        yield process
    finally:
        process.kill()
        process.wait()


def _write_record(root: Path, **record: object) -> Path:
    path = root / ".modelops" / "local" / "server.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_local_stop_refuses_a_record_naming_a_process_that_is_not_our_emulator(
    tmp_path: Path, listener: subprocess.Popen
) -> None:
    # GIVEN a record naming another program's pid and port (a stale record whose pid was reused)
    spec = tmp_path / "modelops.yaml"
    spec.write_text("# only the project root matters here\n")
    record = _write_record(tmp_path, pid=listener.pid, port=listener.port, url=f"https://127.0.0.1:{listener.port}",
                           ca_bundle=str(tmp_path / "cert.pem"), token="0" * 32)
    # WHEN the user stops the emulator
    done = modelops("local", "stop", str(spec))
    # THEN it refuses on one line, exit 2, and the other program is not signalled
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert f"names pid {listener.pid}, which is not this project's emulator" in done.stderr
    assert "nothing was signalled" in done.stderr and str(record) in done.stderr
    assert listener.poll() is None


def test_local_stop_refuses_a_record_whose_pid_is_not_the_emulator_answering_its_url(
    tmp_path: Path, listener: subprocess.Popen, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN this project's emulator, and its record edited to name another program's pid
    spec = tmp_path / "modelops.yaml"
    spec.write_text("# only the project root matters here\n")
    info = server.start(tmp_path)
    try:
        _write_record(tmp_path, **{**info, "pid": listener.pid})
        # WHEN the user stops it, THEN neither process is signalled
        assert main(["local", "stop", str(spec)]) == 2
        err = capsys.readouterr().err
        assert f"the server at {info['url']} is pid {info['pid']}" in err
        assert listener.poll() is None and server._pid_alive(int(info["pid"]))
        # AND with the true record, stop stops the emulator
        _write_record(tmp_path, **info)
        assert main(["local", "stop", str(spec)]) == 0
        assert not server._pid_alive(int(info["pid"])) and server.status(tmp_path) is None
    finally:
        _write_record(tmp_path, **info)
        server.stop(tmp_path)


def test_a_record_naming_another_host_is_refused_like_the_endpoint_flag(
    tmp_path: Path, listener: subprocess.Popen
) -> None:
    # GIVEN a record whose process and port are alive but whose URL is on another host
    spec = tmp_path / "modelops.yaml"
    spec.write_text("# only the project root matters here\n")
    record = _write_record(tmp_path, pid=listener.pid, port=listener.port, url=f"https://192.0.2.10:{listener.port}",
                           ca_bundle=str(tmp_path / "cert.pem"), token="0" * 32)
    # WHEN a command reads it, THEN it is refused on one line naming the record, exit 2
    done = modelops("local", "status", str(spec))
    assert done.returncode == 2, done.stdout
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert f"{record}: url 'https://192.0.2.10:{listener.port}': only a local emulator on 127.0.0.1" in done.stderr
    # AND every reader of the record refuses it the same way: no target, no URL handed out
    for read in (lambda: server.Target.for_project(tmp_path), lambda: server.endpoint_url(tmp_path, start=False)):
        with pytest.raises(UsageError, match=r"only a local emulator on 127\.0\.0\.1 is accepted"):
            read()
    assert listener.poll() is None


def test_destroy_of_an_environment_never_made_starts_no_emulator(tmp_path: Path) -> None:
    # GIVEN a project that was never provisioned, and no emulator running for it
    spec = copy_project("churn", tmp_path / "project")
    try:
        # WHEN the user destroys its dev environment, then stops the emulator
        done = modelops("destroy", str(spec), "--env", "dev")
        as_json = modelops("destroy", str(spec), "--env", "dev", "--json")
        stopped = modelops("local", "stop", str(spec))
        # THEN destroy says there is nothing to destroy, and no emulator was started for it
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "churn-dev: nothing to destroy"
        assert as_json.returncode == 0 and json.loads(as_json.stdout)["resources"] == []
        assert stopped.returncode == 0 and "the local emulator was not running" in stopped.stdout
        assert not (spec.parent / ".modelops" / "local" / "server.json").exists()
    finally:
        server.stop(spec.parent)
