"""Write synthetic run directories with compute's own writers, for store tests and benchmarks.

The trials are random, not trained models: the files have the layout and sizes of a
real run, and the influence values follow a normal distribution whose spread sets
how many pairs a load keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compute.config import TrialConfig
from compute.datasets import load_dataset
from compute.rundir import ESTIMATES, INFLUENCE, INFLUENCE_SE, RunDir, atomic_write

# Rows of the influence matrices generated and written at once.
BLOCK_ROWS = 2048


def write_synthetic_run(
    folder: Path,
    n_train: int,
    n_test: int,
    num_classes: int,
    image_shape: tuple[int, int, int] = (32, 32, 3),
    trials: int = 16,
    influence_std: float = 0.01,
    seed: int = 0,
) -> RunDir:
    """Write an npz dataset and a complete run directory for it under `folder`.

    Influences are drawn from N(0, influence_std^2), so about
    P(Z >= floor / influence_std) of all pairs lie at or above a floor.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    dataset_path = folder / "dataset.npz"
    np.savez(
        dataset_path,
        x_train=rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
        y_train=rng.integers(0, num_classes, n_train),
        x_test=rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
        y_test=rng.integers(0, num_classes, n_test),
        class_names=np.array([f"class {label}" for label in range(num_classes)]),
    )
    dataset = load_dataset(f"npz:{dataset_path}")
    config = TrialConfig(
        dataset=f"npz:{dataset_path}", trials=trials, shard_size=trials, epochs=1, seed=seed
    )
    run = RunDir(folder / "run")
    manifest = run.start(config, dataset, execution={"synthetic": True})

    mask = rng.random((trials, n_train)) < config.subset_ratio
    train_correct = rng.random((trials, n_train)) < 0.9
    test_correct = rng.random((trials, n_test)) < 0.6
    run.write_shard(0, np.arange(trials), mask, train_correct, test_correct)

    estimates = {
        "mem": rng.uniform(-0.1, 1.0, n_train),
        "mem_se": rng.uniform(0.0, 0.2, n_train),
        "consistency": rng.uniform(0.0, 1.0, n_train),
        "consistency_se": rng.uniform(0.0, 0.2, n_train),
        "in_trials": mask.sum(axis=0),
        "out_trials": (~mask).sum(axis=0),
        "train_labels": dataset.y_train,
        "test_labels": dataset.y_test,
        "train_accuracy": train_correct.mean(axis=0),
        "test_accuracy": test_correct.mean(axis=0),
        "trial_test_accuracy": test_correct.mean(axis=1),
    }
    atomic_write(run.path / ESTIMATES, lambda handle: np.savez(handle, **estimates))

    shape = (n_train, n_test)
    _write_matrix(run.path / INFLUENCE, shape, lambda rows: np.clip(
        rng.standard_normal((rows, n_test), dtype=np.float32) * influence_std, -1, 1
    ))
    _write_matrix(run.path / INFLUENCE_SE, shape, lambda rows: rng.uniform(
        0.01, 0.1, (rows, n_test)
    ).astype(np.float32))

    manifest["complete"] = True
    manifest["summary"] = {"trials": trials, "synthetic": True}
    run.write_manifest(manifest)
    return run


def _write_matrix(path: Path, shape: tuple[int, int], make_rows) -> None:
    # The .npy layout that compute writes: a version 1.0 header, then float32 rows.
    def write(handle) -> None:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": shape}
        )
        for start in range(0, shape[0], BLOCK_ROWS):
            rows = min(BLOCK_ROWS, shape[0] - start)
            handle.write(np.ascontiguousarray(make_rows(rows), dtype="<f4").tobytes())

    atomic_write(path, write)
