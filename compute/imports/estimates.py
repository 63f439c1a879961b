"""Estimates computed elsewhere: influence matrices by class, high-influence pairs, and
consistency scores. Each reader checks the file against the dataset and returns
`ImportedEstimates`, which `compute.imports.writer` turns into a run directory.

Key names follow the files that Feldman & Zhang released with "What Neural Networks
Memorize and Why" (NeurIPS 2020) for CIFAR-100, as docs/import.md lists them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from compute.datasets import Dataset
from compute.imports.archive import EstimatesArchive, ImportFileError
from compute.imports.labels import check_labels

logger = logging.getLogger(__name__)

CLASS_MATRIX = re.compile(r"infl_matrix_class(\d+)")
CLASS_INDEX = re.compile(r"tr_classidx_(\d+)")


@dataclass
class ImportedEstimates:
    """Per-example estimates and known influences, NaN wherever the file has none."""

    format: str
    mem: np.ndarray  # float64 (n_train,)
    consistency: np.ndarray  # float64 (n_train,)
    # Known influences as parallel arrays; every other (train, test) pair is missing.
    train_index: np.ndarray  # int64
    test_index: np.ndarray  # int64
    infl: np.ndarray  # float32
    # Counts and facts for the run manifest.
    details: dict = field(default_factory=dict)


def _missing(count: int) -> np.ndarray:
    return np.full(count, np.nan)


def _no_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


def _check_unique_pairs(archive: EstimatesArchive, train: np.ndarray, test: np.ndarray) -> None:
    keys = train * np.int64(1 << 32) + test
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(np.diff(keys[order]) == 0)
    if len(repeated):
        first = order[repeated[0] + 1]
        raise ImportFileError(
            f"{archive.path}: the pair (train {train[first]}, test {test[first]}) appears more "
            "than once; keep one influence per pair"
        )


def read_influence_matrix(archive: EstimatesArchive, dataset: Dataset) -> ImportedEstimates:
    """Read `tr_mem`, the labels, and per class c the influence of its training examples
    (`tr_classidx_{c}`) on its test examples (`tt_classidx_{c}`): `infl_matrix_class{c}`.
    """
    path = archive.path
    train_labels = archive.get("tr_labels")
    check_labels(path, "tr_labels", train_labels, dataset, "train")
    check_labels(path, "tt_labels", archive.get("tt_labels"), dataset, "test")
    mem = archive.value_array("tr_mem", (dataset.n_train,), -1.0, 1.0)

    classes = sorted(
        int(match.group(1))
        for match in map(CLASS_MATRIX.fullmatch, archive.arrays)
        if match is not None
    )
    if not classes:
        raise ImportFileError(
            f"{path} has tr_mem and labels but no infl_matrix_class{{c}} arrays; an "
            "influence file has one matrix per class c, with tr_classidx_{c} and tt_classidx_{c}"
        )

    indexed = {
        int(match.group(1))
        for match in map(CLASS_INDEX.fullmatch, archive.arrays)
        if match is not None
    }
    unmatched = sorted(indexed - set(classes))
    if unmatched:
        # Perhaps a truncated export; the import goes on without those classes.
        logger.warning(
            "%s has tr_classidx_{c} for class(es) %s but no infl_matrix_class{c}, so they "
            "get no influences; export the file again if they should have some",
            path, ", ".join(map(str, unmatched)),
        )

    parts = []
    for label in classes:
        train = archive.index_array(f"tr_classidx_{label}", dataset.n_train, "training")
        test = archive.index_array(f"tt_classidx_{label}", dataset.n_test, "test")
        matrix = archive.value_array(
            f"infl_matrix_class{label}", (len(train), len(test)), -1.0, 1.0
        )
        wrong = np.flatnonzero(train_labels[train] != label)
        if len(wrong):
            raise ImportFileError(
                f"{path}: tr_classidx_{label} lists training example {train[wrong[0]]}, whose "
                f"tr_labels entry is {train_labels[train[wrong[0]]]}, not {label}; the file "
                "is inconsistent, so export it again"
            )
        parts.append((np.repeat(train, len(test)), np.tile(test, len(train)), matrix.ravel()))

    train_index = np.concatenate([part[0] for part in parts])
    test_index = np.concatenate([part[1] for part in parts])
    infl = np.concatenate([part[2] for part in parts])
    _check_unique_pairs(archive, train_index, test_index)
    known = ~np.isnan(infl)
    return ImportedEstimates(
        format=archive.format,
        mem=mem,
        consistency=_missing(dataset.n_train),
        train_index=train_index[known],
        test_index=test_index[known],
        infl=infl[known].astype(np.float32),
        details={"classes_with_influence": len(classes), "influences": int(known.sum())},
    )


def read_influence_pairs(archive: EstimatesArchive, dataset: Dataset) -> ImportedEstimates:
    """Read high-influence pairs: `tr_idx`, `tt_idx`, their `infl`, and `mem` of `tr_idx`.

    The file has no labels, so the check is the definition of a high-influence pair:
    both examples of every pair must have the same label in the dataset.
    """
    path = archive.path
    train = archive.index_array("tr_idx", dataset.n_train, "training")
    test = archive.index_array("tt_idx", dataset.n_test, "test")
    if len(train) != len(test):
        raise ImportFileError(
            f"{path}: 'tr_idx' has {len(train)} entries but 'tt_idx' has {len(test)}; "
            "a pairs file has one entry per pair in each array"
        )
    infl = archive.value_array("infl", (len(train),), -1.0, 1.0)
    pair_mem = archive.value_array("mem", (len(train),), -1.0, 1.0)

    mismatched = np.flatnonzero(dataset.y_train[train] != dataset.y_test[test])
    if len(mismatched):
        first = int(mismatched[0])
        train_class = dataset.class_names[dataset.y_train[train[first]]]
        test_class = dataset.class_names[dataset.y_test[test[first]]]
        raise ImportFileError(
            f"{path}: pair {first} joins training example {train[first]} (class "
            f"{train_class!r}) and test example {test[first]} (class {test_class!r}) of "
            f"dataset {dataset.name!r}, but a high-influence pair has one class; the "
            "file's indices are not this dataset's, so pass the dataset it was computed on"
        )
    _check_unique_pairs(archive, train, test)

    mem = _missing(dataset.n_train)
    mem[train] = pair_mem
    same = (mem[train] == pair_mem) | (np.isnan(mem[train]) & np.isnan(pair_mem))
    conflicting = np.flatnonzero(~same)
    if len(conflicting):
        first = int(conflicting[0])
        raise ImportFileError(
            f"{path}: training example {train[first]} has mem {pair_mem[first]} in pair "
            f"{first} but {mem[train[first]]} in another pair; its mem must be the same in "
            "every pair"
        )
    return ImportedEstimates(
        format=archive.format,
        mem=mem,
        consistency=_missing(dataset.n_train),
        train_index=train,
        test_index=test,
        infl=infl.astype(np.float32),
        details={"pairs": len(train)},
    )


def read_consistency(archive: EstimatesArchive, dataset: Dataset) -> ImportedEstimates:
    """Read consistency scores of the training examples: `labels`, `scores`, `filenames`."""
    check_labels(archive.path, "labels", archive.get("labels"), dataset, "train")
    scores = archive.value_array("scores", (dataset.n_train,), 0.0, 1.0)
    details = {"scores": int((~np.isnan(scores)).sum())}
    if "filenames" in archive.arrays:
        filenames = archive.arrays["filenames"]
        if filenames.shape != (dataset.n_train,):
            raise ImportFileError(
                f"{archive.path}: 'filenames' has shape {filenames.shape}, expected "
                f"({dataset.n_train},), one name per score"
            )
        # NOTE: file names are recorded, not matched against the dataset's files; the
        # labels check above is what ties scores to examples.
        details["filenames"] = True
    train_index, test_index, infl = _no_pairs()
    return ImportedEstimates(
        format=archive.format,
        mem=_missing(dataset.n_train),
        consistency=scores,
        train_index=train_index,
        test_index=test_index,
        infl=infl,
        details=details,
    )
