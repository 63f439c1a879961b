"""Read a run directory through compute's reader and check it before loading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compute.datasets import Dataset
from compute.rundir import ESTIMATES, INFLUENCE, INFLUENCE_PAIRS, INFLUENCE_SE, RunDir


class LoadError(ValueError):
    """A run cannot be loaded; the message names the run, the problem and the fix."""


# Arrays of estimates.npz that the store needs, by the split whose length they have.
TRAIN_ARRAYS = (
    "mem", "mem_se", "consistency", "consistency_se", "in_trials", "out_trials",
    "train_labels", "train_accuracy",
)
TEST_ARRAYS = ("test_labels", "test_accuracy")


@dataclass
class RunInput:
    """Everything a load reads from one run directory, checked for consistency."""

    run: RunDir
    manifest: dict
    estimates: dict[str, np.ndarray]
    dataset: Dataset

    @property
    def n_train(self) -> int:
        return self.dataset.n_train

    @property
    def n_test(self) -> int:
        return self.dataset.n_test


def read_run_input(path: str | Path, dataset_spec: str | None = None) -> RunInput:
    """Read and check a finished run: manifest, every shard, estimates, dataset, influence.

    `dataset_spec` reads the dataset from there instead of the run's stored spec.
    """
    run = RunDir(path)
    manifest = run.read_manifest()
    if not manifest.get("complete"):
        raise LoadError(
            f"run {run.path} is not finished (its manifest has complete: false); "
            "rerun the same 'longtail estimate' command to finish it, then load it (after "
            "an interrupted extension, the previous --trials gives the extension up)"
        )

    # Reading every shard proves that the trials behind the estimates are intact.
    trials = run.read_trials()
    estimates = run.read_estimates()
    dataset = run.load_dataset(dataset_spec)

    _check_estimates(run, estimates, dataset, len(trials.trials))
    _check_influence_shape(run, dataset)
    return RunInput(run=run, manifest=manifest, estimates=estimates, dataset=dataset)


def _check_estimates(run: RunDir, estimates: dict, dataset: Dataset, trials: int) -> None:
    path = run.path / ESTIMATES
    expected = {key: (dataset.n_train,) for key in TRAIN_ARRAYS}
    expected.update({key: (dataset.n_test,) for key in TEST_ARRAYS})
    expected["trial_test_accuracy"] = (trials,)
    for key, shape in expected.items():
        if key not in estimates:
            raise LoadError(
                f"{path} has no array {key!r}; it was written by another version of "
                "Longtail, so rerun 'longtail estimate' on the run directory"
            )
        if estimates[key].shape != shape:
            raise LoadError(
                f"{path}: {key!r} has shape {estimates[key].shape}, but the dataset "
                f"{dataset.name!r} and the shards need {shape}; the estimates belong to "
                "another run, so rerun 'longtail estimate' on this run directory"
            )

    for key, labels in (("train_labels", dataset.y_train), ("test_labels", dataset.y_test)):
        if not np.array_equal(estimates[key], labels):
            first = int(np.flatnonzero(estimates[key] != labels)[0])
            raise LoadError(
                f"{path}: {key!r} differs from the labels of dataset {dataset.name!r}, "
                f"first at index {first}; rerun 'longtail estimate' on this run directory"
            )

    mem = estimates["mem"]
    out_of_range = np.abs(mem) > 1
    if out_of_range.any():
        first = int(np.flatnonzero(out_of_range)[0])
        raise LoadError(
            f"{path}: mem[{first}] is {mem[first]}, outside [-1, 1]; the file is corrupt, "
            "so rerun 'longtail estimate' on this run directory"
        )


def _check_influence_shape(run: RunDir, dataset: Dataset) -> None:
    shape = (dataset.n_train, dataset.n_test)
    if run.influence_pairs_path.is_file():
        found = [(INFLUENCE_PAIRS, run.influence_shape(), "import the file again")]
    else:
        infl, infl_se = run.influence()
        advice = "rerun 'longtail estimate' on this run directory"
        found = [(INFLUENCE, infl.shape, advice), (INFLUENCE_SE, infl_se.shape, advice)]
    for name, matrix_shape, advice in found:
        if matrix_shape != shape:
            raise LoadError(
                f"{run.path / name} has shape {matrix_shape}, but dataset {dataset.name!r} "
                f"has {shape[0]} train and {shape[1]} test examples; {advice}"
            )


def check_influence_block(run: RunDir, start: int, infl: np.ndarray, infl_se: np.ndarray) -> None:
    """Raise LoadError if a block of influences holds values no estimate can have."""
    with np.errstate(invalid="ignore"):
        bad = (np.abs(infl) > 1) | (infl_se < 0) | (infl_se > 1)
    if bad.any():
        row, column = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
        raise LoadError(
            f"{run.path / INFLUENCE}: influence of train {start + row} on test {column} is "
            f"{infl[row, column]} with standard error {infl_se[row, column]}, outside "
            "[-1, 1] and [0, 1]; the file is corrupt, so rerun 'longtail estimate'"
        )
