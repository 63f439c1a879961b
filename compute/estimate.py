"""The estimate stage: trials in, estimates.npz and influence matrices out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from compute.config import TrialConfig
from compute.datasets import Dataset
from compute.engine import Execution, run_trials
from compute.estimators import DEFAULT_BLOCK_ROWS, estimate_memorization, iter_influence_blocks
from compute.rundir import ESTIMATES, INFLUENCE, INFLUENCE_SE, RunDir, atomic_write

logger = logging.getLogger(__name__)


def write_estimates(
    run: RunDir, block_rows: int = DEFAULT_BLOCK_ROWS, dataset: Dataset | None = None
) -> dict:
    """Compute every estimate from the run's shards and write them; return a summary.

    `dataset`, the run's data when the caller has it loaded, saves loading it again.
    """
    started = time.perf_counter()
    manifest = run.read_manifest()
    outcomes = run.read_trials()
    described = manifest["dataset"]

    memorization = estimate_memorization(outcomes.mask, outcomes.train_correct)
    missing = int(memorization.missing.sum())
    if dataset is None:
        dataset = run.load_dataset()
    labels = dataset.y_train, dataset.y_test
    arrays = {
        "mem": memorization.mem,
        "mem_se": memorization.mem_se,
        "consistency": memorization.consistency,
        "consistency_se": memorization.consistency_se,
        "in_trials": memorization.in_trials,
        "out_trials": memorization.out_trials,
        "train_labels": labels[0],
        "test_labels": labels[1],
        "train_accuracy": outcomes.train_correct.mean(axis=0),
        "test_accuracy": outcomes.test_correct.mean(axis=0),
        "trial_test_accuracy": outcomes.test_accuracy,
    }
    atomic_write(run.path / ESTIMATES, lambda handle: np.savez(handle, **arrays))

    shape = (described["n_train"], described["n_test"])
    for name, index in ((INFLUENCE, 1), (INFLUENCE_SE, 2)):
        _write_matrix(run, name, shape, outcomes, index, block_rows)

    summary = {
        "trials": len(outcomes.trials),
        "missing_mem": missing,
        "model_test_accuracy_mean": float(outcomes.test_accuracy.mean()),
        "model_test_accuracy_std": float(outcomes.test_accuracy.std()),
        "estimate_seconds": time.perf_counter() - started,
    }
    logger.info(
        "estimates of %d trials written to %s: mean model test accuracy %.4f (std %.4f), "
        "%d training examples without a memorization estimate",
        summary["trials"], run.path, summary["model_test_accuracy_mean"],
        summary["model_test_accuracy_std"], missing,
    )
    _warn_if_near_chance(summary["model_test_accuracy_mean"], labels[1], dataset.class_names)
    return summary


def _warn_if_near_chance(accuracy: float, test_labels: np.ndarray, class_names) -> None:
    """Log a warning when the models barely beat predicting the most common test label."""
    if len(test_labels) == 0:
        return
    counts = np.bincount(test_labels)
    majority = counts.max() / len(test_labels)
    if majority == 1.0:
        logger.warning(
            "all %d test examples are of class %r, so the test accuracy cannot tell whether "
            "the models learned; give the test split examples of several classes",
            len(test_labels), class_names[test_labels[0]],
        )
        return
    # Less than a tenth of the way from the majority share to perfect accuracy.
    if accuracy < majority + 0.1 * (1.0 - majority):
        logger.warning(
            "mean model test accuracy %.4f is close to %.4f, the accuracy of always "
            "predicting the most common test class (%r), or below it: the models barely "
            "learned, so their memorization and influence estimates are mostly noise; check "
            "--lr (too high diverges) and --epochs",
            accuracy, majority, class_names[int(counts.argmax())],
        )


def _write_matrix(run, name, shape, outcomes, index, block_rows) -> None:
    # Written block by block into a memory-mapped .npy, so the whole n x n'
    # matrix never has to fit in memory.
    def write(handle) -> None:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": shape}
        )
        for block in iter_influence_blocks(outcomes.mask, outcomes.test_correct, block_rows):
            handle.write(np.ascontiguousarray(block[index], dtype="<f4").tobytes())

    atomic_write(run.path / name, write)


def estimate(
    config: TrialConfig,
    dataset: Dataset,
    out: str,
    execution: Execution = Execution(),
    progress: Callable[[int, int], None] | None = None,
) -> RunDir:
    """Run (or resume) every trial of a run, then write its estimates.

    A complete run whose config is unchanged keeps the estimates it has.
    """
    run = RunDir(out)
    _warn_about_empty_classes(dataset)
    with run.lock():
        stats = run_trials(config, dataset, run, execution, progress)
        if stats["trained"] == 0 and _estimates_current(run):
            logger.info("run %s is complete and its estimates are current", run.path)
            return run
        return _finish(run, stats, dataset)


def _warn_about_empty_classes(dataset: Dataset) -> None:
    """Log a warning naming the classes without training examples, which no model learns."""
    counts = np.bincount(dataset.y_train, minlength=dataset.num_classes)
    empty = [dataset.class_names[label] for label in np.flatnonzero(counts == 0)]
    if empty:
        logger.warning(
            "%d class(es) have no training examples, so no model learns them and their "
            "test examples are misclassified in nearly every trial: %s",
            len(empty), ", ".join(repr(name) for name in empty[:10])
            + (", ..." if len(empty) > 10 else ""),
        )


def _estimates_current(run: RunDir) -> bool:
    """Return whether the run is complete and its estimate files are all in place."""
    if not run.read_manifest().get("complete"):
        return False
    return all((run.path / name).is_file() for name in (ESTIMATES, INFLUENCE, INFLUENCE_SE))


def _finish(run: RunDir, stats: dict, dataset: Dataset) -> RunDir:
    """Write the run's estimates and mark it complete."""
    summary = write_estimates(run, dataset=dataset)

    manifest = run.read_manifest()
    manifest["timings"] = {
        "train_seconds": stats["train_seconds"],
        "models_per_second": stats["models_per_second"],
        "estimate_seconds": summary["estimate_seconds"],
    }
    manifest["summary"] = summary
    manifest["complete"] = True
    run.write_manifest(manifest)
    return run
