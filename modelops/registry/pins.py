"""A fresh runner: the versions an environment pins, copied out of the registry when not built here.

An environment pins exact versions: ``models.<m>.version`` (the primary), and the
``serving.canary.version`` and ``serving.shadow.version`` of its rollouts. A CI runner that
checked the repository out has no ``.modelops/artifacts/``: :func:`fetch_pins` copies every
pinned version missing there out of the registry, checks that its bytes hash to the
digest, and adds it to the local store, where ``attach_artifacts`` finds it. A pin found
nowhere is a spec problem at the place that pins it (exit 2).

Example::

    fetched = fetch_pins(env, Path("."), lambda: Registry.at(clients, env.project))
    [f.digest for f in fetched]
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from modelops.components import naming
from modelops.errors import ApplyError, ModelOpsError, Problem, SpecError, Unpublished
from modelops.ml import artifacts
from modelops.registry.store import Registry
from modelops.spec.loader import display_name, load_yaml
from modelops.spec.resolved import Environment



@dataclass(frozen=True)
class Pin:
    """One pinned version of an environment: the model, where in the spec, the digest."""

    model: str
    #: the spec path of the pin, e.g. ("models", "churn", "serving", "canary", "version")
    path: tuple[str, ...]
    digest: str

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def variant(self) -> str:
        """The endpoint variant serving the pinned version: ``primary``, ``canary`` or ``shadow``."""
        return "primary" if self.path[-1] != "version" or len(self.path) == 3 else self.path[-2]


@dataclass(frozen=True)
class Fetched:
    """A version copied out of the registry into the local store."""

    model: str
    digest: str
    source: str
    bytes: int

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "digest": self.digest, "source": self.source, "bytes": self.bytes}


def pins(env: Environment) -> list[Pin]:
    """Every version ``env`` pins, primary first per model, models sorted."""
    out = []
    for name in sorted(env.models):
        model = env.models[name]
        if model.version:
            out.append(Pin(name, ("models", name, "version"), model.version))
        serving = model.serving
        if serving.canary is not None:
            out.append(Pin(name, ("models", name, "serving", "canary", "version"), serving.canary.version))
        if serving.shadow is not None:
            out.append(Pin(name, ("models", name, "serving", "shadow", "version"), serving.shadow.version))
    return out


def missing_pins(env: Environment, root: Path) -> list[Pin]:
    """The pins of ``env`` whose package is not in the local store under ``root``."""
    return [p for p in pins(env) if artifacts.lookup(p.digest, root) is None]


def position(env: Environment, pin: Pin) -> tuple[str, int, int]:
    """(file, line, column) of the pin: the overlay that sets it, else the spec or team file."""
    files = [f for f in (env.overlay_file, env.spec_file, *env.include_files) if f]
    for file in files:
        try:
            doc = load_yaml(file, strict=False, allow_empty=True)
        except Exception:  # noqa: BLE001 - a position is a nicety; the file was validated before
            continue
        if pin.path in doc.positions:
            line, column = doc.value_position(pin.path)
            return display_name(file), line, column
    return display_name(files[0]) if files else "modelops.yaml", 0, 0


def fetch_pins(env: Environment, root: Path, registry: Callable[[], Registry] | None) -> list[Fetched]:
    """Copy every pinned version of ``env`` missing from the local store out of the registry.

    ``registry`` makes the registry handle (called once, only when a pin is missing; None:
    there is no registry to ask). Every pin found nowhere is reported at once, as a
    :class:`~modelops.errors.SpecError` naming its place, the model and the digest.
    """
    missing = missing_pins(env, root)
    if missing and any(m.artifact_source and not m.version for m in env.models.values()):
        # a pin may name the package another model's `artifact:` file holds: attaching adds it
        # to the store, so add those first (what is wrong with one is attach's to report)
        for model in env.models.values():
            if model.artifact_source and not model.version:
                with contextlib.suppress(ModelOpsError):
                    artifacts.resolve_artifact(env, model, build=False, root=root)
        missing = missing_pins(env, root)
    if not missing:
        return []
    reg: Registry | None = None
    why = "no registry was given"
    if registry is not None:
        try:
            reg = registry()
            if not reg.exists():
                why = f"the registry bucket {reg.bucket} does not exist at {reg.where or 'the target'}"
                reg = None
        except (ClientError, BotoCoreError) as exc:
            why = f"the registry cannot be read ({type(exc).__name__}: {exc})"
            reg = None
    fetched: list[Fetched] = []
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for pin in missing:
        if (pin.model, pin.digest) in seen or artifacts.lookup(pin.digest, root) is not None:
            continue
        seen.add((pin.model, pin.digest))
        data, where = None, why
        if reg is not None:
            where = f"s3://{reg.bucket}"
            try:
                data = reg.read(naming.registry_key(pin.model, pin.digest))
            except (ClientError, BotoCoreError) as exc:
                where = f"s3://{reg.bucket} cannot be read: {type(exc).__name__}: {exc}"
        if data is None:
            file, line, column = position(env, pin)
            problems.append(Problem(
                "E-PIN-UNKNOWN", file, line, column, pin.dotted,
                f"{pin.model} {pin.variant} version {pin.digest} is neither in {artifacts.STATE_DIR}/{artifacts.STORE_DIR} nor in the "
                f"registry ({where})",
                f"publish it (`modelops publish {pin.model}` on the commit that built it) or pin a published version"))
            continue
        got = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if got != pin.digest:
            raise ApplyError(f"{reg.uri(naming.registry_key(pin.model, pin.digest)) if reg else pin.digest}: its bytes "
                             f"hash to {got}, not {pin.digest}; not used (the registry object is not what was published)")
        artifacts.put(data, root)
        fetched.append(Fetched(pin.model, pin.digest, reg.uri(naming.registry_key(pin.model, pin.digest)) if reg else "",
                               len(data)))
    if problems:
        raise SpecError(problems)
    return fetched


def unpublished_cause(exc: BaseException | None) -> Unpublished | None:
    """The :class:`~modelops.components.model.UnpublishedVersion` behind a failed program run, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Unpublished):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def unpublished_error(env: Environment, err: Unpublished) -> SpecError:
    """The program's registry lookup failure as a spec problem at the place that sets the version."""
    path = tuple(err.path.split("."))
    file, line, column = position(env, Pin(err.model, path, err.digest))
    return SpecError([Problem(
        "E-PIN-UNPUBLISHED", file, line, column, err.path,
        f"{err.model} {err.variant} version {err.digest} is not in the registry ({err.uri})",
        f"publish it (`modelops publish {err.model}` on the commit that built it) or pin a published version")])


def store_view(root: Path) -> Callable[[str, str], bool]:
    """The registry as a render without AWS sees it: the local store under ``root`` (what
    ``build`` made and ``up`` copied out of the registry). A key ``models/<model>/<hex>/...``
    is there when the store holds the package of that digest."""

    def there(bucket: str, key: str) -> bool:
        parts = key.split("/")
        return len(parts) == 4 and parts[0] == "models" and artifacts.lookup(f"sha256:{parts[2]}", root) is not None

    return there
