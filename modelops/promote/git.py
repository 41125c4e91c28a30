"""Who promotes, as git knows them (else the OS user).

Example::

    who(Path("."))      # 'Ada Lovelace <ada@example.com>'
"""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path


def who(cwd: Path) -> str:
    def git(key: str) -> str:
        try:
            out = subprocess.run(
                ["git", "config", key], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    name, email = git("user.name"), git("user.email")
    if name and email:
        return f"{name} <{email}>"
    if name or email:
        return name or email
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"

