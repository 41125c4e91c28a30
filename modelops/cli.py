"""The ``modelops`` command line: thin wrappers over library functions.

Each command lives in ``modelops/commands/<area>.py`` and registers itself on :data:`app`.
Errors a user can cause are :class:`~modelops.errors.ModelOpsError`: printed as one line
on stderr, exit with their code (2 bad input, 1 failed, 3 gate/condition). A traceback
is shown only with ``--verbose``.

Example::

    $ modelops validate modelops.yaml --env prod
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
import traceback

import click
import typer

from modelops.errors import ModelOpsError

try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # typer before 0.29 used click itself
    _TyperClickException = click.ClickException

app = typer.Typer(
    name="modelops",
    help="Datasets, models and monitors from one YAML spec, as AWS infrastructure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
local_app = typer.Typer(help="The embedded local AWS emulator.", no_args_is_help=True)
app.add_typer(local_app, name="local")

#: command modules, imported for their registrations (each owned by one area)
COMMAND_MODULES = ("spec", "plan", "local", "ml", "diff", "promote", "security")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"modelops.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"modelops.commands.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``modelops`` script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or os.environ.get("MODELOPS_VERBOSE") == "1"
    argv = [a for a in argv if a != "--verbose"]
    _load_commands()
    try:
        result = app(args=argv, prog_name="modelops", standalone_mode=False)
        return int(result or 0)
    except ModelOpsError as exc:
        if verbose:
            traceback.print_exc()
        print(f"error: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
        return exc.exit_code
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except (click.ClickException, _TyperClickException) as exc:
        # typer >= 0.29 raises its vendored click's exceptions (not click's): bad usage, exit 2
        exc.show(file=sys.stderr)
        return 2
    except (click.exceptions.Abort, typer.Abort):
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


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows as left-aligned columns under their headers: tables for logs and pipes."""
    cells = [list(headers)] + [list(row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def exit_now(code: int) -> None:
    """Exit with ``code`` without tearing the heap down object by object.

    A plan or diff of a large spec leaves millions of objects alive (two rendered graphs,
    the Pulumi SDK's resources); freeing them one by one at interpreter exit takes seconds
    and frees nothing the operating system would not. Output is flushed and exit handlers
    run first; while a non-daemon thread is still working, the normal exit (which waits for
    it) is taken instead.
    """
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what a normal exit runs first: logging, temporary files
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `| head`): nothing left to deliver
            pass
    os._exit(code)


def run() -> None:
    """The ``modelops`` script: :func:`main`, then :func:`exit_now`."""
    exit_now(main())


if __name__ == "__main__":
    run()
