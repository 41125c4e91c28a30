"""File helpers every area shares: a streaming digest and a write that is whole or absent.

Example::

    atomic_write(Path(".modelops/state/dev.json"), b"{}")
    file_digest("examples/churn/data/customers.csv")   # 'sha256:…'
    unchanged_file_digest("artifacts/model.tar.gz")     # hashed once per process while unchanged
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "file_digest", "unchanged_file_digest"]

_BLOCK = 1 << 20


def file_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes, read in blocks (any size, bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_BLOCK), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def unchanged_file_digest(path: str | os.PathLike[str]) -> str:
    """:func:`file_digest`, computed once per process while the file is unchanged (same
    size, modification time and inode): a package named by 1,000 models is hashed once."""
    info = os.stat(path)
    return _digest_while(os.fspath(path), info.st_size, info.st_mtime_ns, info.st_ino)


@functools.lru_cache(maxsize=4096)
def _digest_while(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return file_digest(path)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None,
                 durable: bool = True) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, flushed
    (and synced when ``durable``), then renamed over it. A reader never sees half a file,
    and a crash leaves the old or the new content. ``mode`` sets the permissions before
    the rename (``0o600`` for keys)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
