"""The local model server under hostile clients (127.0.0.1 only, bounded loops): slow and
partial bodies, lying Content-Length, chunked encoding, deep JSON, NaN/inf, many bad
requests at once — each gets an answer or a closed connection in bounded time, and the
server still answers /ping afterwards.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest

from modelops.ml import serve
from modelops.ml.serve import LocalServer, start_server
from tests.ml.helpers import Project

ROW = "12,70.5,1,month-to-month,credit-card"
#: the test's read timeout on the slow-client socket: far above the server's idle limit below
CLIENT_TIMEOUT = 10.0


@pytest.fixture
def server(built_project: Project, monkeypatch) -> Iterator[LocalServer]:
    # a short idle limit keeps the slow-client tests fast; the default is serve.REQUEST_TIMEOUT_SECONDS
    monkeypatch.setattr(serve, "REQUEST_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(serve, "REQUEST_DEADLINE_SECONDS", 3.0)
    srv = start_server(built_project.churn.artifact.path)
    try:
        yield srv
    finally:
        srv.stop()


def ping(server: LocalServer) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status
    finally:
        conn.close()


def post(server: LocalServer, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def raw(server: LocalServer, data: bytes, wait: float = CLIENT_TIMEOUT) -> tuple[bytes, float]:
    """Send raw bytes, keep the socket open, read until the server answers or closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received, time.monotonic() - started


def test_the_default_idle_limit_is_bounded():
    assert 0 < serve.REQUEST_TIMEOUT_SECONDS <= 120
    assert serve.REQUEST_TIMEOUT_SECONDS <= serve.REQUEST_DEADLINE_SECONDS <= 300


def test_a_client_trickling_its_body_is_cut_off_at_the_request_deadline(server):
    # GIVEN a client that sends its headers, then one byte of its body every 0.5 s: never idle
    # for the 1 s idle limit, but 18 s in all against the 3 s request deadline
    body = ROW.encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode())
        try:
            for byte in body:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.5)
                # WHILE it trickles, other clients are served
                assert ping(server) == 200
        except OSError:
            pass  # the server closed the connection
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    # THEN the server answered 408 before the body was complete, and keeps serving
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"in all" in answer
    assert sent < len(body)
    assert ping(server) == 200


def test_two_content_lengths_are_400_and_the_rest_is_never_a_second_request(server):
    # GIVEN two Content-Length headers: 5 frames "12,70" and leaves a request smuggled behind it
    smuggled = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n\r\n1,2"
    body = b"12,70" + smuggled
    data = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {len(body)}\r\nContent-Length: 5\r\n\r\n".encode() + body)
    # WHEN it is sent
    received, _ = raw(server, data)
    # THEN one answer, a 400 naming the conflict, and nothing served from the rest
    assert received.startswith(b"HTTP/1.1 400"), received[:200]
    assert b"conflicting Content-Length" in received
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert ping(server) == 200


@pytest.mark.parametrize("length", ["+36", "3_6", "-36", "36, 36", "0x24", "1e2", ""])
def test_a_content_length_that_is_not_plain_digits_is_400(server, length):
    # GIVEN a length Python's int() would read (or guess at), with a 36-byte body
    body = ROW.encode()
    assert len(body) == 36
    data = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode() + body)
    received, _ = raw(server, data)
    # THEN 400 and no prediction
    assert received.startswith(b"HTTP/1.1 400"), received[:200]
    assert b"predictions" not in received
    assert ping(server) == 200


def test_a_slowloris_partial_body_is_cut_off_and_others_are_served(server):
    # GIVEN a client that promises 1,000 bytes, sends 10, then goes quiet
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n"
    with ThreadPoolExecutor(max_workers=4) as pool:
        slow = [pool.submit(raw, server, head + b"12,70.5,1,") for _ in range(3)]
        # WHEN they hang, other clients are still served
        time.sleep(0.2)
        assert ping(server) == 200
        results = [f.result(timeout=30) for f in slow]
    # THEN each slow connection is answered 408 or closed by the server's idle limit, not the client's
    for received, seconds in results:
        assert seconds < CLIENT_TIMEOUT - 2, seconds
        assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:100]
    assert ping(server) == 200


