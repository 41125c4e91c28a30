"""What git knows about a promotion: who makes it, the commit it is made from, and whether
the files it reads are committed.

Example::

    who(Path("."))                                      # 'Ada Lovelace <ada@example.com>'
    head_commit(Path("."))                              # '3f2c…' (None outside a repository)
    uncommitted(Path("."), [Path("modelops.yaml")])     # ['modelops.yaml'] when edited
"""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """``git ARGS`` in ``cwd``; None when git cannot run."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def who(cwd: Path) -> str:
    def config(key: str) -> str:
        out = _git(cwd, "config", key)
        return out.stdout.strip() if out is not None and out.returncode == 0 else ""

    name, email = config("user.name"), config("user.email")
    if name and email:
        return f"{name} <{email}>"
    if name or email:
        return name or email
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def head_commit(cwd: Path) -> str | None:
    """The full hash of the commit checked out in ``cwd``'s repository; None outside one (or before a first commit)."""
    out = _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if out is None or out.returncode != 0:
        return None
    return out.stdout.strip() or None


def uncommitted(cwd: Path, paths: list[Path]) -> list[str] | None:
    """Which of ``paths`` differ from HEAD (staged, unstaged or untracked), as given; None outside a repository."""
    out = _git(cwd, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--",
               *(os.fspath(p) for p in paths))
    if out is None or out.returncode != 0:
        return None
    changed = {entry[3:] for entry in out.stdout.split("\0") if len(entry) > 3}
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0:
        return None
    root = Path(top.stdout.strip()).resolve()
    return [str(p) for p in paths if Path(p).resolve().relative_to(root).as_posix() in changed]
