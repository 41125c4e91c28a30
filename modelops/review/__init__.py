"""Pull-request review of a spec change: compare, risks, cost, formats."""

__all__: list[str] = []
