"""The ``modelops`` command line: thin wrappers over library functions.

Errors a user can cause are :class:`~modelops.errors.ModelOpsError`: printed as one line
on stderr, exit with their code (2 bad input, 1 failed, 3 gate/condition). A traceback
is shown only with ``--verbose``.

Example::

    $ modelops validate modelops.yaml --env prod
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
# typer >= 0.29 (pyproject) vendors click and raises only its own click's exceptions; the
# click package is no dependency of ours, and importing it cost validate 16 ms for nothing
from typer._click.exceptions import ClickException as _TyperClickException

# every command module registers its commands on `app` when imported
from modelops.cli import diff, local, ml, monitor, owners, pages, plan, promote, registry, security, spec, stacks  # noqa: F401
from modelops.cli.app import app, exit_now
from modelops.errors import ModelOpsError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``modelops`` script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or os.environ.get("MODELOPS_VERBOSE") == "1"
    argv = [a for a in argv if a != "--verbose"]
    try:
        result = app(args=argv, prog_name="modelops", standalone_mode=False)
        return int(result or 0)
    except ModelOpsError as exc:
        if verbose:
            traceback.print_exc()
        print(f"error: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except _TyperClickException as exc:  # bad usage: exit 2
        exc.show(file=sys.stderr)
        return 2
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a raw traceback
        if verbose:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", file=sys.stderr)
        return 1


def run() -> None:
    """The ``modelops`` script: :func:`main`, then :func:`exit_now`."""
    exit_now(main())


if __name__ == "__main__":
    run()
