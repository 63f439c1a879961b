"""Latency of the explorer's JSON endpoints on a synthetic CIFAR-100-size run in SQLite.

    .venv/bin/python benchmarks/explorer.py [--db PATH] [--requests N]

The run has 50,000 train and 10,000 test examples in 100 classes and about 990,000
stored influences (20 drawn per training example, half of them same-class, repeats
stored once). It is written with the store's schema and bulk inserts, without the
loader's influence selection, then a real uvicorn server on 127.0.0.1
answers HTTP requests: pair selections as a slider moves, top influences of random
examples, and gallery pages. Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.store.bulk import insert_arrays, insert_rows
from backend.store.database import create_database_engine, current_revision, open_database
from backend.store.load import EXAMPLE_COLUMNS
from backend.store.models import Example, Influence, Run, RunClass
from tests.explorer_fixtures import serve_in_thread

N_TRAIN, N_TEST, CLASSES, PER_TRAIN = 50_000, 10_000, 100, 20
RUN_NAME = "synthetic-cifar100"


def fill(url: str, seed: int = 0) -> None:
    """Write the synthetic run; mem and infl have long right tails like real runs."""
    rng = np.random.default_rng(seed)
    engine = open_database(url)
    train_labels = np.arange(N_TRAIN) % CLASSES
    test_labels = np.arange(N_TEST) % CLASSES
    mem = np.clip(rng.beta(0.4, 3.0, N_TRAIN) - 0.05, -1, 1)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    thumbnail = buffer.getvalue()

    # Half of each training example's pairs go to test examples of its own class.
    # Repeated draws of one (train, test) pair are stored once.
    same = rng.integers(0, N_TEST // CLASSES, (N_TRAIN, PER_TRAIN // 2)) * CLASSES
    same += train_labels[:, None]
    other = rng.integers(0, N_TEST, (N_TRAIN, PER_TRAIN - PER_TRAIN // 2))
    keys = np.unique(np.arange(N_TRAIN)[:, None] * N_TEST + np.concatenate([same, other], 1))
    train_index, test_index = np.divmod(keys, N_TEST)

    with engine.begin() as connection:
        connection.execute(insert(Run), [{
            "id": 1, "name": RUN_NAME, "dataset": "synthetic", "dataset_name": "synthetic",
            "fingerprint": "0" * 64, "model": "cnn", "config": {"epochs": 1}, "trials": 2000,
            "subset_ratio": 0.7, "n_train": N_TRAIN, "n_test": N_TEST, "num_classes": CLASSES,
            "image_shape": [32, 32, 3], "accuracy_mean": 0.6, "accuracy_std": 0.01,
            "influence_floor": 0.05, "influence_top_k": 10, "timings": {},
            "created_at": datetime.now(timezone.utc), "loaded_at": datetime.now(timezone.utc),
        }])
        connection.execute(insert(RunClass), [
            {"run_id": 1, "label": label, "name": f"class {label}",
             "train_count": N_TRAIN // CLASSES, "test_count": N_TEST // CLASSES}
            for label in range(CLASSES)
        ])
        train_rows = (
            (1, "train", index, int(train_labels[index]), float(mem[index]), 0.05, 0.5, 0.05,
             1400, 600, 0.8, thumbnail, None)
            for index in range(N_TRAIN)
        )
        test_rows = (
            (1, "test", index, int(test_labels[index]), None, None, None, None, None, None,
             0.6, thumbnail, None)
            for index in range(N_TEST)
        )
        insert_rows(connection, Example.__table__, EXAMPLE_COLUMNS, train_rows)
        insert_rows(connection, Example.__table__, EXAMPLE_COLUMNS, test_rows)
        insert_arrays(connection, Influence.__table__, {
            "run_id": np.ones(len(keys), dtype=np.int64),
            "train_index": train_index,
            "test_index": test_index,
            "infl": 0.05 + rng.exponential(0.06, len(keys)),
            "infl_se": np.full(len(keys), 0.05),
            "train_label": train_labels[train_index],
            "test_label": test_labels[test_index],
            "train_mem": mem[train_index],
        })
    engine.dispose()


def check_existing(url: str) -> None:
    """Raise SystemExit if the file at `url` predates the store's migrations."""
    engine = create_database_engine(url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if revision is None:
        raise SystemExit(
            f"{url} has no schema revision, so an older version of this benchmark made it; "
            "delete the file and run the benchmark again to refill it"
        )


def measure(client: httpx.Client, paths: list[str]) -> tuple[float, float]:
    """Return p50 and p95 latency in milliseconds of GET requests, after one warm-up."""
    client.get(paths[0]).raise_for_status()
    times = []
    for path in paths:
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    quantiles = statistics.quantiles(times, n=100)
    return statistics.median(times), quantiles[94]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/longtail-explorer-benchmark.db",
                        help="SQLite file, created and filled when missing (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=200, help="requests per endpoint")
    args = parser.parse_args()
    path = Path(args.db)
    url = f"sqlite:///{path}"
    if path.exists():
        check_existing(url)
    else:
        started = time.perf_counter()
        fill(url)
        print(f"filled {path} in {time.perf_counter() - started:.0f} s")

    rng = np.random.default_rng(1)
    count = args.requests
    # A slider drag: small steps of one threshold at a time, the other one fixed.
    slider = [
        f"/api/runs/{RUN_NAME}/pairs?mem_threshold={mem:.2f}&infl_threshold={infl:.2f}&limit=48"
        for mem, infl in zip(
            np.concatenate([np.linspace(0.0, 0.8, count // 2), np.full(count - count // 2, 0.25)]),
            np.concatenate([np.full(count // 2, 0.15), np.linspace(0.05, 0.6, count - count // 2)]),
        )
    ]
    top = [
        f"/api/runs/{RUN_NAME}/{split}/{rng.integers(0, size)}/influences?limit=10"
        for split, size in (("train", N_TRAIN), ("test", N_TEST))
        for _ in range(count // 2)
    ]
    gallery = [
        f"/api/runs/{RUN_NAME}/classes/{rng.integers(0, CLASSES)}/examples"
        f"?page={rng.integers(1, 9)}&per_page=60&order={rng.choice(['desc', 'asc'])}"
        for _ in range(count)
    ]
    with serve_in_thread(url) as base, httpx.Client(base_url=base, timeout=60) as client:
        for name, paths in (("pairs (slider moves)", slider), ("top influences", top),
                            ("gallery page", gallery)):
            p50, p95 = measure(client, paths)
            print(f"{name:24s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   ({len(paths)} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
