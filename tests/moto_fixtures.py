"""A plain moto server on 127.0.0.1 for tests that create their evidence with boto3.

One server per test module (``ThreadedMotoServer(port=0)``), reset before each test, stopped
at the end of the module.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Iterator

import boto3
from moto.server import ThreadedMotoServer


@dataclass(frozen=True)
class Moto:
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


def serve_moto() -> Iterator[Moto]:
    """Body of a module-scoped fixture: start a loopback moto server, yield it, stop it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(f"http://{host}:{port}")
    finally:
        server.stop()
