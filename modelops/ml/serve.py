"""Serve a packaged model locally with the SageMaker container contract.

The package is extracted to a temporary directory and loaded *through its own*
``code/inference.py`` (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``), exactly
as the SageMaker scikit-learn image does, so what is tested here is what is deployed.

HTTP (127.0.0.1 only):
    GET  /ping          200 when the model is loaded
    POST /invocations   ``text/csv`` or ``application/json`` body, ``Accept`` selects the answer

The HTTP server is cheroot's (as the local emulator's), with the framing made strict.
Bad requests get a 4xx JSON ``{"error": "..."}`` and the server keeps serving: a payload
that cannot be parsed (400), a body over 6 MB (413, SageMaker's real-time limit), an
unsupported content type (415) or accept type (406), a missing length (411), a chunked
body (411: send a length), a body shorter than its length (400). Requests whose framing
is ambiguous get cheroot's plain-text 400 and a closed connection: two ``Content-Length``
headers, a length that is not plain digits (``+36``, ``3_6``), a length beside chunking.
A client idle for ``REQUEST_TIMEOUT_SECONDS`` mid-request, or whose request is not read and
answered within ``REQUEST_DEADLINE_SECONDS`` in all (a byte now and then), is cut off (408,
or the connection is closed while it is still sending headers).

Example::

    with start_server("model.tar.gz") as server:
        urllib.request.urlopen(server.url + "/ping")
"""

from __future__ import annotations

import _pyio
import importlib.util
import json
import math
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

from cheroot import wsgi
from cheroot.makefile import MakeFile, StreamReader
from cheroot.server import HeaderReader, HTTPConnection, HTTPRequest

from modelops.errors import UsageError
from modelops.ml.package import MAX_INFLATED_BYTES, MAX_MEMBERS
from modelops.signals import STOP_SIGNALS, serve_until_signalled

HOST = "127.0.0.1"
#: SageMaker real-time endpoints reject request payloads above 6 MB
MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_ACCEPT = "application/json"
#: oversized bodies up to this size are read and discarded before the 413
DRAIN_LIMIT_BYTES = 4 * MAX_BODY_BYTES
#: a client that sends nothing for this long (mid-headers or mid-body) is cut off (408 or close)
REQUEST_TIMEOUT_SECONDS = 30.0
#: every request, however steadily its client trickles it in, is read and answered within this
REQUEST_DEADLINE_SECONDS = 60.0
#: requests served at once (each slow client holds one until its deadline)
THREADS = 32

