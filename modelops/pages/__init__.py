"""Pages people look at: the environment at a glance (``status``) and monitor reports (``report``)."""

__all__: list[str] = []
