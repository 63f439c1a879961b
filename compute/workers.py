"""Start CPU worker processes quickly, as forks of a server that has imported the engine.

This module imports no torch, so a command can start the server first thing and
let the server's imports overlap its own start-up.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import select
import signal
import threading
import time

# Modules that the fork server imports once, so that each worker starts with them loaded.
PRELOAD = ["compute.engine", "compute.cpu_kernels"]
# Whether this process has started the fork server with SIGINT ignored.
_server_started = False


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_context():
    """Return the multiprocessing context that starts CPU workers.

    A fork server imports torch and the engine once per parent process. Each
    worker is then a fork of it and starts in about 10 ms, where a spawned
    worker spends a second importing torch and a third of a second tearing it
    down (measured on a 2-core EPYC with PyTorch 2.13). The server runs no torch
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
    The server and its workers never act on SIGINT: Ctrl-C reaches the whole
    process group, and the server would otherwise print a traceback when it
    arrives during its imports. The command stops its workers itself with SIGTERM.
    """
    if device != "cpu" or (workers or usable_cores()) < 2:
        return
    global _server_started
    if worker_context().get_start_method() != "forkserver":
        return
    if _server_started or threading.current_thread() is not threading.main_thread():
        # A server started again, or from another thread, starts without SIGINT
        # blocked, so a Ctrl-C during its imports may print a traceback.
        multiprocessing.forkserver.ensure_running()
        return
    # The server starts with SIGINT blocked, inherited from this thread, so a
    # Ctrl-C during its imports stays pending until its main loop ignores SIGINT,
    # which discards it. Here the signal is only blocked, never ignored: a Ctrl-C
    # in this window either waits for the unblock or reaches this process through
    # another thread (OpenBLAS starts one when NumPy is imported), and is not lost.
    # The resource tracker starts first, because starting it unblocks SIGINT.
    multiprocessing.resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    _server_started = True


def exit_with_parent(parent_pid: int) -> None:
    """End this worker process as soon as process `parent_pid` exits.

    A pool's workers outlive a parent that is killed: they finish their shard
    and then wait forever for the next one, and a fork server's workers keep
    the server alive too. A daemon thread watches the parent through a pidfd
    (Linux 5.3 and later), or else checks once a second that it still exists.
    Not on Windows, where os.kill(pid, 0) sends CTRL_C_EVENT (0) instead of checking.
    """
    if os.name != "posix":
        return
    threading.Thread(
        target=_wait_for_exit, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()


def _wait_for_exit(pid: int) -> None:
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):
        descriptor = None
    if descriptor is not None:
        select.select([descriptor], [], [])  # readable once the process has exited
    else:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass  # the process exists but belongs to another user
    os._exit(1)
