"""Performance machinery shared by the drivers (load, render, review): kept out of domain code.

Example::

    with no_gc():
        rows = [parse(line) for line in lines]
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["no_gc"]


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic data.

    Building a large spec, graph or review allocates one container per node; each burst
    of allocations triggers a collection that rescans everything built so far. Nothing
    built under it is cyclic, so nothing is leaked by pausing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
