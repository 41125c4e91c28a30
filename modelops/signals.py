"""Run a server until Ctrl-C or a supervisor's SIGTERM, and stop it outside its own loop.

Both of our servers are cheroot servers (the local model server, the embedded emulator).
cheroot walks its connections through a generator that holds the selector's lock while it
yields: an exception a signal handler raises into that loop can land there, leave the lock
held, and the ``stop()`` that follows waits on it forever. So the handlers here only set an
event; the calling (main) thread notices it and stops the server itself.

Example::

    serve_until_signalled(start=server_thread, stop=server.stop, on_ready=lambda: print("serving"))
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_until_signalled(start: Callable[[], threading.Thread], stop: Callable[[], None],
                          on_ready: Callable[[], None] | None = None,
                          signals: tuple[int, ...] = STOP_SIGNALS) -> None:
    """``start()`` the server (it returns the thread serving), wait for one of ``signals`` or
    for that thread to end, then ``stop()``. Call from the main thread.

    ``on_ready`` runs once the handlers are in place, so a signal sent after it is always a
    clean stop. The previous handlers are restored before ``stop()``.
    """
    received = threading.Event()
    previous = {number: signal.signal(number, lambda _number, _frame: received.set()) for number in signals}
    try:
        thread = start()
        if on_ready is not None:
            on_ready()
        while not received.wait(0.5) and thread.is_alive():
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        stop()
