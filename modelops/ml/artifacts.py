"""Model artifacts: the local content-addressed store, build cache, and attaching them to an environment.

Every model an environment serves needs a packaged ``model.tar.gz`` before rendering.
:func:`attach_artifacts` finds it: a pinned ``version`` comes from the store, a ``train``
model from the build cache (or a fresh build), a prebuilt ``artifact:`` file is copied in.

Layout, under the spec's directory (``root``)::

    .modelops/artifacts/<hex>/model.tar.gz   the package; <hex> is sha256 of its bytes
    .modelops/artifacts/<hex>/card.json      its model card (when the package has one)
    .modelops/builds/<key>.json              train spec + data digest + versions -> digest

Writes go to a temporary file and are renamed into place, and builds of one key take a
file lock, so parallel tests and commands never see half-written files.

Example::

    env = attach_artifacts(load_environment("modelops.yaml", "dev"))
    env.models["churn-classifier"].artifact.digest     # 'sha256:…'
    card(env.models["churn-classifier"].artifact.digest, Path("."))["metrics"]["roc_auc"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import stat
import tarfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from modelops.spec import resolved
from modelops.errors import UsageError
from modelops.files import atomic_write, file_digest
from modelops.plain import plain
from modelops.ml.build import library_versions, train_model
from modelops.ml.package import INFERENCE_SOURCE, digest_of, package_bytes, read_member

STATE_DIR = ".modelops"
STORE_DIR = "artifacts"
BUILDS_DIR = "builds"
#: bump when the package layout or training procedure changes: old cache entries no longer match
PACKAGE_FORMAT = 2

#: the largest prebuilt package (``artifact:``) read into the store
MAX_PACKAGE_BYTES = 1024 * 1024 * 1024

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@dataclass(frozen=True)
class BuildOutcome:
    """What ``modelops build`` reports: the artifact, its card, and whether it came from the cache."""

    model: str
    artifact: resolved.Artifact
    card: dict[str, Any]
    cached: bool

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.card.get("metrics", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "digest": self.artifact.digest,
            "path": self.artifact.path,
            "framework_version": self.artifact.framework_version,
            "cached": self.cached,
            "metrics": self.metrics,
            "task": self.card.get("task"),
            "estimator": self.card.get("estimator"),
        }


def default_root(env: resolved.Environment) -> Path:
    """The directory holding ``.modelops``: the spec's directory (the current one when unknown)."""
    return Path(env.spec_file).resolve().parent if env.spec_file else Path.cwd()


def store_path(digest: str, root: Path) -> Path:
    """Where the package with ``digest`` lives in the store (it may not exist)."""
    return Path(root) / STATE_DIR / STORE_DIR / _hex(digest) / "model.tar.gz"


def _hex(digest: str) -> str:
    hexpart = digest.removeprefix("sha256:")
    if len(hexpart) != 64 or hexpart.strip("0123456789abcdef"):
        raise UsageError(f"{digest!r} is not an artifact digest; expected sha256: and 64 lowercase hex digits")
    return hexpart


def put(data: bytes, root: Path) -> tuple[str, Path]:
    """Add package bytes to the store (idempotent); returns (digest, path)."""
    digest = digest_of(data)
    path = store_path(digest, root)
    if not (path.is_file() and file_digest(path) == digest):
        atomic_write(path, data)
    _sync_card(path, read_member(path, "card.json"))
    return digest, path


def _sync_card(package: Path, member: bytes | None) -> None:
    """Make ``card.json`` beside ``package`` a copy of the package's own card (an edited copy is replaced)."""
    card_path = package.with_name("card.json")
    if member is not None and not (card_path.is_file() and card_path.read_bytes() == member):
        atomic_write(card_path, member)


#: (package file as stat'ed, store root) -> (digest, stored path): one spec names one package
#: for many models, and a diff resolves every model of three environments twice
_SOURCES: dict[tuple[Any, ...], tuple[str, Path]] = {}


def _put_source(source: Path, root: Path) -> tuple[str, Path]:
    """:func:`put` of a package file, once per process for a file unchanged since (size, mtime, inode)."""
    st = source.stat()
    # (device, inode) is the file wherever the path points from; root as given (another
    # spelling of the same directory is only a miss)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, str(root))
    hit = _SOURCES.get(key)
    if hit is not None and hit[1].is_file():
        return hit
    if st.st_size > MAX_PACKAGE_BYTES:
        raise UsageError(f"{source}: the package is {st.st_size:,} bytes, over the {MAX_PACKAGE_BYTES:,}-byte limit")
    result = put(source.read_bytes(), root)
    _SOURCES[key] = result
    return result


def lookup(digest: str, root: Path) -> Path | None:
    """The stored package with ``digest``, or None (a corrupted file counts as missing)."""
    path = store_path(digest, root)
    if path.is_file() and file_digest(path) == digest:
        return path
    return None


