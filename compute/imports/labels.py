"""Check the labels stored in an import file against the labels of the dataset.

Imported scores are addressed by position, so a file whose examples are in
another order than the dataset's would put every score on the wrong image. The
labels are the check: they must match one for one, in length and in order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compute.datasets import Dataset
from compute.imports.archive import ImportFileError


def original_labels(dataset: Dataset, split: str, as_text: bool) -> np.ndarray:
    """Return the split's labels as the source files had them.

    With a label map (see compute.datasets.labels) that is the mapped value, else
    the class index. `as_text` returns class names, to compare with string labels.
    """
    indices = dataset.y_train if split == "train" else dataset.y_test
    if as_text:
        return np.asarray(dataset.class_names)[indices]
    label_map = dataset.source.get("label_map")
    if label_map is not None and all(isinstance(label, int) for label in label_map):
        return np.asarray(label_map, dtype=np.int64)[indices]
    return indices


def check_labels(path: Path, key: str, labels: np.ndarray, dataset: Dataset, split: str) -> None:
    """Raise ImportFileError unless `labels` equal the dataset's labels of `split`, in order."""
    if labels.ndim != 1:
        raise ImportFileError(f"{path}: {key!r} must be 1-D, found shape {labels.shape}")
    if labels.dtype.kind == "S":
        labels = np.char.decode(labels, "utf-8")
    as_text = labels.dtype.kind == "U"
    if not as_text and not np.issubdtype(labels.dtype, np.integer):
        raise ImportFileError(
            f"{path}: {key!r} must contain integer or string labels, found {labels.dtype}"
        )

    expected = original_labels(dataset, split, as_text)
    count = min(len(labels), len(expected))
    differs = np.flatnonzero(labels[:count] != expected[:count])
    if len(differs) == 0 and len(labels) == len(expected):
        return

    noun = "training" if split == "train" else "test"
    if len(differs):
        first = int(differs[0])
        problem = (
            f"{key}[{first}] is {labels[first].item()!r}, but {noun} example {first} of "
            f"dataset {dataset.name!r} has label {expected[first].item()!r}"
        )
    else:
        problem = (
            f"{key!r} has {len(labels)} labels, but dataset {dataset.name!r} has "
            f"{len(expected)} {noun} examples (first unmatched index {count})"
        )
    raise ImportFileError(
        f"{path}: {problem}; the file's examples are not the dataset's, or not in the "
        "same order, so its scores would land on the wrong images. Pass the dataset the "
        "file was computed on, loaded in its original order"
    )
