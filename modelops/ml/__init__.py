"""Model building, local serving and drift: ``modelops build`` / ``serve`` / ``drift``."""

__all__ = ["baseline", "build", "package", "table"]
