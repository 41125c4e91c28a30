"""Shared test set-up: dummy AWS credentials (never real ones), loopback only, and the
fixtures of several areas: the plain moto server and the TLS emulator.

Each server runs once per test module and is reset before each test that asks for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from moto.server import ThreadedMotoServer

from modelops.local.emulator import EmulatorServer
from tests.helpers import ROOT, Emulator, Moto

# boto3 must never find real credentials or talk to a real endpoint from the tests.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}.items():
    os.environ[_key] = _value


@pytest.fixture
def repo_root() -> Path:
    """The repository root (where the example modelops.yaml lives)."""
    return ROOT


@pytest.fixture(scope="module")
def moto_server() -> Iterator[Moto]:
    """A plain moto server (``ThreadedMotoServer(port=0)``) on 127.0.0.1 for the module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: Moto) -> Iterator[Moto]:
    moto_server.reset()
    yield moto_server


@pytest.fixture(scope="module")
def emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """:class:`modelops.local.emulator.EmulatorServer` — moto's server application on
    127.0.0.1 and a free port, serving TLS and evaluating bucket-policy conditions, exactly
    like the embedded emulator ``modelops up`` starts — for the module."""
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
    """One artifact store for the session: each example model is trained once (local, checks)."""
    return tmp_path_factory.mktemp("artifacts")
