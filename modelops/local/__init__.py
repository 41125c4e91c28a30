"""Local AWS target."""
__all__: list[str] = []
