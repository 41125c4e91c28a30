"""Serve a packaged model locally with the SageMaker container contract.

The package is extracted to a temporary directory and loaded *through its own*
``code/inference.py`` (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``), exactly
as the SageMaker scikit-learn image does, so what is tested here is what is deployed.

HTTP (127.0.0.1 only):
    GET  /ping          200 when the model is loaded
    POST /invocations   ``text/csv`` or ``application/json`` body, ``Accept`` selects the answer

Bad requests get a 4xx JSON ``{"error": "..."}`` and the server keeps serving: a payload
that cannot be parsed (400), a body over 6 MB (413, SageMaker's real-time limit), an
unsupported content type (415) or accept type (406), a missing length (411), a chunked
body (411: send a length) or one with both a length and chunking (400), a body shorter
than its length (400). A client idle for ``REQUEST_TIMEOUT_SECONDS`` mid-request is cut off
(408, or the connection is closed while it is still sending headers).

Example::

    with start_server("model.tar.gz") as server:
        urllib.request.urlopen(server.url + "/ping")
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from modelops.errors import UsageError

HOST = "127.0.0.1"
#: SageMaker real-time endpoints reject request payloads above 6 MB
MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_ACCEPT = "application/json"
#: oversized bodies up to this size are read and discarded before the 413
DRAIN_LIMIT_BYTES = 4 * MAX_BODY_BYTES
#: a client that sends nothing for this long (mid-headers or mid-body) is cut off (408 or close)
REQUEST_TIMEOUT_SECONDS = 30.0

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
    # the package may come from anywhere (a prebuilt `artifact:`): no paths outside the directory
    for member in tar.getmembers():
        if member.issym() or member.islnk() or member.isdev():
            raise UsageError(f"package member {member.name!r} is a link or device; refusing to extract")
        target = (destination / member.name).resolve()
        if destination.resolve() not in target.parents and target != destination.resolve():
            raise UsageError(f"package member {member.name!r} escapes the package directory; refusing to extract")
    tar.extractall(destination, filter="data")


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


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # read at connection time so the limit can be tuned per server run (and in tests)
        self.timeout = REQUEST_TIMEOUT_SECONDS
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer.body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.split("?")[0] == "/ping":
            self._send(Answer(200, b'{"status": "ok"}\n', "application/json"))
        else:
            self._send(_error(404, f"no route {self.path}; use GET /ping or POST /invocations"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.split("?")[0] != "/invocations":
            self._send(_error(404, f"no route {self.path}; use POST /invocations"))
            return
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") is not None:
            if length_header is not None:
                # both framings at once is a request-smuggling shape (RFC 9112 6.3): refuse, never guess
                self._send(_error(400, "send either Content-Length or Transfer-Encoding, not both"))
            else:
                self._send(_error(411, "chunked bodies are not served; send a Content-Length header"))
            return
        if length_header is None:
            self._send(_error(411, "a Content-Length header is required"))
            return
        try:
            length = int(length_header)
        except ValueError:
            self._send(_error(400, f"bad Content-Length {length_header!r}"))
            return
        if length < 0:
            self._send(_error(400, f"bad Content-Length {length_header!r}"))
            return
        if length > MAX_BODY_BYTES:
            # drain a moderately oversized body so the client reads the 413 instead of a reset;
            # beyond that, answer at once and close the connection
            if length <= DRAIN_LIMIT_BYTES:
                remaining = length
                try:
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 20))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                except TimeoutError:
                    pass
            self._send(_error(413, f"request body of {length} bytes exceeds the {MAX_BODY_BYTES}-byte limit"))
            return
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self._send(_error(408, f"no data for {REQUEST_TIMEOUT_SECONDS:g}s; the request body was not received"))
            return
        if len(body) < length:
            self._send(_error(400, f"the request body is shorter than its Content-Length ({len(body)} < {length} bytes)"))
            return
        content_type = self.headers.get("Content-Type")
        accept = self.headers.get("Accept")
        answer = self.server.model.invoke(body, content_type, accept)
        self._send(answer)
        if answer.status == 200 and self.server.capture is not None:
            self.server.capture(
                {
                    "input": body,
                    "input_content_type": (content_type or "").split(";")[0].strip(),
                    "output": answer.body,
                    "output_content_type": answer.content_type,
                    "time": datetime.now(timezone.utc),
                }
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: room for bursts of clients (socketserver's default of 5 resets connections under load)
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, port: int, model: LoadedModel, capture: CaptureHook | None, verbose: bool) -> None:
        self.model = model
        self.capture = capture
        self.verbose = verbose
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up or stalls is its own problem, not a server error worth a traceback
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)) and not self.verbose:
            return
        super().handle_error(request, client_address)


class LocalServer:
    """A running local inference server; stop it with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, server: _Server, model: LoadedModel) -> None:
        self._server = server
        self._model = model
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "LocalServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="modelops-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._model.close()

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()
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
    except OSError as exc:
        model.close()
        raise UsageError(f"cannot listen on {HOST}:{port} ({exc.strerror}); choose another --port") from None
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