#: called after each successful invocation with the capture fields (see :mod:`modelops.ml.capture`)
CaptureHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, body bytes, content type."""

    status: int
    body: bytes
    content_type: str


def _error(status: int, message: str) -> Answer:
    return Answer(status, (json.dumps({"error": message}) + "\n").encode("utf-8"), "application/json")


def _safe_extract(tar: tarfile.TarFile, destination: Path) -> None:
    """Extract after checking every member: the package may come from anywhere (a prebuilt
    `artifact:`), so no paths outside the directory, no links or devices, and no more than
    the package limits (members, inflated bytes) reach the disk."""
    members, total = [], 0
    for member in tar:  # headers one by one: a package with too many members stops early
        members.append(member)
        total += member.size
        if len(members) > MAX_MEMBERS:
            raise UsageError(f"the package has more than {MAX_MEMBERS:,} members (the limit); refusing to extract")
        if total > MAX_INFLATED_BYTES:
            raise UsageError(f"the package inflates to more than {MAX_INFLATED_BYTES:,} bytes (the limit); "
                             "refusing to extract")
        if member.issym() or member.islnk() or member.isdev():
            raise UsageError(f"package member {member.name!r} is a link or device; refusing to extract")
        target = (destination / member.name).resolve()
        if destination.resolve() not in target.parents and target != destination.resolve():
            raise UsageError(f"package member {member.name!r} escapes the package directory; refusing to extract")
    tar.extractall(destination, members=members, filter="data")


class LoadedModel:
    """A package extracted and loaded through its inference script.

    Example::

        model = LoadedModel.load("model.tar.gz")
        model.invoke(b"12,70.5,1,month-to-month,credit-card", "text/csv", "application/json")
        model.close()
    """

    def __init__(self, directory: Path, module: ModuleType, model: Any, *, owned: bool) -> None:
        self.directory = directory
        self.module = module
        self.model = model
        self._owned = owned

    @classmethod
    def load(cls, package: str | Path) -> "LoadedModel":
        package = Path(package)
        if not package.is_file():
            raise UsageError(f"{package}: model package does not exist; run `modelops build MODEL` first")
        directory = Path(tempfile.mkdtemp(prefix="modelops-serve-"))
        try:
            with tarfile.open(package, mode="r:gz") as tar:
                _safe_extract(tar, directory)
            script = directory / "code" / "inference.py"
            if not script.is_file():
                raise UsageError(f"{package}: has no code/inference.py; it is not a SageMaker scikit-learn package")
            # a unique module name per load: two packages never share module state
            name = f"modelops_inference_{uuid.uuid4().hex}"
            spec = importlib.util.spec_from_file_location(name, script)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for hook in ("model_fn", "input_fn", "predict_fn", "output_fn"):
                if not callable(getattr(module, hook, None)):
                    raise UsageError(f"{package}: code/inference.py does not define {hook}()")
            model = module.model_fn(str(directory))
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(directory, module, model, owned=True)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Answer:
        """Run one request through input_fn -> predict_fn -> output_fn; errors become 4xx/5xx answers."""
        payload_error = getattr(self.module, "PayloadError", ValueError)
        accept = accept if accept and accept.strip() not in ("", "*/*") else DEFAULT_ACCEPT
        try:
            data = self.module.input_fn(body, content_type or "")
            prediction = self.module.predict_fn(data, self.model)
            encoded = self.module.output_fn(prediction, accept)
        except payload_error as exc:
            return _error(int(getattr(exc, "status", 400)), str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            return _error(500, f"prediction failed: {type(exc).__name__}: {exc}")
        if isinstance(encoded, str):
            encoded = encoded.encode("utf-8")
        return Answer(200, encoded, accept.split(";")[0].strip())

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)


class _StrictHeaders(HeaderReader):
    """cheroot's header reader, refusing the framings it would otherwise guess at.

    It keeps the last of two ``Content-Length`` headers (a smuggling shape: another hop
    may frame by the first) and reads a length with ``int()``, which takes ``+36`` and
    ``3_6``. RFC 9112 6.3: a length is digits only, given once, never beside chunking.
    A ``ValueError`` here is cheroot's 400 answer (plain text, connection closed).
    """

    def __call__(self, rfile: Any, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        seen = _CountingDict()
        super().__call__(rfile, seen)
        if seen.counts.get(b"Content-Length", 0) > 1:
            raise ValueError("conflicting Content-Length headers; send exactly one")
        length = seen.get(b"Content-Length")
        if length is not None and not _DIGITS.fullmatch(length):
            raise ValueError(f"bad Content-Length {length.decode('latin-1')!r}; send the body's size in decimal digits")
        if length is not None and b"Transfer-Encoding" in seen:
            raise ValueError("send either Content-Length or Transfer-Encoding, not both")
        if hdict is None:
            return dict(seen)
        hdict.update(seen)
        return hdict


class _CountingDict(dict):  # type: ignore[type-arg]
    """A header dict that counts how often each header was set (a repeat overwrites)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[bytes, int] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        super().__setitem__(key, value)


_DIGITS = re.compile(rb"[0-9]+")


