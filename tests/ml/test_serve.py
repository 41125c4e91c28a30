"""``modelops serve``: the SageMaker container contract over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import joblib
import numpy as np
import pytest

from modelops.errors import UsageError
from modelops.ml.serve import MAX_BODY_BYTES, LocalServer, LoadedModel, start_server
from tests.ml.helpers import Project, read_csv

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract", "payment_method"]


def request(server: LocalServer, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def invoke(server: LocalServer, body: bytes | str, content_type: str = "text/csv",
           accept: str = "application/json") -> tuple[int, str, bytes]:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return request(server, "POST", "/invocations", data, {"Content-Type": content_type, "Accept": accept})


def in_process_pipeline(path: str):
    with tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile("model.joblib")
        assert handle is not None
        return joblib.load(io.BytesIO(handle.read()))


def sample_rows(project: Project, n: int = 50) -> list[list[str]]:
    header, rows = read_csv(project.root / "data" / "customers.csv")
    index = [header.index(f) for f in FEATURES]
    return [[row[i] for i in index] for row in rows[:n]]


def as_matrix(rows: list[list[str]]) -> np.ndarray:
    out = np.empty((len(rows), len(FEATURES)), dtype=object)
    for r, row in enumerate(rows):
        out[r] = [float(row[0]), float(row[1]), float(row[2]), row[3], row[4]]
    return out


@pytest.fixture
def server(built_project: Project) -> Iterator[LocalServer]:
    srv = start_server(built_project.churn.artifact.path)
    try:
        yield srv
    finally:
        srv.stop()


def test_ping_answers_when_the_model_is_loaded(server: LocalServer) -> None:
    status, content_type, body = request(server, "GET", "/ping")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert server.url.startswith("http://127.0.0.1:")


def test_csv_predictions_equal_in_process_predictions(server: LocalServer, built_project: Project) -> None:
    rows = sample_rows(built_project)
    pipeline = in_process_pipeline(built_project.churn.artifact.path)
    expected = pipeline.predict(as_matrix(rows))
    expected_proba = pipeline.predict_proba(as_matrix(rows))[:, 1]

    status, content_type, body = invoke(server, "\n".join(",".join(r) for r in rows))
    assert status == 200 and content_type == "application/json"
    answer = json.loads(body)
    assert answer["predictions"] == [int(v) for v in expected]
    assert answer["probabilities"] == pytest.approx(list(expected_proba), abs=1e-12)
    assert set(answer["predictions"]) == {0, 1}  # the sample has both classes: not a constant answer


def test_json_records_rows_and_csv_accept_agree(server: LocalServer, built_project: Project) -> None:
    rows = sample_rows(built_project, 10)
    records = [
        {"tenure_months": float(r[0]), "monthly_charges": float(r[1]), "support_calls": int(r[2]),
         "contract": r[3], "payment_method": r[4]}
        for r in rows
    ]
    by_records = json.loads(invoke(server, json.dumps(records), "application/json")[2])
    by_instances = json.loads(invoke(server, json.dumps({"instances": [list(x.values()) for x in records]}),
                                     "application/json")[2])
    by_csv = json.loads(invoke(server, "\n".join(",".join(r) for r in rows))[2])
    assert by_records == by_instances == by_csv

    status, content_type, body = invoke(server, "\n".join(",".join(r) for r in rows), accept="text/csv")
    assert status == 200 and content_type == "text/csv"
    lines = body.decode().strip().split("\n")
    assert [int(line.split(",")[0]) for line in lines] == by_csv["predictions"]
    assert [float(line.split(",")[1]) for line in lines] == pytest.approx(by_csv["probabilities"])


def test_regressor_serves_numbers(built_project: Project) -> None:
    with start_server(built_project.amount.artifact.path) as srv:
        status, _, body = invoke(srv, "3,0.5,10.0,200\n14,0.1,2.0,3000")
    assert status == 200
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 2 and all(isinstance(p, float) for p in predictions)
    # riskier merchant, farther, newer card, night: a larger expected amount (data generating process)
    assert predictions[0] > predictions[1]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ("1,2,3", "text/csv", 400, r"row 1: expected 5 values"),
        ("12,lots,1,month-to-month,credit-card", "text/csv", 400, r"column 2 \(monthly_charges\): 'lots' is not a number"),
        ("{not json", "application/json", 400, r"not valid JSON"),
        ('[{"tenure_months": 1}]', "application/json", 400, r"missing feature\(s\) monthly_charges"),
        ("[]", "application/json", 400, r"no rows"),
        ('"text"', "application/json", 400, r"expected a JSON list of rows"),
        ('[[1, 2, 3, "a", {"b": 1}]]', "application/json", 400, r"column 5 \(payment_method\): expected a scalar"),
        ("1,2,3,a,b", "text/plain", 415, r"content type 'text/plain' is not supported"),
        (b"\xff\xfe\x00", "text/csv", 400, r"not UTF-8"),
    ],
)
def test_malformed_payloads_get_4xx_json_and_the_server_keeps_serving(
    server: LocalServer, body: str | bytes, content_type: str, status: int, message: str
) -> None:
    got, got_type, answer = invoke(server, body, content_type)
    assert got == status
    assert got_type == "application/json"
    assert re.search(message, json.loads(answer)["error"]), answer
    assert invoke(server, "12,70.5,1,month-to-month,credit-card")[0] == 200


def test_unsupported_accept_is_406(server: LocalServer) -> None:
    status, _, body = invoke(server, "12,70.5,1,month-to-month,credit-card", accept="application/x-npy")
    assert status == 406
    assert "accept type" in json.loads(body)["error"]


def test_oversized_body_is_413_and_the_server_keeps_serving(server: LocalServer) -> None:
    row = b"12,70.5,1,month-to-month,credit-card\n"
    body = row * (MAX_BODY_BYTES // len(row) + 1)
    assert len(body) > MAX_BODY_BYTES
    status, _, answer = invoke(server, body)
    assert status == 413
    assert "exceeds" in json.loads(answer)["error"]
    assert request(server, "GET", "/ping")[0] == 200


def test_unknown_route_and_missing_length(server: LocalServer) -> None:
    assert request(server, "GET", "/nope")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "text/csv")
        conn.endheaders()
        assert conn.getresponse().status == 411
    finally:
        conn.close()
    assert request(server, "GET", "/ping")[0] == 200


def test_package_is_loaded_through_its_own_inference_script(built_project: Project) -> None:
    model = LoadedModel.load(built_project.churn.artifact.path)
    try:
        script = Path(model.module.__file__)
        assert script == model.directory / "code" / "inference.py"
        assert script.is_file()
    finally:
        model.close()
    assert not model.directory.exists()


def test_a_package_without_inference_script_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UsageError, match=r"has no code/inference.py"):
        start_server(path)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_cli_serve_answers_then_stops_on_signal(built_project: Project, stop_signal: int) -> None:
    # The handlers only set an event and the server stops outside cheroot's loop: an exception
    # raised into that loop could leave a selector lock held and stop() waiting forever.
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelops", "serve", "churn", str(built_project.spec), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "serving churn" in line, proc.stderr.read() if proc.poll() is not None else line
        url = line.split(" on ")[1].split(" ")[0]
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/invocations", body=b"12,70.5,1,month-to-month,credit-card",
                     headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        assert response.status == 200
        assert len(json.loads(response.read())["predictions"]) == 1
        conn.close()
    finally:
        proc.send_signal(stop_signal)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    if proc.stdout:
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
