"""Fixtures of the local-AWS tests (the servers are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact store for the session: each example model is trained once."""
    return tmp_path_factory.mktemp("artifacts")