class _DeadlineSocketIO(socket.SocketIO):
    """A socket reader whose every receive waits at most until the request's deadline.

    A socket timeout bounds one receive only: a client sending a byte every few seconds
    would hold a thread for as long as it liked.
    """

    deadline = math.inf

    def readinto(self, b: Any) -> int | None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self._timeout_occurred = True
            raise socket.timeout("timed out")  # cheroot answers 408 while a request is under way
        self._sock.settimeout(min(REQUEST_TIMEOUT_SECONDS, remaining))
        return super().readinto(b)


class _DeadlineReader(StreamReader):
    def __init__(self, sock: socket.socket, mode: str = "rb", bufsize: int = 8192) -> None:
        # StreamReader.__init__ builds a plain SocketIO: build the same reader over ours
        _pyio.BufferedReader.__init__(self, _DeadlineSocketIO(sock, mode), bufsize)
        self.bytes_read = 0


def _makefile(sock: socket.socket, mode: str = "r", bufsize: int = 8192) -> Any:
    return _DeadlineReader(sock, mode, bufsize) if "r" in mode else MakeFile(sock, mode, bufsize)


class _Request(HTTPRequest):
    header_reader = _StrictHeaders()

    def send_headers(self) -> None:
        # an error answer closes the connection (what is left of the request is not read)
        if (b"Connection", b"close") in self.outheaders:
            self.close_connection = True
        super().send_headers()


class _Connection(HTTPConnection):
    RequestHandlerClass = _Request

    def __init__(self, server: Any, sock: Any, makefile: Any = MakeFile) -> None:
        super().__init__(server, sock, _makefile)

    def communicate(self) -> bool:
        # one request per call: its deadline runs from the first byte read to the last written
        raw = self.rfile.raw
        raw.deadline = time.monotonic() + REQUEST_DEADLINE_SECONDS
        try:
            return bool(super().communicate())
        finally:
            raw.deadline = math.inf


class _Application:
    """The WSGI application: ``/ping`` and ``/invocations``, then the capture hook."""

    def __init__(self, model: LoadedModel, capture: CaptureHook | None, verbose: bool) -> None:
        self.model = model
        self.capture = capture
        self.verbose = verbose

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        answer, captured = self._answer(environ)
        headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))]
        if answer.status >= 400:
            headers.append(("Connection", "close"))
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        if self.verbose:
            sys.stderr.write(f"{environ.get('REMOTE_ADDR')} - {environ['REQUEST_METHOD']} {environ.get('PATH_INFO')} {answer.status}\n")
        return _Body(answer.body, captured, self.capture)

    def _answer(self, environ: dict[str, Any]) -> tuple[Answer, dict[str, Any] | None]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method == "GET":
            if path == "/ping":
                return Answer(200, b'{"status": "ok"}\n', "application/json"), None
            return _error(404, f"no route {path}; use GET /ping or POST /invocations"), None
        if method != "POST" or path != "/invocations":
            return _error(404, f"no route {path}; use POST /invocations"), None
        if environ.get("HTTP_TRANSFER_ENCODING") is not None:
            return _error(411, "chunked bodies are not served; send a Content-Length header"), None
        length_header = environ.get("CONTENT_LENGTH")
        if not length_header:
            return _error(411, "a Content-Length header is required"), None
        length = int(length_header)  # digits only: _StrictHeaders refused anything else
        stream = environ["wsgi.input"]
        try:
            if length > MAX_BODY_BYTES:
                # drain a moderately oversized body so the client reads the 413 instead of a reset;
                # beyond that, answer at once and close the connection
                remaining = length if length <= DRAIN_LIMIT_BYTES else 0
                while remaining > 0:
                    chunk = stream.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                return _error(413, f"request body of {length} bytes exceeds the {MAX_BODY_BYTES}-byte limit"), None
            body = stream.read(length)
        except (TimeoutError, OSError) as exc:
            if not isinstance(exc, TimeoutError) and "timed out" not in str(exc):
                raise
            return _error(408, f"the request body was not received within the server's limits "
                               f"({REQUEST_TIMEOUT_SECONDS:g}s idle, {REQUEST_DEADLINE_SECONDS:g}s in all)"), None
        if len(body) < length:
            return _error(400, f"the request body is shorter than its Content-Length ({len(body)} < {length} bytes)"), None
        content_type = environ.get("CONTENT_TYPE")
        answer = self.model.invoke(body, content_type, environ.get("HTTP_ACCEPT"))
        if answer.status != 200 or self.capture is None:
            return answer, None
        return answer, {
            "input": body,
            "input_content_type": (content_type or "").split(";")[0].strip(),
            "output": answer.body,
            "output_content_type": answer.content_type,
            "time": datetime.now(timezone.utc),
            # SageMaker records the caller's X-Amzn-SageMaker-Inference-Id (the label join key)
            "inference_id": _inference_id(environ.get("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID")),
        }


