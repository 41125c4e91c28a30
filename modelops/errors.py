"""The one error hierarchy of ModelOps.

Every error a user can cause is a :class:`ModelOpsError` with a stable ``code`` and a
one-line message; the CLI prints it (never a traceback, unless ``--verbose``) and exits
with ``exit_code``. Spec problems are collected and raised together as a :class:`SpecError`.

Example::

    raise SpecError([Problem("E-UNKNOWN-KEY", "modelops.yaml", 12, 7,
                             "models.churn.serving.instance_cout", "unknown key",
                             "did you mean 'instance_count'?")])
"""

from __future__ import annotations

from dataclasses import dataclass


#: control characters as escapes: a problem is one line whatever text a file put in it
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


#: characters of a file's (or a spec's) text a message quotes at most
EXCERPT_CHARS = 40


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` quoted for a message: escaped (``repr``) and cut to ``limit`` characters.

    What a data file holds may be anything (``/proc/self/environ``, a secret): a message,
    which a CI job may post as a pull-request comment, shows at most this much of it.

    Example::

        excerpt("a" * 100)   # "'aaa…aaa'…" (39 characters of it, escaped)
    """
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[: limit - 1]) + "…"


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a spec, at a place: ``FILE:LINE:COL: path: message; fix``."""

    code: str
    file: str
    line: int
    column: int
    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return (f"{text}; {self.fix}" if self.fix else text).translate(_ESCAPES)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "fix": self.fix,
        }


class ModelOpsError(Exception):
    """Base of every error a user can cause. ``exit_code`` is what the CLI exits with."""

    code = "E-MODELOPS"
    exit_code = 1


class SpecError(ModelOpsError):
    """One or more problems in the spec or an overlay (exit 2). ``problems`` are in file order."""

    code = "E-SPEC"
    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path, p.code))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ModelOpsError):
    """Bad command-line input: an unknown environment, model, or a missing file (exit 2)."""

    code = "E-USAGE"
    exit_code = 2


class ApplyError(ModelOpsError):
    """Provisioning failed at a resource (exit 1); what exists is recorded in the state."""

    code = "E-APPLY"
    exit_code = 1


class BuildError(ModelOpsError):
    """A valid build that could not finish on this machine: it ran out of memory (exit 1)."""

    code = "E-BUILD"
    exit_code = 1


class GateFailed(ModelOpsError):
    """A promotion gate or a ``--fail-on`` condition holds (exit 3)."""

    code = "E-GATE"
    exit_code = 3


class Unpublished:
    """What a version the program serves but the registry does not hold carries: ``model``,
    ``variant``, ``digest``, ``path`` (the spec path that sets it) and ``uri``.

    The program raises it as :class:`modelops.components.model.UnpublishedVersion` (a
    ``pulumi.RunError``); the toolchain finds it without loading Pulumi
    (:func:`modelops.registry.pins.unpublished_cause`).
    """

    model: str
    variant: str
    digest: str
    path: str
    uri: str
