"""CIFAR and image-folder datasets through estimate, load and the explorer served by
`longtail serve` on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from backend.cli import main
from tests.conftest import REPO
from tests.format_files import save_image, write_cifar10, write_image_folder

ESTIMATE_ARGS = (
    "--trials", "8", "--epochs", "2", "--subset-ratio", "0.5", "--shard-size", "8",
    "--workers", "1", "--hidden", "32",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def explorer(tmp_path):
    """Return a function that serves a database with `longtail serve`; stops it at the end."""
    processes = []

    def serve(url: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--db", url, "--port", str(port)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"longtail serve exited {process.returncode}: "
                                     f"{process.stderr.read()}")
            try:
                httpx.get(f"{base}/api/runs", timeout=2)
                return base
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("longtail serve did not answer within 60 s")

    yield serve
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


def test_cifar_and_folder_runs_in_explorer(tmp_path, explorer, capsys):
    cifar = tmp_path / "cifar-10-batches-py"
    write_cifar10(cifar, per_batch=4, test=6)
    pets = tmp_path / "pets"
    write_image_folder(pets / "train", {"cat": 6, "dog": 6})
    write_image_folder(pets / "test", {"cat": 3, "dog": 3})
    save_image(pets / "train" / "dog" / "gray.png", np.full((8, 8), 128, np.uint8))
    (pets / "test" / "cat" / "empty.jpg").write_bytes(b"")
    url = f"sqlite:///{tmp_path / 'longtail.db'}"

    # --skip-bad-files goes into the spec, so `load` reloads the folder the same way.
    for name, dataset, extra in (
        ("cifar10", f"cifar10:{cifar}", ()),
        ("pets", f"folder:{pets}", ("--skip-bad-files",)),
    ):
        out = tmp_path / "runs" / name
        assert main(["estimate", "--dataset", dataset, *extra, *ESTIMATE_ARGS,
                     "--out", str(out)]) == 0
        assert main(["load", str(out), "--db", url, "--name", name]) == 0
    capsys.readouterr()

    base = explorer(url)
    cifar_run = httpx.get(f"{base}/api/runs/cifar10", timeout=30)
    pets_run = httpx.get(f"{base}/api/runs/pets", timeout=30)
    page = httpx.get(f"{base}/runs/pets/classes/1", timeout=30)
    example = httpx.get(f"{base}/api/runs/cifar10/train/4", timeout=30)

    assert cifar_run.status_code == 200
    assert cifar_run.json()["run"]["n_train"] == 20
    assert cifar_run.json()["run"]["dataset"] == f"cifar10:{cifar}"
    assert pets_run.status_code == 200
    assert pets_run.json()["run"]["dataset"] == f"folder:{pets}?skip_bad_files=1"
    assert pets_run.json()["run"]["n_train"] == 13
    assert pets_run.json()["run"]["n_test"] == 6
    assert page.status_code == 200
    # A class whose name is not its label shows both.
    assert '<h1>Class dog <span class="muted">label 1</span></h1>' in page.text
    assert example.status_code == 200
    # data_batch_2 starts at index 4; its first label is (2 + 0) % 10 = 2, "bird".
    assert example.json()["label"] == 2