def _inference_id(value: str | None) -> str | None:
    # SageMaker accepts 1-64 printable ASCII characters; anything else is not recorded
    if value and len(value) <= 64 and all(32 < ord(c) < 127 for c in value):
        return value
    return None


class _Body:
    """The answer's bytes; the capture hook runs once they are sent (WSGI calls ``close``)."""

    def __init__(self, body: bytes, captured: dict[str, Any] | None, capture: CaptureHook | None) -> None:
        self._body = body
        self._captured = captured
        self._capture = capture

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        if self._captured is not None and self._capture is not None:
            self._capture(self._captured)


class _Server(wsgi.Server):
    ConnectionClass = _Connection

    def __init__(self, port: int, model: LoadedModel, capture: CaptureHook | None, verbose: bool) -> None:
        super().__init__(
            (HOST, port),
            _Application(model, capture, verbose),
            numthreads=THREADS,
            server_name="modelops-serve",
            # room for bursts of clients (a small backlog resets connections under load)
            request_queue_size=128,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        self.verbose = verbose

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        # a client that hangs up or stalls is its own problem, not a server error worth a traceback
        if self.verbose:
            super().error_log(msg, level, traceback)


class LocalServer:
    """A running local inference server; stop it with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, server: _Server, model: LoadedModel) -> None:
        self._server = server
        self._model = model
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "LocalServer":
        self._thread = threading.Thread(target=self._server.serve, name="modelops-serve", daemon=True)
        self._thread.start()
        return self

    def serve_until_signalled(self, on_ready: Callable[[], None] | None = None,
                              signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        """Serve until Ctrl-C or SIGTERM (``signals``), then stop cleanly: see
        :func:`modelops.signals.serve_until_signalled`."""

        def start() -> threading.Thread:
            self.start()
            assert self._thread is not None
            return self._thread

        serve_until_signalled(start, self.stop, on_ready, signals)

    def stop(self) -> None:
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _close(self) -> None:
        # stops accepting, lets the requests under way finish (their capture included), ends the threads
        self._server.stop()
        self._model.close()

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(
    package: str | Path, *, port: int = 0, capture: CaptureHook | None = None, verbose: bool = False
) -> LocalServer:
    """Load ``package`` and bind 127.0.0.1:``port`` (0: a free port) without serving yet."""
    model = LoadedModel.load(package)
    try:
        server = _Server(port, model, capture, verbose)
        server.prepare()  # binds the socket and starts the request threads
    except OSError as exc:
        model.close()
        # cheroot wraps the bind error in its own message: show the system's reason
        found = re.search(r"\[Errno \d+\] ([^)]+)", str(exc))
        reason = exc.strerror or (found.group(1) if found else str(exc))
        raise UsageError(f"cannot listen on {HOST}:{port} ({reason}); choose another --port") from None
    return LocalServer(server, model)


def start_server(
    package: str | Path, *, port: int = 0, capture: CaptureHook | None = None, verbose: bool = False
) -> LocalServer:
    """Serve ``package`` on 127.0.0.1 in a background thread; ``stop()`` it when done.

    Example::

        server = start_server(artifact.path)
        ...
        server.stop()
    """
    return make_server(package, port=port, capture=capture, verbose=verbose).start()
