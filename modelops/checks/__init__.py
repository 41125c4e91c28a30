"""Policy checks over a rendered graph, and the FSBP mapping."""

__all__: list[str] = []
