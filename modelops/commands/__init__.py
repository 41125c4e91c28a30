"""CLI command modules; each registers its commands on ``modelops.cli.app``."""

__all__: list[str] = []
