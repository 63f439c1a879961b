"""Trial outcomes computed elsewhere: a membership mask and correctness of every trial.

Longtail computes every estimate from them itself, exactly as for its own trials.
"""

from __future__ import annotations

import numpy as np

from compute.datasets import Dataset
from compute.imports.archive import EstimatesArchive, ImportFileError
from compute.imports.labels import check_labels
from compute.rundir import TrialOutcomes


def read_trial_outcomes(archive: EstimatesArchive, dataset: Dataset) -> TrialOutcomes:
    """Read `mask` and `train_correct` (trials, n) and `test_correct` (trials, n').

    Optional `train_labels` and `test_labels` are checked against the dataset.
    """
    mask = archive.boolean_matrix("mask", dataset.n_train, "training")
    train_correct = archive.boolean_matrix("train_correct", dataset.n_train, "training")
    test_correct = archive.boolean_matrix("test_correct", dataset.n_test, "test")
    trials = len(mask)
    for key, array in (("train_correct", train_correct), ("test_correct", test_correct)):
        if len(array) != trials:
            raise ImportFileError(
                f"{archive.path}: 'mask' has {trials} trials (rows) but {key!r} has "
                f"{len(array)}; save one row per trial in each array"
            )
    if trials < 2:
        raise ImportFileError(
            f"{archive.path} has {trials} trials; estimates need at least 2, and useful "
            "ones hundreds"
        )
    for key, split in (("train_labels", "train"), ("test_labels", "test")):
        if key in archive.arrays:
            check_labels(archive.path, key, archive.arrays[key], dataset, split)

    return TrialOutcomes(
        trials=np.arange(trials, dtype=np.int64),
        mask=mask,
        train_correct=train_correct,
        test_correct=test_correct,
        test_accuracy=test_correct.mean(axis=1),
    )
