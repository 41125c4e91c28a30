"""The ``modelops`` command line: :mod:`modelops.cli.main` runs it, :mod:`modelops.cli.app`
holds the application the command modules register on."""

__all__: list[str] = []
