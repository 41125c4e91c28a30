"""Helpers of no single test area: repository paths, handles on the loopback servers the
root conftest.py starts, and a git runner.

Constants and builders of one area live in ``tests/<area>/helpers.py``; pytest fixtures
live in the ``conftest.py`` files and are never imported (see tests/README.md).
"""

from __future__ import annotations

import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

from modelops.local.server import Target

ROOT = Path(__file__).resolve().parent.parent
#: the sample specs, projects and golden files of every area
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class Moto:
    """A plain moto server on 127.0.0.1 (the ``moto`` fixture), for evidence made with boto3."""

    url: str
    region: str = "eu-west-1"

    def client(self, service: str, region: str | None = None):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region or self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            response.read()


@dataclass(frozen=True)
class Emulator:
    """The TLS emulator ``modelops up`` embeds, on 127.0.0.1 (the ``emulator`` fixture)."""

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


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True,
    )
