"""Pulumi ComponentResources: one per spec kind, and the one that assembles an environment."""

__all__: list[str] = []
