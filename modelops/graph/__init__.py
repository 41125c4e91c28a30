"""The resource graph: run the program under mocks, render, cache, parallel render."""

__all__: list[str] = []
