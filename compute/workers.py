"""Start CPU worker processes quickly: a fork server that has imported the engine.

This module imports no torch, so a command can start the server first thing and
let the server's imports overlap its own start-up.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os

# What the fork server imports once, so that each worker starts with it loaded.
PRELOAD = ["compute.engine"]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_context():
    """Return the multiprocessing context that starts CPU workers.

    A fork server imports torch and the engine once per parent process; each
    worker is then a fork of it and starts in about 10 ms. A spawned worker
    spends a second importing torch and a third of a second tearing it down,
    which is a tenth of a short run of tiny models. The server runs no torch
    operation itself, so no thread pool is ever forked. Where there is no fork
    server (Windows), workers are spawned.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_worker_server(device: str = "cpu", workers: int | None = None) -> None:
    """Start the fork server now if a run on `device` will use worker processes.

    Returns at once; the first pool waits for the server's imports if needed.
    """
    if device != "cpu" or (workers or usable_cores()) < 2:
        return
    if worker_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()
