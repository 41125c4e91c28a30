"""What ``modelops up`` applied to the local target, per environment.

``.modelops/state/<project>-<env>.json`` lists every resource (urn, type, physical id,
inputs, outputs, parent, dependencies, protect). During a run each operation is appended
to ``<project>-<env>.journal`` (one JSON line, flushed to disk) instead of rewriting the
whole file, which made a large ``up`` quadratic; when the run ends, the journal is folded
into the file (temp file + fsync + rename) and removed. A run killed at any point leaves
the file plus a journal whose complete lines the next run replays (a torn last line is
the one operation that did not finish). A state that cannot be read is reported, never
trusted. One run per environment at a time (an ``fcntl`` lock).

Before each create, an *intent* (type, physical name, inputs) is journaled; the record of
the created resource clears it. An intent still open when a run starts is a create that
was interrupted between the AWS call and its record: the run first removes whatever that
create may have left (see ``Handler.recover``), so nothing is orphaned and a fixed
physical name does not fail with "already exists".

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
import secrets
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from modelops.errors import UsageError
from modelops.files import atomic_write
from modelops.files import file_digest as _file_digest
from modelops.secrets import is_secret_url

STATE_DIR = Path(".modelops") / "state"
STATE_VERSION = 1


#: the salt of the state opened last in this process (one ``up``/``destroy`` at a time);
#: before any state is opened, a per-process one keeps digests stable within the run
_salt: bytes = secrets.token_bytes(16)
_salt_lock = threading.Lock()
SECRET_PREFIX = "secret:hmac-sha256:"


def _set_salt(salt: bytes) -> None:
    global _salt
    with _salt_lock:
        _salt = salt


def secret_digest(value: str) -> str:
    """The stored form of a secret: ``secret:hmac-sha256:<hex>``, keyed by the state's salt."""
    with _salt_lock:
        key = _salt
    return SECRET_PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def to_plain(value: Any) -> Any:
    """Inputs as JSON data: assets become ``{"__asset": kind, "path", "sha256"}`` (content counts).

    Secrets become :func:`secret_digest`: a subscription's http(s) ``endpoint`` and any
    non-loopback https URL.
    """
    if isinstance(value, dict) and str(value.get("protocol", "")).lower() in ("http", "https") \
            and isinstance(value.get("endpoint"), str) and not value["endpoint"].startswith(SECRET_PREFIX):
        value = {**value, "endpoint": secret_digest(value["endpoint"])}
    if is_secret_url(value):
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


@dataclass
class Intent:
    """A create that was started: what it may have made, for recovery after a crash."""

    urn: str
    type: str
    name: str
    physical: str
    inputs: dict[str, Any]


