"""Shared fixtures: small real datasets and helpers for subprocess runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_longtail(*args: str, timeout: float = 300, check: bool = True, cwd: Path = REPO):
    """Run the `longtail` command in a subprocess, as a user would, in folder `cwd`."""
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        # The repository on the path, for a `cwd` outside it.
        env={**os.environ, "PYTHONUNBUFFERED": "1",
             "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"longtail {' '.join(args)} exited {result.returncode}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def digits():
    from compute.datasets import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A complete run directory of real training on scikit-learn's digits (about 15 s).

    64 trials of the default MLP for 5 epochs: enough for every example to have
    estimates, small enough to share across the store, API and browser tests.
    Treat it as read-only.
    """
    out = tmp_path_factory.mktemp("runs") / "digits"
    run_longtail(
        "estimate", "--dataset", "digits", "--trials", "64", "--epochs", "5",
        "--shard-size", "16", "--out", str(out),
    )
    return out
