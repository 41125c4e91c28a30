"""Helpers of the local-AWS tests (tests/local/): the example projects, their artifacts trained once.

The tests run against the ``emulator`` fixture of tests/conftest.py and check results with
plain boto3 clients.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from modelops.local.state import StateStore
from modelops.spec.resolved import Environment
from tests.helpers import ROOT

#: every example spec and its environments
EXAMPLES = {
    "churn": (ROOT / "modelops.yaml", ("dev", "staging", "prod")),
    "fraud": (ROOT / "examples" / "fraud" / "modelops.yaml", ("dev", "prod")),
    "teams": (ROOT / "examples" / "teams" / "modelops.yaml", ("dev", "prod")),
}
CASES = [(name, env) for name, (_, envs) in EXAMPLES.items() for env in envs]


_ENV_CACHE: dict[tuple[str, str, str], Environment] = {}


def environment(spec: Path, env: str, artifact_root: Path) -> Environment:
    """The resolved environment with its artifacts attached (built once per session)."""
    key = (str(spec), env, str(artifact_root))
    if key not in _ENV_CACHE:
        _ENV_CACHE[key] = attach_artifacts(load_environment(spec, env), build=True, root=artifact_root)
    return _ENV_CACHE[key]


def copy_project(name: str, destination: Path, artifact_root: Path | None = None) -> Path:
    """A private copy of an example project (spec, overlays, data); returns the spec path.

    With ``artifact_root``, the copy gets that artifact store (builds are keyed by content),
    so commands run in the copy find the example's models already trained.
    """
    spec, _ = EXAMPLES[name]
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(spec, destination / "modelops.yaml")
    shutil.copytree(spec.parent / "stacks", destination / "stacks")
    if name == "churn":
        shutil.copytree(ROOT / "examples" / "churn", destination / "examples" / "churn")
    else:
        shutil.copytree(spec.parent / "data", destination / "data")
    if (spec.parent / "teams").is_dir():  # the team files a root spec includes
        shutil.copytree(spec.parent / "teams", destination / "teams")
    if artifact_root is not None:
        for env in EXAMPLES[name][1]:
            environment(spec, env, artifact_root)  # trained once per session
        shutil.copytree(artifact_root / ".modelops", destination / ".modelops", dirs_exist_ok=True)
    return destination / "modelops.yaml"


def state_files(root: Path, project: str = "churn", env: str = "dev") -> list[Path]:
    """The local state files of every stack of an environment (``<project>-<env>[.<group>].json``)."""
    directory = root / ".modelops" / "state"
    files = [directory / f"{project}-{env}.json", *sorted(directory.glob(f"{project}-{env}.*.json"))]
    return [f for f in files if f.exists() and not f.name.endswith(".outputs.json")]


def env_state(root: Path, project: str = "churn", env: str = "dev") -> dict:
    """The environment's local state, its stacks' files together: ``{"resources": [...]}``."""
    resources = []
    for path in state_files(root, project, env):
        resources += json.loads(path.read_text())["resources"]
    return {"resources": resources}


def env_records(root: Path, project: str, env: str) -> dict:
    """urn -> ResourceState of every stack of an environment, as a killed run may have left them."""
    records = {}
    for path in state_files(root, project, env):
        records.update(StateStore.read(root, project, path.stem[len(project) + 1:]).resources)
    return records


#: the project registry's names (components/naming.py): it outlives every environment's destroy
REGISTRY_BUCKET = re.compile(r"^[a-z0-9-]+-registry-[0-9]{12}$")


def env_buckets(s3: Any) -> list[str]:
    """The buckets on the server but the project's registry: what an environment's destroy must
    leave empty (the registry holds the versions every environment serves, docs/registry.md)."""
    return [b["Name"] for b in s3.list_buckets()["Buckets"] if not REGISTRY_BUCKET.match(b["Name"])]


def registry_keys(s3: Any, project: str = "churn") -> list[str]:
    """Every object key in the project's registry bucket (none when there is no registry)."""
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]
             if REGISTRY_BUCKET.match(b["Name"]) and b["Name"].startswith(f"{project}-registry-")]
    return sorted(o["Key"] for name in names for o in s3.list_objects_v2(Bucket=name).get("Contents", []))
