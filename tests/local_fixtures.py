"""Fixtures of the local-AWS tests: one TLS moto server per module, reset before each test.

The server is :class:`modelops.local.emulator.EmulatorServer` — moto's server application
on 127.0.0.1 and a free port, serving TLS and evaluating bucket-policy conditions, exactly
like the embedded emulator ``modelops up`` starts. Results are checked
with plain boto3 clients.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import requests

from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from modelops.local.emulator import EmulatorServer
from modelops.local.server import Target
from modelops.spec.resolved import Environment

ROOT = Path(__file__).resolve().parent.parent
#: every example spec and its environments
EXAMPLES = {
    "churn": (ROOT / "modelops.yaml", ("dev", "staging", "prod")),
    "fraud": (ROOT / "examples" / "fraud" / "modelops.yaml", ("dev", "prod")),
}
CASES = [(name, env) for name, (_, envs) in EXAMPLES.items() for env in envs]


@dataclass(frozen=True)
class Emulator:
    url: str
    ca_bundle: str

    def client(self, service: str, region: str = "eu-west-1") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            verify=self.ca_bundle,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def target(self) -> Target:
        """The server as a user-given ``--endpoint-url`` target."""
        return Target(url=self.url, verify=self.ca_bundle, embedded=False, identity=self.url)

    def reset(self) -> None:
        response = requests.post(f"{self.url}/moto-api/reset", verify=self.ca_bundle, timeout=30)
        response.raise_for_status()


@pytest.fixture(scope="module")
def emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    server = EmulatorServer(ip_address="127.0.0.1", port=0, tls_dir=tmp_path_factory.mktemp("tls"))
    server.start()
    try:
        yield Emulator(server.url, str(server.cert))
    finally:
        server.stop()


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    emulator_server.reset()
    yield emulator_server


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact store for the session: each example model is trained once."""
    return tmp_path_factory.mktemp("artifacts")


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
    if artifact_root is not None:
        for env in EXAMPLES[name][1]:
            environment(spec, env, artifact_root)  # trained once per session
        shutil.copytree(artifact_root / ".modelops", destination / ".modelops", dirs_exist_ok=True)
    return destination / "modelops.yaml"
