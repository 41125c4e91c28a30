"""The embedded local AWS emulator: moto, served over TLS, with condition-aware bucket policies.

Every dataset bucket carries the policy we deploy to AWS: ``Deny s3:*`` when
``aws:SecureTransport`` is ``false``. Stock moto ignores policy conditions (its evaluator
only knows ``StringEquals`` and, worse, treats an unmet condition as a denial), so that
policy denies *every* object request, uploads included. Weakening the policy locally would
make the local target lie about what we deploy, so instead the emulator:

1. serves HTTPS only, with a self-signed certificate for ``127.0.0.1`` kept under
   ``.modelops/local/tls/`` (clients pass it as their CA bundle), and
2. evaluates bucket policies with the request's real ``aws:SecureTransport`` value
   (``true`` exactly when the request arrived over TLS), with AWS semantics: an explicit
   ``Deny`` whose conditions hold wins, then an ``Allow``, else no opinion.

Several accounts (:mod:`modelops.local.accounts`): a request from another account than a
bucket's or a KMS key's is let in only by that resource's policy, as in AWS.

It also adds ``DeleteModelPackageGroup``, which moto 5.2.5 lacks (``destroy`` needs it),
keeps the shadow variants of an endpoint configuration (moto drops them), and evaluates CloudWatch metric alarms from the metric data it receives, notifying their
SNS topics (:mod:`modelops.local.alarms`).

A plain-HTTP request to an object in such a bucket is denied, as in AWS; an HTTPS one is
allowed. Run it by hand with ``python -m modelops.local.emulator --port 4566``.

Example::

    server = EmulatorServer(ip_address="127.0.0.1", port=0, tls_dir=Path(".modelops/local/tls"))
    server.start()
    host, port = server.get_host_and_port()     # https://127.0.0.1:<port>
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import io
import ipaddress
import json
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from modelops.files import atomic_write
from modelops.local.accounts import CallerAware, as_list, current_caller, evaluate_resource_policy, statement_covers
from modelops.local.alarms import AlarmMiddleware
from modelops.local.server import IDENTITY_PATH
from modelops.signals import serve_until_signalled

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
#: request threads of the server (a client's connection pool holds up to 32 per service)
THREADS = 16
#: idle kept-alive connections the server holds open (cheroot's default, 10, closes most of
#: a client's pooled connections between calls: a new TLS handshake for nearly every call)
KEEP_ALIVE_CONNECTIONS = 512

#: the moto backends ModelOps calls, in the order a first ``up`` first calls them. moto
#: builds a backend's application (importing its modules) on the first request for it,
#: holding its dispatcher's lock, so every request waits meanwhile (applicationautoscaling
#: alone takes about 0.75 s). The emulator builds them once it listens (:func:`warm`).
BACKENDS = ("sts", "kms", "s3", "glue", "iam", "sagemaker", "cloudwatch", "sns", "applicationautoscaling", "scheduler")

_request = threading.local()


def ensure_certificate(tls_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost under ``tls_dir`` (created once)."""
    cert, key = tls_dir / CERT_FILE, tls_dir / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    tls_dir.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelops local emulator")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    atomic_write(key, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()), mode=0o600)
    atomic_write(cert, certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


# --- condition-aware bucket policy evaluation ------------------------------------------------

_OPERATORS = {
    "Bool": lambda expected, actual: actual.lower() in {str(e).lower() for e in expected},
    "StringEquals": lambda expected, actual: actual in {str(e) for e in expected},
    "StringNotEquals": lambda expected, actual: actual not in {str(e) for e in expected},
    "StringEqualsIgnoreCase": lambda expected, actual: actual.lower() in {str(e).lower() for e in expected},
    "StringLike": lambda expected, actual: any(fnmatch.fnmatchcase(actual, str(e)) for e in expected),
    "StringNotLike": lambda expected, actual: not any(fnmatch.fnmatchcase(actual, str(e)) for e in expected),
    "ArnEquals": lambda expected, actual: actual in {str(e) for e in expected},
    "ArnLike": lambda expected, actual: any(fnmatch.fnmatchcase(actual, str(e)) for e in expected),
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    """AWS semantics: every operator/key pair must hold; a key absent from the request fails
    unless the operator ends in ``IfExists``. An operator we cannot evaluate never holds, so
    a statement guarded by it does not apply (and is reported on the server's stderr)."""
    for operator, pairs in conditions.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        check = _OPERATORS.get(base)
        if check is None:
            print(f"modelops emulator: condition operator {operator!r} is not evaluated; statement skipped",
                  file=sys.stderr)
            return False
        for key, expected in pairs.items():
            actual = context.get(key.lower())
            if actual is None:
                if if_exists:
                    continue
                return False
            if not check(as_list(expected), actual):
                return False
    return True


def _applies_to_everyone(principal: Any) -> bool:
    if principal is None or principal == "*":
        return True
    return isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"])


def evaluate_bucket_policy(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> str:
    """``"deny"``, ``"allow"`` or ``"neutral"`` for one request against a bucket policy.

    Example::

        evaluate_bucket_policy(tls_only, "s3:PutObject", "arn:aws:s3:::b/k", {"aws:securetransport": "true"})
        # 'neutral'
    """
    allowed = False
    for statement in as_list(policy.get("Statement", [])):
        if not statement_covers(statement, action, resource):
            continue
        # The emulator's caller is the account root; statements naming specific principals
        # are not about "every caller", so they are left to the account's identity policies.
        if not _applies_to_everyone(statement.get("Principal")):
            continue
        if not _conditions_hold(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "neutral"


def _get_permission(self: Any, action: str, resource: str) -> Any:
    from moto.iam.access_control import PermissionResult

    context = {"aws:securetransport": "true" if getattr(_request, "secure", False) else "false"}
    caller = current_caller()
    if caller is not None and caller.account != self.account_id:
        # another account's caller: only a statement naming it lets it in (modelops.local.accounts)
        policy = json.loads(self.policy.decode()) if self.policy is not None else {}
        verdict = evaluate_resource_policy(policy, action, resource, caller, context, _conditions_hold)
        return PermissionResult.PERMITTED if verdict == "allow" else PermissionResult.DENIED
    if self.policy is None:
        return PermissionResult.NEUTRAL
    verdict = evaluate_bucket_policy(json.loads(self.policy.decode()), action, resource, context)
    return {
        "deny": PermissionResult.DENIED,
        "allow": PermissionResult.PERMITTED,
        "neutral": PermissionResult.NEUTRAL,
    }[verdict]


def install_condition_aware_policies() -> None:
    """Make moto's S3 evaluate bucket-policy conditions in this process (idempotent)."""
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]


class _TransportAware:
    """WSGI middleware: records whether the request came over TLS, for the policy evaluator."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        _request.secure = environ.get("wsgi.url_scheme") == "https"
        try:
            return self._app(environ, start_response)
        finally:
            _request.secure = False


class _WholeBody:
    """WSGI middleware: a request is served only once its whole body arrived.

    A client that dies while sending (a killed ``up``) leaves a body shorter than its
    ``Content-Length``; the server hands the application what came, and moto would act on
    the torn form (e.g. create an alarm named ``None``) where AWS refuses the request.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > 0:
            expected, stream, chunks, got = int(length), environ["wsgi.input"], [], 0
            while got < expected:
                chunk = stream.read(min(expected - got, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            if got < expected:
                start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Connection", "close")])
                return [f"IncompleteBody: {got} of {expected} bytes arrived\n".encode()]
            environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
        return self._app(environ, start_response)


class _Identity:
    """WSGI middleware: ``GET`` :data:`IDENTITY_PATH` answers this process's pid and token.

    ``modelops local stop`` signals the pid of the emulator record only when the server on
    the recorded URL answers with the record's token and that pid.
    """

    def __init__(self, app: Any, token: str) -> None:
        self._app, self._token = app, token

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == IDENTITY_PATH and environ.get("REQUEST_METHOD") == "GET":
            body = json.dumps({"pid": os.getpid(), "token": self._token}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self._app(environ, start_response)


def _delete_model_package_group(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    name = self._get_param("ModelPackageGroupName")
    self.sagemaker_backend.describe_model_package_group(model_package_group_name=name)  # not found -> error
    self.sagemaker_backend.model_package_groups.pop(name, None)
    return EmptyResult()


def _keeping_shadow_variants(create: Any) -> Any:
    """moto 5.2.5's ``CreateEndpointConfig`` drops ``ShadowProductionVariants``: keep them, so that
    ``DescribeEndpointConfig`` answers what was sent, and refuse what SageMaker refuses (shadow
    variants beside more than one production variant)."""

    def create_endpoint_config(self: Any) -> Any:
        from moto.sagemaker.exceptions import ValidationError

        shadows = self._get_param("ShadowProductionVariants") or []
        production = self._get_param("ProductionVariants") or []
        if shadows and len(production) != 1:
            raise ValidationError(message="ShadowProductionVariants require exactly one ProductionVariant; "
                                          f"got {len(production)}")
        result = create(self)
        if shadows:
            config = self.sagemaker_backend.endpoint_configs[self._get_param("EndpointConfigName")]
            config.validate_production_variants(shadows)
            # an attribute of the fake is a key of its describe response (``ShadowProductionVariants``)
            config.shadow_production_variants = shadows
        return result

    create_endpoint_config.modelops_keeps_shadows = True  # type: ignore[attr-defined]
    return create_endpoint_config


def install_missing_operations() -> None:
    """What moto 5.2.5 lacks that ``up`` and ``destroy`` need: ``DeleteModelPackageGroup``, and
    shadow variants kept by ``CreateEndpointConfig``."""
    from moto.sagemaker.responses import SageMakerResponse

    if not hasattr(SageMakerResponse, "delete_model_package_group"):
        SageMakerResponse.delete_model_package_group = _delete_model_package_group  # type: ignore[attr-defined]
    if not getattr(SageMakerResponse.create_endpoint_config, "modelops_keeps_shadows", False):
        SageMakerResponse.create_endpoint_config = _keeping_shadow_variants(  # type: ignore[method-assign]
            SageMakerResponse.create_endpoint_config)


def make_app(token: str) -> Any:
    install_condition_aware_policies()
    install_missing_operations()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    return _Identity(_WholeBody(AlarmMiddleware(CallerAware(_TransportAware(dispatcher), _conditions_hold))), token)


def dispatcher_of(app: Any) -> DomainDispatcherApplication:
    """The moto dispatcher inside :func:`make_app`'s middleware."""
    while not isinstance(app, DomainDispatcherApplication):
        app = app._app
    return app


def warm(dispatcher: DomainDispatcherApplication, backends: tuple[str, ...] = BACKENDS) -> None:
    """Build the application of each of ``backends`` now rather than on its first request.

    Each is built outside the dispatcher's lock (requests for backends already built go on
    meanwhile) and kept unless a request built it first, exactly as moto would have on demand.
    """
    for backend in backends:
        if backend in dispatcher.app_instances:
            continue
        app = dispatcher.create_app(backend)
        with dispatcher.lock:
            dispatcher.app_instances.setdefault(backend, app)


def make_server(host: str, port: int, cert: Path, key: Path, token: str) -> wsgi.Server:
    """The emulator's HTTPS server, bound (``port`` 0: a free one), not yet serving.

    cheroot, not moto's werkzeug server: werkzeug's development server closes the
    connection after every response, so every AWS call paid a TLS handshake (a third of a
    100-model ``up``); cheroot keeps HTTP/1.1 connections open between calls. ``token``:
    what it answers at :data:`IDENTITY_PATH`, with its pid.
    """
    app = make_app(token)
    server = wsgi.Server((host, port), app, numthreads=THREADS, server_name="modelops-emulator")
    server.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
    server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
    server.prepare()  # binds the socket and starts the request threads
    # the backends are built while the first client gets going (an `up` checks its spec first)
    threading.Thread(target=warm, args=(dispatcher_of(app),), name="modelops-emulator-warm", daemon=True).start()
    return server


class EmulatorServer:
    """The emulator in this process (on a thread of its own), over TLS, for tests.

    Example::

        server = EmulatorServer(ip_address="127.0.0.1", port=0, tls_dir=tmp / "tls"); server.start()
    """

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, *, tls_dir: Path) -> None:
        self._ip_address = ip_address
        self._port = port
        self.cert, self.key = ensure_certificate(tls_dir)
        self.token = secrets.token_hex(16)
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = make_server(self._ip_address, self._port, self.cert, self.key, self.token)
        self._thread = threading.Thread(target=self._server.serve, name="modelops-emulator", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "call start() first"
        host, port = self._server.bind_addr[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # closes the socket, ends the request threads
        if self._thread is not None:
            self._thread.join()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"https://{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--tls-dir", type=Path, default=Path(".modelops/local/tls"))
    parser.add_argument("--ready-file", type=Path, help="write {pid, port, url, ca_bundle, token} here once listening")
    args = parser.parse_args(argv)
    cert, key = ensure_certificate(args.tls_dir)
    token = secrets.token_hex(16)
    server = make_server("127.0.0.1", args.port, cert, key, token)
    port = server.bind_addr[1]
    info = {"pid": os.getpid(), "port": port, "url": f"https://127.0.0.1:{port}", "ca_bundle": str(cert.resolve()),
            "token": token}
    if args.ready_file:
        atomic_write(args.ready_file, json.dumps(info), mode=0o600)
    else:
        print(json.dumps(info), flush=True)

    def start() -> threading.Thread:
        thread = threading.Thread(target=server.serve, name="modelops-emulator", daemon=True)
        thread.start()
        return thread

    serve_until_signalled(start, server.stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
