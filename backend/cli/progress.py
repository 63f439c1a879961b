"""Progress of a long command: a bar on a terminal, log lines anywhere else.

A bar redraws itself with carriage returns, which a batch job's log file keeps
as hundreds of updates on one line, so output that is not a terminal gets a
plain log line every half minute instead.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

logger = logging.getLogger(__name__)

# Seconds between two progress lines in a log file.
LOG_INTERVAL = 30.0


class ProgressBar:
    """A tqdm bar of counts that arrive as running totals."""

    def __init__(self, description: str, total: int, unit: str) -> None:
        self._bar = tqdm(total=total, unit=unit, desc=description, dynamic_ncols=True)
        self._started = False

    def update(self, done: int) -> None:
        if not self._started:
            # Work stored by an earlier run should not count toward the rate.
            self._bar.initial = done
            self._started = True
        self._bar.n = done
        self._bar.refresh()

    def redirect_logs(self) -> contextlib.AbstractContextManager:
        """Return a context in which log lines print above the bar, not on its line."""
        return logging_redirect_tqdm()

    def close(self) -> None:
        self._bar.close()


class ProgressLog:
    """Log lines of counts that arrive as running totals: done, rate and time left."""

    def __init__(
        self,
        description: str,
        total: int,
        unit: str,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.interval = interval
        self.clock = clock
        self._first: tuple[float, int] | None = None
        self._last_logged = 0.0

    def update(self, done: int) -> None:
        now = self.clock()
        if self._first is None:
            # Work stored by an earlier run should not count toward the rate.
            self._first = (now, done)
            self._last_logged = now
            return
        if now - self._last_logged < self.interval and done < self.total:
            return
        self._last_logged = now
        started, first_done = self._first
        rate = (done - first_done) / max(now - started, 1e-9)
        left = f"{(self.total - done) / rate:.0f} s" if rate > 0 else "unknown time"
        logger.info(
            "%s: %d of %d done, %.2f %s/s, %s left",
            self.description, done, self.total, rate, self.unit, left,
        )

    def redirect_logs(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def close(self) -> None:
        pass


def start_progress(description: str, total: int, unit: str) -> ProgressBar | ProgressLog:
    """Return a bar if stderr is a terminal, else a progress log."""
    if sys.stderr.isatty():
        return ProgressBar(description, total, unit)
    return ProgressLog(description, total, unit)
