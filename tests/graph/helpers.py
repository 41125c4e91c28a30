"""Helpers of the render tests (tests/graph/), which check that the fast paths change nothing: example environments rendered
with a fixed artifact, as plain JSON that can be compared with a golden file.

Every model gets the same fixed artifact (path relative to the repository, fixed digest),
so the graph depends only on the spec and the code, not on training or on where the
checkout lives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import signal
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from benchmarks.generate import spec as bench_spec
from benchmarks.generate import split_into_teams
from modelops.spec.envs import list_environments, load_environment
from modelops.spec.resolved import Artifact, Environment
from tests.helpers import FIXTURES, ROOT

GOLDEN_DIR = FIXTURES / "perf" / "golden"
#: (spec relative to the repository, environment)
EXAMPLES = [
    (spec, env)
    for spec in ("modelops.yaml", "examples/fraud/modelops.yaml")
    for env in list_environments(ROOT / spec)
]
FIXED_ARTIFACT = Artifact(path="artifacts/model.tar.gz", digest="sha256:" + "ab" * 32, framework_version="1.2-1")


def fixed_environment(spec: str, env: str) -> Environment:
    """The resolved environment with the fixed artifact on every model."""
    resolved = load_environment(ROOT / spec, env)
    models = {name: dataclasses.replace(m, artifact=FIXED_ARTIFACT) for name, m in resolved.models.items()}
    return dataclasses.replace(resolved, models=models)


def _relative(value: Any) -> Any:
    """Absolute paths of this checkout made relative, so the golden file is portable."""
    if isinstance(value, str):
        return value.replace(str(ROOT) + "/", "")
    if isinstance(value, dict):
        return {k: _relative(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v) for v in value]
    return value


def graph_json(graph) -> dict[str, Any]:
    """The comparable part of ``Graph.to_json()`` (no cost estimate), paths relative."""
    data = graph.to_json()
    data.pop("cost", None)
    return _relative(json.loads(json.dumps(data, sort_keys=True, default=str)))


def golden_path(spec: str, env: str) -> Path:
    return GOLDEN_DIR / f"{spec.replace('/', '_').removesuffix('.yaml')}-{env}.json"


def write_minimal_package(path: Path) -> None:
    """A minimal model package: a gzipped tar holding card.json with the framework version."""
    data = json.dumps({"framework_version": "1.2-1"}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("card.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())


@contextlib.contextmanager
def ending(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``proc``, killed on leaving the block if it is still running (a failed test leaves nothing)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts: Ctrl-C's signal at its default.

    A process started with SIGINT ignored (a job run in the background by a shell script,
    as CI may run the tests) passes that on, and Python then never raises KeyboardInterrupt.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_rich_project(root: Path, n_models: int, teams: int = 0) -> Path:
    """A generated spec with every cross-entity link a shard must keep whole: KMS, a secret
    https channel, freshness monitors on datasets (request metrics, dashboard widgets), a
    rolling-back error-rate monitor, a model without monitors. With ``teams``, the same spec
    as a root spec including that many team files (``benchmarks.generate.split_into_teams``)."""
    data = bench_spec(n_models)
    data["encryption"] = "kms"
    data["notifications"]["chat"] = {"https": ["https://hooks.example.com/services/ml-alerts"]}
    for i, ds in enumerate(sorted(data["datasets"])[:3]):
        data["monitors"][f"{ds}-fresh"] = {"dataset": ds, "metric": "freshness", "above": "48h", "period": "1d",
                                           "for": "1d", "notify": ["chat"] if i % 2 else ["oncall", "chat"]}
    data["monitors"]["m0007-errors"] = {"model": "model-0007", "metric": "error_rate", "above": "2%"}
    for name in [m for m in data["monitors"] if m.startswith("m0011-")]:
        del data["monitors"][name]
    root.mkdir(parents=True)
    (root / "stacks").mkdir()
    (root / "artifacts").mkdir()
    write_minimal_package(root / "artifacts" / "model.tar.gz")
    if teams:
        data, team_files = split_into_teams(data, teams)
        (root / "teams").mkdir()
        for path, team_data in team_files.items():
            (root / path).write_text(yaml.safe_dump(team_data, sort_keys=False))
    (root / "modelops.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (root / "stacks" / "prod.yaml").write_text(yaml.safe_dump({"protect": True}))
    return root / "modelops.yaml"
