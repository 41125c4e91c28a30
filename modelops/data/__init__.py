"""Data files shipped with ModelOps: price list, replacement table."""

__all__: list[str] = []
