"""Performance harness: generated large specs, whole-process timings side by side."""

__all__: list[str] = []
