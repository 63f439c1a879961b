"""Turn the labels found in a file into class indices 0..K-1 and class names.

Labels that already are 0..K-1 stay as they are. Any other labels (gaps such as
{0, 1, 5}, negative numbers, strings) go through a label map: the sorted distinct
labels of both splits, where class index k stands for the k-th of them. The map
goes into the dataset's `source` as `label_map`, so the run manifest stores it, and
the class names are the original labels, so users see those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compute.datasets.dataset import DatasetError


@dataclass(frozen=True)
class EncodedLabels:
    """Class indices of both splits, their names, and the label map if one was needed."""

    y_train: np.ndarray  # int64 (n,)
    y_test: np.ndarray  # int64 (n',)
    class_names: tuple[str, ...]
    # Original label of each class index, or None when the labels were already 0..K-1.
    label_map: list[int] | list[str] | None

    def source_entry(self) -> dict:
        """Return {'label_map': [...]} for a dataset's source, or {} when there is no map."""
        return {} if self.label_map is None else {"label_map": self.label_map}


def label_values(where: str, key: str, labels: np.ndarray) -> np.ndarray:
    """Return labels as an int64 or str array; raise for values no label can have.

    Floats must be whole numbers. Bytes are decoded as UTF-8.
    """
    if labels.ndim != 1:
        raise DatasetError(f"{where}: '{key}' must be one-dimensional, found shape {labels.shape}")
    if labels.dtype == np.bool_ or np.issubdtype(labels.dtype, np.integer):
        return labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.floating):
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise DatasetError(
                f"{where}: '{key}' must contain integer or string labels, found "
                f"{labels[bad].item()!r} at index {bad}; save whole numbers or strings"
            )
        return labels.astype(np.int64)
    if labels.dtype.kind == "U":
        return labels
    if labels.dtype.kind == "S":
        try:
            return np.char.decode(labels, "utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(
                f"{where}: '{key}' contains byte-string labels that are not UTF-8 ({error}); "
                "save them as str"
            ) from error
    raise DatasetError(
        f"{where}: '{key}' has dtype {labels.dtype}; save labels as integers or as "
        "strings (np.array(labels, dtype=str))"
    )


def encode_labels(
    where: str,
    train: np.ndarray,
    test: np.ndarray,
    class_names: tuple[str, ...] | None = None,
) -> EncodedLabels:
    """Map the labels of both splits to class indices 0..K-1.

    `train` and `test` come from `label_values`. With `class_names`, integer labels
    must index into them, and K is the number of names even when some class has
    no example. Without names, labels that are exactly 0..K-1 (over both splits)
    are kept, and any other labels go through the sorted label map.
    """
    if train.dtype.kind != test.dtype.kind:
        raise DatasetError(
            f"{where}: train labels are {_kind(train)} but test labels are {_kind(test)}; "
            "use one type of label in both splits"
        )

    if class_names is not None:
        return _with_class_names(where, train, test, tuple(class_names))

    distinct = np.unique(np.concatenate([train, test]))
    if train.dtype.kind != "U" and np.array_equal(distinct, np.arange(len(distinct))):
        names = tuple(str(label) for label in range(len(distinct)))
        return EncodedLabels(train, test, names, None)

    label_map = distinct.tolist()
    return EncodedLabels(
        y_train=np.searchsorted(distinct, train).astype(np.int64),
        y_test=np.searchsorted(distinct, test).astype(np.int64),
        class_names=tuple(str(label) for label in label_map),
        label_map=label_map,
    )


def _with_class_names(where, train, test, class_names) -> EncodedLabels:
    if train.dtype.kind == "U":
        raise DatasetError(
            f"{where}: string labels are their own class names, so 'class_names' is not "
            "used with them; save integer labels 0..K-1 with class_names, or drop class_names"
        )
    for split, labels in (("train", train), ("test", test)):
        outside = (labels < 0) | (labels >= len(class_names))
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise DatasetError(
                f"{where}: {split} label {labels[first]} at index {first} is not an index "
                f"into the {len(class_names)} class names; labels must lie in "
                f"0..{len(class_names) - 1}, so give one name per class"
            )
    return EncodedLabels(train, test, tuple(str(name) for name in class_names), None)


def _kind(labels: np.ndarray) -> str:
    return "strings" if labels.dtype.kind == "U" else "integers"