def card(digest: str, root: Path) -> dict[str, Any]:
    """The model card of a stored artifact (metrics for promotion gates, versions, dataset digest).

    The card is read from inside the package, once its bytes hash to ``digest``: the
    ``card.json`` beside it is a copy for readers that want no unpacking, and one edited
    by hand is replaced by the package's own.

    >>> card("sha256:…", Path("."))["metrics"]["accuracy"]   # doctest: +SKIP
    """
    path = lookup(digest, root)
    if path is None:
        raise UsageError(
            f"{digest} is not in the artifact store ({Path(root) / STATE_DIR / STORE_DIR}); "
            "run `modelops build MODEL` on the commit that produced it"
        )
    member = read_member(path, "card.json")
    if member is None:
        raise UsageError(f"{digest} has no model card (a prebuilt package without card.json); its metrics are unknown")
    _sync_card(path, member)
    return json.loads(member.decode("utf-8"))


_FRAMEWORKS: dict[tuple[str, int, int, int], str | None] = {}


def framework_of(digest: str, root: Path) -> str | None:
    """The framework version on the card of a stored package, or None (no card, or none on it)."""
    # a string path: asked once per model and environment (3,000 times in a 1,000-model spec's validate)
    card_path = os.path.join(root, STATE_DIR, STORE_DIR, _hex(digest), "card.json")
    try:
        st = os.stat(card_path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    # read once per process while the card is unchanged (a model per environment asks again)
    key = (card_path, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _FRAMEWORKS:
        value = json.loads(Path(card_path).read_text(encoding="utf-8")).get("framework_version")
        _FRAMEWORKS[key] = str(value) if value else None
    return _FRAMEWORKS[key]


# ---------------------------------------------------------------------------------------- builds


def build_key(train: resolved.Train, dataset: resolved.Dataset, source_digest: str) -> str:
    """Cache key of a build: the train spec, the data, and every version that changes the bytes."""
    material = {
        "format": PACKAGE_FORMAT,
        "train": plain(train),
        "dataset": {"name": dataset.name, "format": dataset.format, "digest": source_digest},
        "libraries": library_versions(),
        "inference": hashlib.sha256(INFERENCE_SOURCE.read_bytes()).hexdigest(),
    }
    text = json.dumps(material, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _build_lock(key: str, root: Path) -> Iterator[None]:
    """One build per key at a time: a thread lock in this process, a file lock across processes."""
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, threading.Lock())
    with lock:
        lock_path = Path(root) / STATE_DIR / BUILDS_DIR / f"{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as handle:
            try:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - not POSIX: the atomic renames still hold
                pass
            yield


def _dataset_of(env: resolved.Environment, model: resolved.Model) -> resolved.Dataset:
    dataset = env.datasets.get(model.dataset)
    if dataset is None:
        raise UsageError(f"models.{model.name}.dataset: {model.dataset!r} is not a dataset of this spec")
    return dataset


def _source_digest(dataset: resolved.Dataset, model: resolved.Model) -> str:
    if not dataset.source:
        raise UsageError(
            f"datasets.{dataset.name}.source: not set, so there is no data to train models.{model.name} on; "
            "set `source` to a local data file"
        )
    if not Path(dataset.source).is_file():
        raise UsageError(
            f"datasets.{dataset.name}.source: data file {dataset.source} does not exist; create it or fix the path"
        )
    # the file on disk is what gets trained on: hash it rather than trust a digest computed earlier
    return file_digest(dataset.source)


def cached_build(env: resolved.Environment, name: str, root: Path | None = None) -> BuildOutcome | None:
    """The stored build of model ``name`` for its current train spec and data, or None."""
    root = Path(root) if root is not None else default_root(env)
    model = _model(env, name)
    if model.train is None:
        return None
    dataset = _dataset_of(env, model)
    key = build_key(model.train, dataset, _source_digest(dataset, model))
    return _read_record(key, name, root)


def _read_record(key: str, name: str, root: Path) -> BuildOutcome | None:
    record_path = Path(root) / STATE_DIR / BUILDS_DIR / f"{key}.json"
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    path = lookup(record.get("digest", ""), root) if str(record.get("digest", "")).startswith("sha256:") else None
    if path is None:
        return None
    the_card = card(record["digest"], root)
    artifact = resolved.Artifact(str(path), record["digest"], the_card["framework_version"])
    return BuildOutcome(name, artifact, the_card, cached=True)


def build_model(
    env: resolved.Environment, name: str, root: Path | None = None, *, force: bool = False
) -> BuildOutcome:
    """Train, package and store model ``name`` (or return the cached build of the same inputs).

    >>> build_model(env, "churn-classifier").artifact.digest   # doctest: +SKIP
    'sha256:…'
    """
    root = Path(root) if root is not None else default_root(env)
    model = _model(env, name)
    if model.train is None:
        raise UsageError(
            f"models.{name}: has no `train` section (it serves a prebuilt artifact); nothing to build"
        )
    dataset = _dataset_of(env, model)
    source_digest = _source_digest(dataset, model)
    key = build_key(model.train, dataset, source_digest)
    with _build_lock(key, root):
        if not force:
            found = _read_record(key, name, root)
            if found is not None:
                return found
        result = train_model(model, dataclasses.replace(dataset, source_digest=source_digest))
        data = package_bytes(result)
        digest, path = put(data, root)
        record = {"digest": digest, "model": name, "estimator": model.train.estimator, "dataset_digest": source_digest}
        atomic_write(
            Path(root) / STATE_DIR / BUILDS_DIR / f"{key}.json",
            (json.dumps(record, sort_keys=True, indent=2) + "\n").encode("utf-8"),
        )
    artifact = resolved.Artifact(str(path), digest, result.card["framework_version"])
    return BuildOutcome(name, artifact, result.card, cached=False)


def _model(env: resolved.Environment, name: str) -> resolved.Model:
    model = env.models.get(name)
    if model is None:
        known = ", ".join(sorted(env.models)) or "none"
        raise UsageError(f"model {name!r} is not declared in {env.spec_file or 'the spec'} (models: {known})")
    return model


# ---------------------------------------------------------------------------------------- attach


def _where(env: resolved.Environment) -> str:
    return env.overlay_file or env.spec_file or "modelops.yaml"


def _check_framework(env: resolved.Environment, model: resolved.Model, artifact: resolved.Artifact) -> None:
    if model.framework_version and model.framework_version != artifact.framework_version:
        raise UsageError(
            f"{_where(env)}: models.{model.name}.framework_version: {model.framework_version} does not match "
            f"{artifact.framework_version}, the version artifact {artifact.digest} was built for; "
            f"remove framework_version or set it to {artifact.framework_version}"
        )


def resolve_artifact(
    env: resolved.Environment, model: resolved.Model, *, build: bool = True, root: Path | None = None
) -> resolved.Artifact:
    """The artifact ``model`` serves in ``env`` (see :func:`attach_artifacts`)."""
    root = Path(root) if root is not None else default_root(env)
    store = f"{STATE_DIR}/{STORE_DIR}"
    if model.version:
        path = lookup(model.version, root)
        if path is None:
            raise UsageError(
                f"models.{model.name}.version {model.version} is not in the artifact store ({store}); "
                f"run `modelops build {model.name}` on the commit that produced it"
            )
        framework = framework_of(model.version, root) or model.framework_version
        if framework is None:
            raise UsageError(
                f"models.{model.name}.version {model.version}: the package has no card.json with a framework version; "
                f"set models.{model.name}.framework_version"
            )
        artifact = resolved.Artifact(str(path), model.version, framework)
    elif model.train is not None:
        outcome = cached_build(env, model.name, root)
        if outcome is None:
            if not build:
                raise UsageError(
                    f"models.{model.name}: no build of its current train spec and data in {store}; "
                    f"run `modelops build {model.name}`"
                )
            outcome = build_model(env, model.name, root)
        artifact = outcome.artifact
    elif model.artifact_source:
        source = Path(model.artifact_source)
        if not source.is_file():
            raise UsageError(
                f"models.{model.name}.artifact: {source} does not exist; build the package or fix the path"
            )
        try:
            digest, path = _put_source(source, root)
        except UsageError as exc:  # a limit of what is read from a package
            raise UsageError(f"models.{model.name}.artifact: {exc}; point it at a model.tar.gz made by `modelops build`") from None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            # not a gzipped tar (or unreadable): a mistake in the spec's file, not a crash
            raise UsageError(
                f"models.{model.name}.artifact: {source} is not a model package (a gzipped tar with card.json) "
                f"({type(exc).__name__}: {exc}); point it at a model.tar.gz made by `modelops build`"
            ) from exc
        framework = framework_of(digest, root) or model.framework_version
        if framework is None:
            raise UsageError(
                f"models.{model.name}.artifact: {source} has no card.json naming its framework version; "
                f"set models.{model.name}.framework_version (e.g. 1.9-0)"
            )
        artifact = resolved.Artifact(str(path), digest, framework)
    else:
        raise UsageError(f"models.{model.name}: needs `train`, `artifact` or a pinned `version`")
    _check_framework(env, model, artifact)
    return artifact


def attach_artifacts(
    env: resolved.Environment, *, build: bool = True, root: Path | None = None
) -> resolved.Environment:
    """A copy of ``env`` with ``Model.artifact`` set for every model.

    A pinned ``version`` is looked up in the store; a ``train`` model uses the cached build
    of its train spec and data (built now when ``build``, else a UsageError saying to run
    ``modelops build``); an ``artifact:`` file is added to the store. A ``framework_version``
    in the spec that differs from the artifact's card is refused.

    >>> attach_artifacts(env).models["churn-classifier"].artifact.framework_version  # doctest: +SKIP
    '1.9-0'
    """
    models = {
        name: dataclasses.replace(model, artifact=resolve_artifact(env, model, build=build, root=root))
        for name, model in env.models.items()
    }
    return dataclasses.replace(env, models=models)


def copy_out(digest: str, root: Path, destination: Path) -> Path:
    """Copy a stored package to ``destination`` (a file path), e.g. for upload by hand."""
    path = lookup(digest, root)
    if path is None:
        raise UsageError(f"{digest} is not in the artifact store ({Path(root) / STATE_DIR / STORE_DIR})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, destination)
    return destination
