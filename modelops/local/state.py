"""What ``modelops up`` applied to the local target, per environment.

``.modelops/state/<project>-<env>.json`` lists every resource (urn, type, physical id,
inputs, outputs, parent, dependencies, protect). It is rewritten atomically (temp file +
rename) after every successful resource operation, so a failure mid-apply leaves an
accurate record and the next ``up`` resumes from it. A state file that cannot be read is
reported, never trusted. One run per environment at a time (an ``fcntl`` lock).

Secrets never reach the file: an https (or http) subscription endpoint — its URL carries
the webhook's token — and any other non-loopback https URL is stored as a salted digest
(HMAC-SHA256 keyed by a random salt kept in the same state file). Equal URLs give equal
digests within one state, so an unchanged webhook is "unchanged" and a new token is a
change, but the file never holds the token, and equal tokens differ across projects.

Example::

    with StateStore.open(root, "churn", "dev") as state:
        state.get("urn:pulumi:dev::churn::aws:s3/bucket:Bucket::customers-bucket")
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from modelops.errors import UsageError

STATE_DIR = Path(".modelops") / "state"
STATE_VERSION = 1


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


#: the salt of the state opened last in this process (one ``up``/``destroy`` at a time);
#: before any state is opened, a per-process one keeps digests stable within the run
_salt: bytes = secrets.token_bytes(16)
_salt_lock = threading.Lock()
SECRET_PREFIX = "secret:hmac-sha256:"
#: URLs that may carry credentials; loopback ones are the emulator's own addresses
_SECRET_URL = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])", re.IGNORECASE)


def _set_salt(salt: bytes) -> None:
    global _salt
    with _salt_lock:
        _salt = salt


def secret_digest(value: str) -> str:
    """The stored form of a secret: ``secret:hmac-sha256:<hex>``, keyed by the state's salt."""
    with _salt_lock:
        key = _salt
    return SECRET_PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def _is_secret_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith("https://") and bool(_SECRET_URL.match(value))


def to_plain(value: Any) -> Any:
    """Inputs as JSON data: assets become ``{"__asset": kind, "path", "sha256"}`` (content counts).

    Secrets become :func:`secret_digest`: a subscription's http(s) ``endpoint`` and any
    non-loopback https URL.
    """
    if isinstance(value, dict) and str(value.get("protocol", "")).lower() in ("http", "https") \
            and isinstance(value.get("endpoint"), str) and not value["endpoint"].startswith(SECRET_PREFIX):
        value = {**value, "endpoint": secret_digest(value["endpoint"])}
    if _is_secret_url(value):
        return secret_digest(value)
    if isinstance(value, pulumi.FileAsset):
        path = str(value.path)
        return {"__asset": "file", "path": path, "sha256": _file_digest(path) if os.path.exists(path) else None}
    if isinstance(value, pulumi.StringAsset):
        return {"__asset": "string", "text": value.text}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def fingerprint(value: Any) -> str:
    return json.dumps(to_plain(value), sort_keys=True, separators=(",", ":"))