def test_a_slowloris_that_never_finishes_its_headers_is_cut_off(server):
    received, seconds = raw(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Le")
    assert seconds < CLIENT_TIMEOUT - 2
    assert ping(server) == 200


def test_a_content_length_larger_than_the_body_is_400_not_a_prediction(server):
    # GIVEN a body shorter than its Content-Length, then the client half-closes
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT) as sock:
        body = ROW.encode()
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     + f"Content-Length: {len(body) + 50}\r\n\r\n".encode() + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # THEN a 400 that says so (the truncated body is never run through the model)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"shorter than its Content-Length" in answer
    assert ping(server) == 200


def test_chunked_encoding_without_length_is_411_and_the_server_keeps_serving(server):
    body = ROW.encode()
    data = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    received, _ = raw(server, data)
    assert received.startswith(b"HTTP/1.1 411"), received[:200]
    assert ping(server) == 200


def test_chunked_encoding_with_a_length_too_is_refused(server):
    # both headers: a request-smuggling shape (RFC 9112 6.3): refuse rather than guess
    body = ROW.encode()
    data = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    received, _ = raw(server, data)
    assert received.startswith(b"HTTP/1.1 400"), received[:200]
    assert ping(server) == 200


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deeply_nested_json_is_a_4xx(server, depth):
    status, answer = post(server, b"[" * depth + b"]" * depth)
    assert 400 <= status < 500, (status, answer)
    assert "error" in answer
    assert ping(server) == 200


@pytest.mark.parametrize("body", [
    b'{"instances": [[NaN, 70.5, 1, "month-to-month", "credit-card"]]}',
    b'{"instances": [[Infinity, 70.5, 1, "month-to-month", "credit-card"]]}',
    b'{"instances": [[-Infinity, 1e400, 1, "month-to-month", "credit-card"]]}',
    b'[[12, 70.5, 1e309, "month-to-month", "credit-card"]]',
])
def test_nan_and_infinite_values_are_a_4xx(server, body):
    status, answer = post(server, body)
    assert 400 <= status < 500, (status, answer)
    assert ping(server) == 200


def test_nan_in_csv_is_a_4xx(server):
    status, answer = post(server, b"nan,70.5,1,month-to-month,credit-card\ninf,1,1,month-to-month,credit-card",
                          "text/csv")
    assert 400 <= status < 500, (status, answer)


def test_many_concurrent_bad_requests_leave_the_server_serving(server):
    bad = [b"[" * 10_000, b"\xff\xfe\x00", b'{"instances": "x"}', b"not json", b"[[1,2]]", b"", b"{" * 50]

    def one(i: int) -> int:
        return post(server, bad[i % len(bad)])[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(64)))
    assert all(400 <= s < 500 for s in statuses), sorted(set(statuses))
    assert ping(server) == 200
    # AND a good request still predicts
    assert post(server, ROW.encode(), "text/csv")[0] == 200


def _package_of(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"\0" * size))
    return path


def test_serve_refuses_a_package_with_too_many_members_before_writing_any(tmp_path, monkeypatch):
    # GIVEN a package of more members than the package limit (a smaller limit, same code path)
    monkeypatch.setattr(serve, "MAX_MEMBERS", 50)
    package = _package_of(tmp_path / "model.tar.gz", [(f"code/f{i}.txt", 1) for i in range(51)])
    extracted = tmp_path / "tmp"
    extracted.mkdir()
    monkeypatch.setenv("TMPDIR", str(extracted))
    monkeypatch.setattr("tempfile.tempdir", None)
    # WHEN it is loaded THEN refused naming the limit, and nothing is left on disk
    with pytest.raises(serve.UsageError, match=r"more than 50 members \(the limit\)"):
        serve.LoadedModel.load(package)
    assert list(extracted.rglob("*")) == []


def test_serve_refuses_a_package_that_inflates_past_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "MAX_INFLATED_BYTES", 1024 * 1024)
    package = _package_of(tmp_path / "model.tar.gz", [("code/inference.py", 10), ("model.joblib", 2 * 1024 * 1024)])
    assert package.stat().st_size < 64 * 1024  # zeros compress: small on disk, large inflated
    with pytest.raises(serve.UsageError, match=r"inflates to more than 1,048,576 bytes \(the limit\)"):
        serve.LoadedModel.load(package)
