"""Fixtures of the explorer tests: a SQLite database loaded from a real run, and a server.

Import them into a conftest.py; both are session-scoped and shared by the API and
browser tests.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from backend.app import create_app
from backend.store.models import Base, Example, Influence, Run, RunClass
from compute.rundir import RunDir

RUN_NAME = "digits"
# Influences kept by the stand-in loader below: all at or above the floor, plus the
# top TOP_K of every training example.
FLOOR = 0.02
TOP_K = 10


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[..., 0]), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def fill_database(url: str, run_path: Path, name: str) -> None:
    """Load a run directory into a new SQLite database.

    TODO: replace with the store's loader (`longtail load`) once it is committed.
    """
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    run_dir = RunDir(run_path)
    manifest = run_dir.read_manifest()
    estimates = run_dir.read_estimates()
    dataset = run_dir.load_dataset()
    infl, infl_se = run_dir.influence()
    mem = estimates["mem"]

    def maybe(values, index, kind=float):
        value = values[index]
        return None if np.isnan(value) else kind(value)

    with Session(engine) as session, session.begin():
        run = Run(
            name=name, dataset=manifest["config"]["dataset"], dataset_name=dataset.name,
            fingerprint=dataset.fingerprint(), model=manifest["config"]["model"],
            config=manifest["config"], trials=manifest["summary"]["trials"],
            subset_ratio=manifest["config"]["subset_ratio"], n_train=dataset.n_train,
            n_test=dataset.n_test, num_classes=dataset.num_classes,
            image_shape=list(dataset.image_shape),
            accuracy_mean=manifest["summary"]["model_test_accuracy_mean"],
            accuracy_std=manifest["summary"]["model_test_accuracy_std"],
            influence_floor=FLOOR, influence_top_k=TOP_K, timings=manifest["timings"],
            source_path=str(run_path), created_at=datetime.now(timezone.utc),
        )
        session.add(run)
        session.flush()
        for label, class_name in enumerate(dataset.class_names):
            session.add(RunClass(
                run_id=run.id, label=label, name=class_name,
                train_count=int((dataset.y_train == label).sum()),
                test_count=int((dataset.y_test == label).sum()),
            ))
        session.flush()

        rows = []
        for index in range(dataset.n_train):
            rows.append({
                "run_id": run.id, "split": "train", "index": index,
                "label": int(dataset.y_train[index]), "mem": maybe(mem, index),
                "mem_se": maybe(estimates["mem_se"], index),
                "consistency": maybe(estimates["consistency"], index),
                "consistency_se": maybe(estimates["consistency_se"], index),
                "in_trials": int(estimates["in_trials"][index]),
                "out_trials": int(estimates["out_trials"][index]),
                "accuracy": float(estimates["train_accuracy"][index]),
                "thumbnail": _png(dataset.x_train[index]),
            })
        for index in range(dataset.n_test):
            rows.append({
                "run_id": run.id, "split": "test", "index": index,
                "label": int(dataset.y_test[index]),
                "accuracy": float(estimates["test_accuracy"][index]),
                "thumbnail": _png(dataset.x_test[index]),
            })
        session.execute(insert(Example), rows)

        matrix = np.nan_to_num(np.asarray(infl), nan=-np.inf)
        keep = matrix >= FLOOR
        top = np.argsort(-matrix, axis=1)[:, :TOP_K]
        keep[np.arange(len(matrix))[:, None], top] = True
        keep &= np.isfinite(matrix)
        trains, tests = np.nonzero(keep)
        session.execute(insert(Influence), [
            {
                "run_id": run.id, "train_index": int(i), "test_index": int(j),
                "infl": float(matrix[i, j]), "infl_se": float(infl_se[i, j]),
                "train_label": int(dataset.y_train[i]), "test_label": int(dataset.y_test[j]),
                "train_mem": maybe(mem, i),
            }
            for i, j in zip(trains, tests)
        ])
    engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_in_thread(database_url: str) -> Iterator[str]:
    """Run a real uvicorn server on 127.0.0.1 in a background thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(database_url), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"explorer server did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def explorer_database(digits_run, tmp_path_factory) -> str:
    """URL of a SQLite database holding the digits run under the name 'digits'."""
    path = tmp_path_factory.mktemp("explorer") / "explorer.db"
    url = f"sqlite:///{path}"
    fill_database(url, digits_run, RUN_NAME)
    return url


@pytest.fixture(scope="session")
def explorer_server(explorer_database) -> str:
    """Base URL of a running explorer on the digits database."""
    with serve_in_thread(explorer_database) as url:
        yield url