class StateStore:
    """The state of one environment, locked for the lifetime of the ``with`` block."""

    def __init__(self, path: Path, project: str, env: str) -> None:
        self.path = path
        self.journal_path = path.with_suffix(".journal")
        self.project = project
        self.env = env
        self.resources: dict[str, ResourceState] = {}
        #: originals of replaced resources, deleted after the program (create-before-delete)
        self.pending: list[ResourceState] = []
        #: creates started and not recorded yet, by urn
        self.intents: dict[str, Intent] = {}
        self.target = ""
        #: keys the digests of secrets in this state (not itself a secret: it defeats lookup tables)
        self.salt = secrets.token_bytes(16)
        #: bumped by each fold of the journal into the file; a journal of another generation is stale
        self.generation = 0
        self._lock = threading.Lock()
        self._lock_handle: Any = None
        self._journal_fd: int | None = None
        #: group commit: journal lines written in this run, and how many of them are on disk
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0

    @classmethod
    def open(cls, root: Path, project: str, env: str) -> "StateStore":
        return cls(Path(root).resolve() / STATE_DIR / f"{project}-{env}.json", project, env)

    @classmethod
    def read(cls, root: Path, project: str, env: str) -> "StateStore":
        """The state as a run in progress (or a killed one) left it, without taking the lock."""
        store = cls.open(root, project, env)
        store._load()
        return store

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
            if self.journal_path.exists():
                self._fold()  # a killed run's journal: start this run from one complete file
        except BaseException:
            self.__exit__(None, None, None)
            raise
        _set_salt(self.salt)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._journal_fd is not None:
                with self._sync_lock, self._lock:  # the order _sync takes them in
                    self._fold()
        finally:
            if self._lock_handle is not None:
                fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
                self._lock_handle.close()
                self._lock_handle = None

    def _load(self) -> None:
        try:
            if self.path.exists():
                data = json.loads(self.path.read_bytes())
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, got {type(data).__name__}")
                if data.get("version") != STATE_VERSION:
                    raise ValueError(f"unsupported state version {data.get('version')!r}")
                if (data.get("project"), data.get("env")) != (self.project, self.env):
                    raise ValueError(f"it records {data.get('project')}-{data.get('env')}, not {self.project}-{self.env}")
                if not isinstance(data["resources"], list) or not isinstance(data.get("pending", []), list) \
                        or not isinstance(data.get("intents", []), list):
                    raise ValueError("resources, pending and intents must be lists")
                self.target = str(data.get("target", ""))
                if data.get("salt") is not None:
                    self.salt = bytes.fromhex(data["salt"])
                self.generation = int(data.get("generation", 0))
                self.resources = {r["urn"]: ResourceState.from_dict(r) for r in data["resources"]}
                self.pending = [ResourceState.from_dict(r) for r in data.get("pending", [])]
                self.intents = {i["urn"]: Intent(**i) for i in data.get("intents", [])}
            if self.journal_path.exists():
                self._replay()
            for resource in [*self.resources.values(), *self.pending]:
                if not (isinstance(resource.urn, str) and isinstance(resource.type, str) and resource.type
                        and isinstance(resource.id, str) and isinstance(resource.inputs, dict)
                        and isinstance(resource.outputs, dict) and isinstance(resource.dependencies, list)):
                    raise ValueError(f"resource {resource.urn!r} is incomplete")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"{self.path}: the local state is corrupt ({exc}); it was not used. Delete the emulator's "
                f"resources with `modelops local stop` and remove {self.path} (and {self.journal_path.name}, if "
                "there) to start afresh"
            ) from exc

    def _replay(self) -> None:
        raw = self.journal_path.read_bytes()
        lines = raw.split(b"\n")
        torn = lines.pop()  # b"" when the last write completed
        if not lines:
            return  # not even the header was written
        header = json.loads(lines[0])
        if not isinstance(header, dict) or "generation" not in header:
            raise ValueError(f"{self.journal_path.name} line 1 is not a journal header")
        if header["generation"] != self.generation:
            return  # the file already holds it: the fold finished, removing the journal did not
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
            except ValueError:
                raise ValueError(f"{self.journal_path.name} line {number} is not JSON") from None
            self._apply(entry)
        del torn  # an operation whose line was not completely written did not happen

    # --- operations: each is applied in memory and appended to the journal --------------------

    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry["op"]
        if op == "put":
            resource = ResourceState.from_dict(entry["resource"])
            self.resources[resource.urn] = resource
            self.intents.pop(resource.urn, None)
        elif op == "remove":
            self.resources.pop(entry["urn"], None)
            self.intents.pop(entry["urn"], None)
        elif op == "add_pending":
            resource = ResourceState.from_dict(entry["resource"])
            if all((r.urn, r.id) != (resource.urn, resource.id) for r in self.pending):
                self.pending.append(resource)
        elif op == "remove_pending":
            self.pending = [r for r in self.pending if (r.urn, r.id) != (entry["urn"], entry["id"])]
        elif op == "intent":
            self.intents[entry["intent"]["urn"]] = Intent(**entry["intent"])
        elif op == "end_intent":
            self.intents.pop(entry["urn"], None)
        elif op == "labels":
            for urn, label in entry["labels"].items():
                if urn in self.resources:
                    self.resources[urn].entity = label
        elif op == "target":
            self.target = entry["url"]
        elif op == "reset":
            self.resources, self.pending, self.intents = {}, [], {}
        else:
            raise ValueError(f"unknown journal operation {op!r}")

    def _do(self, entry: dict[str, Any]) -> None:
        """Apply ``entry`` in memory and journal it; returns once its line is on disk.

        The line is encoded before the lock is taken and flushed to disk after it is
        released (group commit): concurrent registrations do not queue behind each other's
        encoding and fdatasync, and one fdatasync covers every line written before it. The
        order of lines is the order of the in-memory operations (both under the lock), and
        no caller goes on before its own line is durable, so an intent is always on disk
        before the AWS call it announces.
        """
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8") + b"\n"
        with self._lock:
            self._apply(entry)
            fd = self._append(line)
            self._written += 1
            ticket = self._written
        self._sync(fd, ticket)

    def _append(self, line: bytes) -> int:
        if self._lock_handle is None:
            raise RuntimeError(f"{self.path}: a record written outside the run that holds the lock")
        if self._journal_fd is None:
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            os.write(self._journal_fd, json.dumps({"generation": self.generation}).encode() + b"\n")
        os.write(self._journal_fd, line)
        return self._journal_fd

    def _sync(self, fd: int, ticket: int) -> None:
        """Make every journal line up to the ``ticket``-th of this run durable (one fdatasync for a group)."""
        with self._sync_lock:
            if self._synced >= ticket:
                return  # an fdatasync that started after our write covered it
            with self._lock:
                if fd != self._journal_fd:
                    return  # folded meanwhile: the line is in the state file (fsynced), the journal gone
                upto = self._written
            os.fdatasync(fd)
            self._synced = upto

    def get(self, urn: str) -> ResourceState | None:
        with self._lock:
            return self.resources.get(urn)

    def put(self, resource: ResourceState) -> None:
        self._do({"op": "put", "resource": asdict(resource)})

    def remove(self, urn: str) -> None:
        self._do({"op": "remove", "urn": urn})

    def add_pending(self, resource: ResourceState) -> None:
        self._do({"op": "add_pending", "resource": asdict(resource)})

    def remove_pending(self, resource: ResourceState) -> None:
        self._do({"op": "remove_pending", "urn": resource.urn, "id": resource.id})

    def pending_snapshot(self) -> list[ResourceState]:
        with self._lock:
            return list(self.pending)

    def begin_create(self, intent: Intent) -> None:
        """Journal that a create of ``intent.physical`` starts; its ``put`` (or ``end_create``) clears it."""
        self._do({"op": "intent", "intent": asdict(intent)})

    def end_create(self, urn: str) -> None:
        """The create of ``urn`` failed without making anything (e.g. the name was taken)."""
        self._do({"op": "end_intent", "urn": urn})

    def intents_snapshot(self) -> list[Intent]:
        with self._lock:
            return list(self.intents.values())

    def set_labels(self, labels: dict[str, str]) -> None:
        """Set the entity label of each recorded resource (one journal line for all)."""
        changed = {u: lb for u, lb in labels.items() if u in self.resources and self.resources[u].entity != lb}
        if changed:
            self._do({"op": "labels", "labels": changed})

    def reset(self) -> None:
        """Forget every record (their emulator is gone, and the resources with it)."""
        self._do({"op": "reset"})

    def set_target(self, url: str) -> None:
        if url != self.target:
            self._do({"op": "target", "url": url})

    def snapshot(self) -> dict[str, ResourceState]:
        with self._lock:
            return dict(self.resources)

    def _fold(self) -> None:
        """Write the whole state to the file (temp + fsync + rename), then drop the journal."""
        self.generation += 1
        if self.resources or self.pending or self.intents:
            data = {
                "version": STATE_VERSION,
                "generation": self.generation,
                "project": self.project,
                "env": self.env,
                "target": self.target,
                "salt": self.salt.hex(),
                "resources": [asdict(r) for r in self.resources.values()],
                "pending": [asdict(r) for r in self.pending],
                "intents": [asdict(i) for i in self.intents.values()],
            }
            # a crash at any point leaves the old or the new file
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True, default=str))
        elif self.path.exists():
            # nothing left: an empty record would only confuse the next reader
            self.path.unlink()
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        self.journal_path.unlink(missing_ok=True)


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
