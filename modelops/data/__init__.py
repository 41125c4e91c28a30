"""Data files shipped with ModelOps: price list, resource type table."""

__all__: list[str] = []
