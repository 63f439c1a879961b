"""Worker processes of `longtail estimate` end with the command, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compute.rundir import RunDir
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc"
)


def parent_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in brackets may contain spaces; fields after it are plain.
    return int(text.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, frontier = set(), [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Return whether `pid` runs; a zombie, which has exited, counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_long_estimate(out: Path) -> tuple[subprocess.Popen, set[int]]:
    """Start an estimate with 2 workers; return it once both workers train."""
    command = [
        sys.executable, "-m", "backend.cli", "estimate", "--dataset", "digits",
        "--hidden", "256", "--trials", "64", "--epochs", "400", "--shard-size", "8",
        "--workers", "2", "--out", str(out),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    # The fork server, its two workers, and multiprocessing's resource tracker.
    while len(descendants(process.pid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    tree = descendants(process.pid)
    assert len(tree) >= 4, f"expected a fork server and 2 workers, found processes {tree}"
    return process, tree


def wait_until_gone(pids: set[int], seconds: float = 10) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = {pid for pid in pids if alive(pid)}
        if not left:
            return left
        time.sleep(0.1)
    return {pid for pid in pids if alive(pid)}


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_workers_exit_when_command_killed(tmp_path, signal_number):
    process, tree = start_long_estimate(tmp_path / "run")
    os.kill(process.pid, signal_number)  # the command alone, as `kill` does
    _, stderr = process.communicate(timeout=30)

    assert wait_until_gone(tree) == set(), "worker processes outlived the killed command"
    if signal_number == signal.SIGTERM:
        # SIGTERM stops the command the way Ctrl-C does, with the shell's status for it.
        assert process.returncode == 143, stderr
        assert "interrupted; rerun the same command to resume" in stderr


def test_interrupt_stops_workers_without_new_shards(tmp_path):
    process, tree = start_long_estimate(tmp_path / "run")
    shards_before = RunDir(tmp_path / "run").finished_shards()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "interrupted; rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    assert wait_until_gone(tree) == set(), "worker processes outlived the interrupt"
    # 400 epochs take several seconds a shard, so no shard was due when the
    # interrupt came; a worker that went on training would write one.
    assert RunDir(tmp_path / "run").finished_shards() == shards_before


def test_interrupt_during_startup_prints_no_traceback(tmp_path):
    """Ctrl-C while the fork server still imports torch stops the command cleanly."""
    command = [
        sys.executable, "-m", "backend.cli", "estimate", "--dataset", "digits",
        "--trials", "64", "--epochs", "5", "--workers", "2", "--out", str(tmp_path / "run"),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not descendants(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    tree = descendants(process.pid)
    assert tree, "the command started no fork server"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert wait_until_gone(tree) == set(), "the fork server outlived the interrupt"


def test_interrupt_as_workers_start_prints_no_traceback(tmp_path):
    """Ctrl-C while the pool starts its workers stops the command cleanly."""
    command = [
        sys.executable, "-m", "backend.cli", "estimate", "--dataset", "digits",
        "--trials", "2048", "--epochs", "5", "--out", str(tmp_path / "run"),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    # The engine logs this line just before it submits the shards to the pool, and
    # the workers take about 0.1 s to start.
    deadline = time.monotonic() + 60
    while not any("shard(s) to train" in line for line in lines):
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.005)
    time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    reader.join(timeout=10)
    stderr = "".join(lines)

    assert process.returncode == 130, stderr
    assert "interrupted; rerun the same command to resume" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "launcher",
    [
        [str(Path(sys.executable).parent / "longtail")],
        # The form in which `make demo` starts its estimate.
        [sys.executable, "-m", "backend.launcher", "backend.cli"],
    ],
    ids=["longtail", "python-m-launcher"],
)
def test_interrupt_while_cli_loads_prints_no_traceback(tmp_path, launcher):
    """Ctrl-C while the `longtail` command imports its modules stops it cleanly."""
    command = [
        *launcher, "estimate", "--dataset", "digits",
        "--trials", "64", "--epochs", "5", "--out", str(tmp_path / "run"),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.2)  # importing the CLI takes about 0.5 s
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
