"""The other side of a review: another version of the spec put on disk (a directory, or
a git ref extracted with ``git archive``), and its environments loaded.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from modelops.errors import SpecError, UsageError
from modelops.spec import envs as envs_mod
from modelops.spec.resolved import Environment


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120)


def _git_toplevel(path: Path) -> Path | None:
    result = _git(["rev-parse", "--show-toplevel"], path)
    return Path(result.stdout.decode().strip()).resolve() if result.returncode == 0 else None


def materialise_base(base: str, spec: Path, into: Path) -> tuple[Path, Path]:
    """Put the base version of ``spec`` on disk; returns (base spec path, base root).

    ``base`` is a directory (holding another version of the spec's directory) or a git ref:
    the spec's directory at that ref (overlays and data files with it, so digests match)
    is extracted with ``git archive`` under ``into``.
    """
    spec = spec.resolve()
    spec_dir = spec.parent
    candidate = Path(base)
    if candidate.is_dir():
        root = candidate.resolve()
        # the same relative place as in the working tree when the base is a whole checkout
        top = _git_toplevel(spec_dir)
        if top is not None and (root / spec.relative_to(top)).is_file():
            return root / spec.relative_to(top), root / spec_dir.relative_to(top)
        return root / spec.name, root
    top = _git_toplevel(spec_dir)
    if top is None:
        raise UsageError(f"--base {base}: not a directory, and {spec_dir} is not in a git repository; "
                         "pass a directory holding the other version, or run inside the repository")
    commit = _git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], top)
    if commit.returncode != 0:
        raise UsageError(f"--base {base}: not a directory or a git ref of {top}; fix: `git fetch` it, "
                         "or pass e.g. origin/main")
    sha = commit.stdout.decode().strip()
    rel_dir = spec_dir.relative_to(top).as_posix()
    archive = _git(["archive", "--format=tar", sha, "--", rel_dir if rel_dir != "." else "."], top)
    out = into / "base"
    out.mkdir(parents=True, exist_ok=True)
    if archive.returncode == 0:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(out, filter="data")
    # a spec directory that does not exist at the base is an empty base: everything is new
    root = out / rel_dir if rel_dir != "." else out
    return root / spec.name, root


def environments(spec: Path, only: list[str] | None) -> dict[str, Environment]:
    if not spec.is_file():
        return {}
    names = list(envs_mod.list_environments(str(spec)))
    if only:
        names = [n for n in names if n in only]
    # one pass: the base spec is parsed and checked once for every environment
    problems, resolved = envs_mod.check(str(spec), names)
    if problems:
        raise SpecError(problems)
    return resolved
