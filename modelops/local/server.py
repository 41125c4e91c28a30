"""Where the local AWS target lives: the embedded emulator process, or a moto server URL.

The embedded emulator (:mod:`modelops.local.emulator`) is started on first use as a
detached background process on ``127.0.0.1`` and a free port, and reused by later
commands. Its pid, port, URL and CA bundle are recorded in
``<project root>/.modelops/local/server.json``; ``modelops local status`` / ``stop``
read that file. Clients always get dummy credentials: the target is a local emulator,
and real credentials must never be sent anywhere by this path.

Example::

    url = endpoint_url(Path("."))          # starts the emulator if needed
    s3 = Target.embedded(Path(".")).clients("eu-west-1").client("s3")
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from modelops.errors import UsageError
from modelops.files import atomic_write

LOCAL_DIR = Path(".modelops") / "local"
SERVER_FILE = "server.json"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: dummy credentials: the emulator accepts any, and real ones must never leave this machine
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: the target name meaning real AWS with the ambient credentials (read-only evidence for
#: ``promote`` and ``drift`` in CI); never accepted by ``up``/``destroy``, which deploy
#: through the Pulumi CLI for real
REAL_AWS = "aws"
START_TIMEOUT_SECONDS = 60.0
#: where the embedded emulator answers with its pid and the token it wrote in its record:
#: ``stop`` signals only a process that answers there, so a stale or edited record never
#: gets an unrelated process killed
IDENTITY_PATH = "/_modelops/identity"
IDENTITY_TIMEOUT_SECONDS = 5.0


def local_dir(root: Path) -> Path:
    return Path(root).resolve() / LOCAL_DIR


def _server_file(root: Path) -> Path:
    return local_dir(root) / SERVER_FILE


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status(root: Path) -> dict[str, Any] | None:
    """The running embedded emulator of ``root`` (pid, port, url, ca_bundle, token), or None.

    A record whose process is gone is removed, so a crashed emulator is simply restarted.
    Its URL passes the same loopback check as ``--endpoint-url``: a record naming another
    host is refused, never used.
    """
    path = _server_file(root)
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise UsageError(f"{path}: not a valid emulator record ({exc}); delete it and run again") from exc
    pid, port = _valid_record(info, path)
    if _pid_alive(pid) and _port_open(port):
        return info
    path.unlink(missing_ok=True)
    return None


def _valid_record(info: Any, path: Path) -> tuple[int, int]:
    """``(pid, port)`` of an emulator record; a UsageError naming ``path`` when it is not one."""
    fix = f"delete {path} and run again"
    try:
        pid, port, url = int(info["pid"]), int(info["port"]), str(info["url"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not a valid emulator record ({exc!r}); {fix}") from exc
    check_loopback(url, source=f"{path}: url", fix=fix)
    if urlparse(url).port != port:
        raise UsageError(f"{path}: url {url} is not on the recorded port {port}; {fix}")
    return pid, port


def _not_ours(info: dict[str, Any]) -> str:
    """Why the process of a record is not the emulator that wrote it ('' when it is).

    The emulator answers :data:`IDENTITY_PATH` over loopback TLS with its pid and the token
    of its record; anything else (no answer, another token, another pid) is not ours.
    """
    token = info.get("token")
    if not token:
        # a record written by an older ModelOps: only its user can tell what that pid is
        return f"the record has no token to check it by (check `ps -p {info['pid']}`, then stop it with kill)"
    try:
        context = ssl.create_default_context(cafile=str(info["ca_bundle"]))
        # no proxy: the request goes to 127.0.0.1 itself, whatever HTTPS_PROXY says
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
        with opener.open(str(info["url"]).rstrip("/") + IDENTITY_PATH, timeout=IDENTITY_TIMEOUT_SECONDS) as answer:
            said = json.loads(answer.read(4096))
    except (OSError, ValueError, KeyError) as exc:  # refused, TLS, timeout, HTTP error, not JSON
        return f"{info['url']} does not answer as a ModelOps emulator ({type(exc).__name__})"
    if not isinstance(said, dict) or said.get("token") != token:
        return f"the server at {info['url']} answers with another token"
    if said.get("pid") != int(info["pid"]):
        return f"the server at {info['url']} is pid {said.get('pid')}"
    return ""


@contextlib.contextmanager
def _start_lock(root: Path) -> Iterator[None]:
    directory = local_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start(root: Path) -> dict[str, Any]:
    """Start the embedded emulator for ``root`` (or return the running one)."""
    with _start_lock(root):
        running = status(root)
        if running:
            return running
        directory = local_dir(root)
        ready = directory / "ready.json"
        ready.unlink(missing_ok=True)
        log = open(directory / "emulator.log", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            [sys.executable, "-m", "modelops.local.emulator", "--tls-dir", str(directory / "tls"),
             "--ready-file", str(ready)],
            cwd=str(directory),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives this command: later commands reuse it
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.exists():
            if process.poll() is not None:
                raise UsageError(
                    f"the local emulator exited at start (code {process.returncode}); see {directory / 'emulator.log'}"
                )
            if time.monotonic() > deadline:
                process.terminate()
                raise UsageError(f"the local emulator did not start within {START_TIMEOUT_SECONDS:.0f}s; "
                                 f"see {directory / 'emulator.log'}")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        _valid_record(info, ready)
        info["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write(_server_file(root), json.dumps(info, indent=2), mode=0o600)
        ready.unlink(missing_ok=True)
        return info


#: ``endpoint_url``'s ``start`` flag shadows the function inside it
_launch = start


def stop(root: Path) -> dict[str, Any] | None:
    """Stop the embedded emulator of ``root``; returns what was stopped, or None.

    Only a process that answers as the emulator of the record is signalled (see
    :func:`_not_ours`); any other is refused with a UsageError, and left alone.
    """
    info = status(root)
    if info is None:
        return None
    pid = int(info["pid"])
    reason = _not_ours(info)
    if reason:
        path = _server_file(root)
        raise UsageError(f"{path} names pid {pid}, which is not this project's emulator: {reason}; "
                         f"nothing was signalled. If no emulator of this project runs, delete {path}")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _server_file(root).unlink(missing_ok=True)
    return info


def endpoint_url(root: Path, start: bool = True) -> str:
    """URL of the embedded emulator of the project at ``root``, started if needed.

    Example::

        endpoint_url(Path("."), start=False)   # UsageError when none is running
    """
    info = status(root)
    if info is None:
        if not start:
            raise UsageError(f"no local emulator is running for {Path(root).resolve()}; run `modelops up` first")
        info = _launch(root)
    return str(info["url"])


def check_loopback(url: str, source: str = "--endpoint-url", fix: str | None = None) -> str:
    """``url`` if it is an http(s) URL on this machine; a UsageError saying why not otherwise.

    The one check of every endpoint the local target is given: the ``--endpoint-url`` flag
    and the emulator record (``source`` names which, ``fix`` replaces the advice). No
    environment variable names an endpoint: the clients pass this URL explicitly, which
    overrides ``AWS_ENDPOINT_URL*`` and the AWS config files.
    """
    parsed = urlparse(url)
    try:
        parsed.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"{source} {url!r}: expected http(s)://127.0.0.1:PORT of a moto server"
                         + (f"; {fix}" if fix else ""))
    if parsed.hostname not in LOOPBACK_HOSTS:
        raise UsageError(
            f"{source} {url!r}: only a local emulator on 127.0.0.1 is accepted; "
            + (fix or "`modelops up` never provisions to another host (deploy to AWS with `pulumi up`)")
        )
    return url.rstrip("/")


@dataclass
class Clients:
    """boto3 clients for one target and region, shared by every thread.

    boto3 clients are thread-safe but sessions are not: one session creates each client once,
    under a lock (loading a service model is the slow part), and the client is then shared.
    """

    url: str
    region: str
    verify: str | bool
    #: the role these clients act as (``sts:AssumeRole`` at the emulator): how the emulator
    #: serves several accounts, each caller a role of its account. None: the default account.
    role_arn: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)

    def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        with self._lock:
            if service not in self._clients:
                config = Config(
                    retries={"mode": "standard", "max_attempts": 8},
                    connect_timeout=10,
                    read_timeout=60,
                    max_pool_connections=32,
                )
                if self.url == REAL_AWS:
                    if self._session is None:
                        self._session = boto3.session.Session(region_name=self.region)
                    self._clients[service] = self._session.client(service, config=config)
                    return self._clients[service]
                if self._session is None:
                    self._session = boto3.session.Session(region_name=self.region, **DUMMY_CREDENTIALS)
                    if self.role_arn is not None:
                        self._session = self._assumed(config)
                # A loopback emulator is never reached through a proxy: botocore would
                # otherwise follow HTTPS_PROXY (set on many CI runners) for it too.
                self._clients[service] = self._session.client(
                    service,
                    endpoint_url=self.url,
                    verify=self.verify,
                    config=config.merge(Config(proxies={})),
                )
            return self._clients[service]

    def _assumed(self, config: Config) -> Any:
        """A session with the temporary credentials of :attr:`role_arn`, from the emulator's STS."""
        sts = self._session.client("sts", endpoint_url=self.url, verify=self.verify, config=config.merge(Config(proxies={})))
        credentials = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="modelops-local")["Credentials"]
        return boto3.session.Session(region_name=self.region, aws_access_key_id=credentials["AccessKeyId"],
                                     aws_secret_access_key=credentials["SecretAccessKey"],
                                     aws_session_token=credentials["SessionToken"])


