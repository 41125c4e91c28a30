"""The spec: load (positions), schema, semantics, overlays, resolve."""

__all__: list[str] = []
