"""Hold Ctrl-C and SIGTERM over steps that an interrupt would leave broken."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first one received.

    Imports of C extensions (scipy, torch) can swallow a KeyboardInterrupt or abort
    the process on it, and a worker process that is being started reads data from
    its parent that an interrupted parent tears down. After the block the signal
    takes its usual effect, such as KeyboardInterrupt for Ctrl-C. Signals that
    were ignored stay ignored. Outside the main thread, which alone may set
    handlers, the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received: list[int] = []

    def hold(signum, frame) -> None:
        received.append(signum)

    previous = {}
    for number in SIGNALS:
        handler = signal.getsignal(number)
        if handler is not signal.SIG_IGN:
            previous[number] = signal.signal(number, hold)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        signal.raise_signal(received[0])