@dataclass
class ResourceState:
    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    #: dropped from the record but left in place when deleted (Pulumi's ``retainOnDelete``)
    retain_on_delete: bool = False
    #: the spec entity this resource belongs to, e.g. ``dataset customers``
    entity: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResourceState":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class StateStore:
    """The state of one environment, locked for the lifetime of the ``with`` block."""

    def __init__(self, path: Path, project: str, env: str) -> None:
        self.path = path
        self.project = project
        self.env = env
        self.resources: dict[str, ResourceState] = {}
        #: originals of replaced resources, deleted after the program (create-before-delete)
        self.pending: list[ResourceState] = []
        self.target = ""
        #: keys the digests of secrets in this state (not itself a secret: it defeats lookup tables)
        self.salt = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._lock_handle: Any = None

    @classmethod
    def open(cls, root: Path, project: str, env: str) -> "StateStore":
        return cls(Path(root).resolve() / STATE_DIR / f"{project}-{env}.json", project, env)

    def __enter__(self) -> "StateStore":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(".lock")
        handle = open(lock_path, "w")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UsageError(
                f"another modelops up/destroy is running on {self.project}-{self.env} (lock {lock_path}); "
                "wait for it to finish"
            ) from None
        self._lock_handle = handle
        try:
            self._load()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        _set_salt(self.salt)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unsupported state version {data.get('version')!r}")
            if (data.get("project"), data.get("env")) != (self.project, self.env):
                raise ValueError(f"it records {data.get('project')}-{data.get('env')}, not {self.project}-{self.env}")
            if not isinstance(data["resources"], list) or not isinstance(data.get("pending", []), list):
                raise ValueError("resources and pending must be lists")
            self.target = str(data.get("target", ""))
            if data.get("salt") is not None:
                self.salt = bytes.fromhex(data["salt"])
            self.resources = {r["urn"]: ResourceState.from_dict(r) for r in data["resources"]}
            self.pending = [ResourceState.from_dict(r) for r in data.get("pending", [])]
            for resource in [*self.resources.values(), *self.pending]:
                if not (isinstance(resource.urn, str) and isinstance(resource.type, str) and resource.type
                        and isinstance(resource.id, str) and isinstance(resource.inputs, dict)
                        and isinstance(resource.outputs, dict) and isinstance(resource.dependencies, list)):
                    raise ValueError(f"resource {resource.urn!r} is incomplete")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"{self.path}: the local state is corrupt ({exc}); it was not used. Delete the emulator's "
                f"resources with `modelops local stop` and remove {self.path} to start afresh"
            ) from exc

    def get(self, urn: str) -> ResourceState | None:
        with self._lock:
            return self.resources.get(urn)

    def put(self, resource: ResourceState) -> None:
        with self._lock:
            self.resources[resource.urn] = resource
            self._save()

    def remove(self, urn: str) -> None:
        with self._lock:
            self.resources.pop(urn, None)
            self._save()

    def add_pending(self, resource: ResourceState) -> None:
        with self._lock:
            self.pending.append(resource)
            self._save()

    def remove_pending(self, resource: ResourceState) -> None:
        with self._lock:
            self.pending = [r for r in self.pending if (r.urn, r.id) != (resource.urn, resource.id)]
            self._save()

    def pending_snapshot(self) -> list[ResourceState]:
        with self._lock:
            return list(self.pending)

    def reset(self) -> None:
        """Forget every record (their emulator is gone, and the resources with it)."""
        with self._lock:
            self.resources = {}
            self.pending = []
            self._save()

    def set_target(self, url: str) -> None:
        with self._lock:
            self.target = url
            self._save()

    def snapshot(self) -> dict[str, ResourceState]:
        with self._lock:
            return dict(self.resources)

    def _save(self) -> None:
        data = {
            "version": STATE_VERSION,
            "project": self.project,
            "env": self.env,
            "target": self.target,
            "salt": self.salt.hex(),
            "resources": [asdict(r) for r in self.resources.values()],
            "pending": [asdict(r) for r in self.pending],
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        # write, flush to disk, then rename: a crash at any point leaves the old or the new file
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=1, sort_keys=True, default=str))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        if not self.resources and not self.pending and self.path.exists():
            # nothing left: an empty record would only confuse the next reader
            self.path.unlink()


def deletion_order(resources: dict[str, ResourceState]) -> list[list[str]]:
    """Waves of keys of ``resources`` to delete, dependants first; each wave can go in parallel.

    Keys are free-form (a replaced original shares its URN with its successor); dependencies
    and parents are URNs and link every entry holding that URN.
    """
    keys_of: dict[str, set[str]] = {}
    for key, res in resources.items():
        keys_of.setdefault(res.urn, set()).add(key)
    needed_by: dict[str, set[str]] = {key: set() for key in resources}
    for key, res in resources.items():
        for dep in [*res.dependencies, res.parent]:
            for dep_key in keys_of.get(dep, ()):
                if dep_key != key:
                    needed_by[dep_key].add(key)
    remaining = list(resources)
    waves: list[list[str]] = []
    while remaining:
        alive = set(remaining)
        wave = [key for key in remaining if not (needed_by[key] & alive)]
        if not wave:  # a cycle cannot come from Pulumi; fall back to reverse registration order
            wave = [remaining[-1]]
        waves.append(sorted(wave))
        remaining = [key for key in remaining if key not in wave]
    return waves
