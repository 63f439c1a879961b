"""A failed or killed load leaves the database exactly as it was."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from backend.store.database import open_database
from backend.store.load import load_run
from backend.store.run_input import LoadError
from compute.rundir import ESTIMATES, INFLUENCE, RunDir, RunDirError
from tests.conftest import REPO
from tests.store.db_state import database_state


@pytest.fixture
def engine_with_run(database_url, synthetic_run):
    """An engine on a database that already contains one run, named 'before'."""
    engine = open_database(database_url)
    load_run(engine, synthetic_run, name="before")
    yield engine
    engine.dispose()


def corrupt_shard(run):
    (run / "shards" / "shard-000000.npz").write_bytes(b"not an npz archive")


def corrupt_estimates(run):
    (run / ESTIMATES).write_bytes(b"PK\x03\x04 truncated")


def truncate_mem(run):
    estimates = RunDir(run).read_estimates()
    estimates["mem"] = estimates["mem"][:-1]
    np.savez(run / ESTIMATES, **estimates)


def shrink_influence(run):
    infl, _ = RunDir(run).influence()
    np.save(run / INFLUENCE, np.array(infl[:, :-1]))


def corrupt_last_influence_block(run):
    # Row 1,400 is in the second block of 1,024 rows: the first block is inserted
    # before the loader reads it.
    infl = np.load(run / INFLUENCE, mmap_mode="r+")
    infl[1400, 3] = 5.0
    infl.flush()


FAILURES = {
    "corrupt shard": (corrupt_shard, RunDirError, "shard .* is unreadable"),
    "corrupt estimates": (corrupt_estimates, RunDirError, "estimates.npz is unreadable"),
    "mem shape mismatch": (truncate_mem, LoadError, r"'mem' has shape \(1499,\)"),
    "influence shape mismatch": (
        shrink_influence, LoadError, r"influence.npy has shape \(1500, 399\)"
    ),
    "corrupt influence value": (
        corrupt_last_influence_block, LoadError, "influence of train 1400 on test 3 is 5.0"
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_load_leaves_database_unchanged(
    failure, engine_with_run, database_url, synthetic_run, run_copy
):
    damage, error, message = FAILURES[failure]
    run = run_copy(synthetic_run)
    damage(run)
    before = database_state(database_url)

    with pytest.raises(error, match=message):
        load_run(engine_with_run, run, name="damaged")

    assert database_state(database_url) == before


def test_failed_replace_keeps_old_run(engine_with_run, database_url, synthetic_run, run_copy):
    run = run_copy(synthetic_run)
    corrupt_last_influence_block(run)
    before = database_state(database_url)

    with pytest.raises(LoadError, match="outside"):
        load_run(engine_with_run, run, name="before", replace=True)

    assert database_state(database_url) == before


def wait_for_output(process, pattern: bytes, timeout: float) -> bytes:
    """Read the process's stderr until `pattern` appears; fail after `timeout` seconds."""
    output = b""
    deadline = time.monotonic() + timeout
    while pattern not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            pytest.fail(f"load never printed {pattern!r}; its output:\n{output.decode()}")
        readable, _, _ = select.select([process.stderr], [], [], remaining)
        if readable:
            output += os.read(process.stderr.fileno(), 65536)
    return output


def test_killed_load_leaves_database_unchanged(
    engine_with_run, database_url, large_synthetic_run
):
    before = database_state(database_url)
    command = [sys.executable, "-m", "backend.cli", "--verbose", "load",
               str(large_synthetic_run), "--db", database_url]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE)
    try:
        # At debug level the loader logs each block of influences it inserts.
        wait_for_output(process, b"influences so far", timeout=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    assert database_state(database_url) == before

    summary = load_run(engine_with_run, large_synthetic_run)
    state = database_state(database_url)
    assert state["runs"] == ["before", "run"]
    assert state["influences"][summary.run_id] == summary.influences
