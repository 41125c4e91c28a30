"""Shared test set-up: dummy AWS credentials (never real ones), loopback only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

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
