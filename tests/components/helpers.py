"""Builders of the components tests (tests/components/): example environments with a tiny real artifact, renders.

The examples' models are attached to a small real ``model.tar.gz`` written to a temporary
directory (its digest computed from its bytes), so rendering never trains anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Iterator

from modelops.graph.resource_types import BUCKET, BUCKET_OBJECT as OBJECT, ENDPOINT, ENDPOINT_CONFIG, METRIC_ALARM as ALARM
from modelops.graph.resource_types import ROLE_POLICY, SAGEMAKER_MODEL as SM_MODEL, TOPIC
from modelops.spec.envs import load_environment
from modelops.graph.render import Graph, render
from modelops.spec.resolved import Artifact, Environment
from modelops.graph.runtime import Registration
from tests.helpers import FIXTURES, ROOT

FRAMEWORK = "1.9-0"

#: every example spec with its environments
EXAMPLES: list[tuple[Path, tuple[str, ...]]] = [
    (ROOT / "modelops.yaml", ("dev", "staging", "prod")),
    (ROOT / "examples" / "fraud" / "modelops.yaml", ("dev", "prod")),
]
EXAMPLE_CASES = [(spec, env) for spec, envs in EXAMPLES for env in envs]
CASE_IDS = [f"{spec.parent.name if spec.parent != ROOT else 'root'}-{env}" for spec, env in EXAMPLE_CASES]


def tiny_artifact(directory: Path, content: bytes = b"weights") -> Artifact:
    """A real ``model.tar.gz`` (one member) in ``directory`` and its Artifact."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    path.write_bytes(buf.getvalue())
    return Artifact(str(path), "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(), FRAMEWORK)


def with_artifact(env: Environment, artifact: Artifact) -> Environment:
    """``env`` with ``artifact`` attached to every model."""
    models = {name: dataclasses.replace(m, artifact=artifact) for name, m in env.models.items()}
    return dataclasses.replace(env, models=models)


def replace_model(env: Environment, model: str, **serving: Any) -> Environment:
    """``env`` with some serving settings of one model replaced."""
    m = env.models[model]
    new = dataclasses.replace(m, serving=dataclasses.replace(m.serving, **serving))
    return dataclasses.replace(env, models={**env.models, model: new})


def load(spec: Path, env: str, artifact: Artifact) -> Environment:
    return with_artifact(load_environment(spec, env), artifact)


def variants_spec(tmp: Path) -> Path:
    """A copy of the variants fixture spec in ``tmp`` with its prebuilt artifact file."""
    target = tmp / "variants"
    shutil.copytree(FIXTURES / "components" / "variants", target)
    tiny_artifact(target)
    return target / "modelops.yaml"


def policy_doc(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def statements(value: Any) -> list[dict[str, Any]]:
    st = policy_doc(value)["Statement"]
    return st if isinstance(st, list) else [st]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def children_of(graph: Graph, parent: Registration, type_: str) -> Iterator[Registration]:
    """Custom resources of ``type_`` directly under ``parent``."""
    return (r for r in graph.registrations if r.parent == parent.urn and r.type == type_)


def one(regs: Any) -> Registration:
    regs = list(regs)
    assert len(regs) == 1, [r.urn for r in regs]
    return regs[0]


def by_name(graph: Graph, type_: str, physical: str, key: str = "name") -> Registration:
    return one(r for r in graph.by_type(type_) if r.inputs.get(key) == physical)


class Renders:
    """Renders of the example environments, computed once per test session (lazily)."""

    def __init__(self, directory: Path) -> None:
        self.artifact = tiny_artifact(directory)
        self._cache: dict[tuple[str, str], tuple[Environment, Graph]] = {}

    def get(self, spec: Path, env: str) -> tuple[Environment, Graph]:
        key = (str(spec), env)
        if key not in self._cache:
            resolved = load(spec, env, self.artifact)
            self._cache[key] = (resolved, render(resolved))
        return self._cache[key]


_SHARED: list[Renders] = []
_SHARED_DIR: list[tempfile.TemporaryDirectory] = []


def shared_renders() -> Renders:
    """One :class:`Renders` per test process, so each example renders once for all test files."""
    if not _SHARED:
        _SHARED_DIR.append(tempfile.TemporaryDirectory(prefix="modelops-components-"))
        _SHARED.append(Renders(Path(_SHARED_DIR[0].name)))
    return _SHARED[0]