#: the clients of every target this process used (acting as no role), by (url, region, verify, None)
_SHARED: dict[tuple[str, str, str | bool, str | None], Clients] = {}
_SHARED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Target:
    """A local AWS endpoint: URL, how to verify its TLS, and whether it is our embedded emulator."""

    url: str
    verify: str | bool
    embedded: bool
    #: what the state records: the URL, plus the process for the embedded emulator (whose
    #: resources vanish with it, so a restarted emulator never matches an old state)
    identity: str = ""

    @classmethod
    def for_project(cls, root: Path, url: str | None = None, *, allow_aws: bool = False) -> "Target":
        """The embedded emulator of ``root`` (started if needed), or the given loopback ``url``.

        With ``allow_aws``, ``url == "aws"`` means real AWS with the ambient credentials
        (for read-only evidence: ``promote --aws``, ``drift --aws``).
        """
        if url == REAL_AWS and allow_aws:
            return cls(url=REAL_AWS, verify=True, embedded=False, identity=REAL_AWS)
        if url is None:
            info = status(root) or start(root)
            return cls(url=str(info["url"]), verify=str(info["ca_bundle"]), embedded=True,
                       identity=f"{info['url']}#pid={info['pid']}@{info.get('started', '')}")
        url = check_loopback(url)
        verify: str | bool = True
        if url.startswith("https://"):
            running = status(root)
            cert = local_dir(root) / "tls" / "cert.pem"
            if running and running.get("url") == url:
                # the project's own emulator, named by URL: trust exactly its certificate
                # (an AWS_CA_BUNDLE set to the system store would reject it)
                verify = str(running["ca_bundle"])
            else:
                verify = os.environ.get("AWS_CA_BUNDLE") or (str(cert) if cert.exists() else True)
        return cls(url=url, verify=verify, embedded=False, identity=url)

    def clients(self, region: str, role_arn: str | None = None) -> Clients:
        """The target's clients for ``region``; at an emulator, acting as ``role_arn`` (another
        account's role) when given; real AWS (``--aws``) always uses the ambient credentials.
        Without a role, one set per process, shared by every stack, command step and thread:
        each new botocore session parses its service models again (a second of CPU per stack
        of an environment of many stacks). A role's clients are made afresh: its temporary
        credentials are the emulator's, which a reset of it forgets."""
        key = (self.url, region, self.verify, None if self.url == REAL_AWS else role_arn)
        if key[3] is not None:
            return Clients(*key)
        with _SHARED_LOCK:
            found = _SHARED.get(key)
            if found is None:
                found = _SHARED[key] = Clients(*key)
        return found


    def cli_prefix(self, region: str | None = None) -> str:
        """How to point the AWS CLI at this target (dummy credentials: it is an emulator)."""
        ca = f" --ca-bundle {self.verify}" if isinstance(self.verify, str) else ""
        where = f" --region {region}" if region else ""
        return f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url {self.url}{ca}{where}"
