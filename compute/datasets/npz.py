"""Load a dataset from a NumPy archive with x_train, y_train, x_test and y_test."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from compute.datasets.dataset import Dataset, DatasetError

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _images(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise DatasetError(
            f"{path}: '{key}' must have shape (N, H, W) or (N, H, W, C), found {array.shape}; "
            "save images with one example per row of the first axis"
        )
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            bad = int(np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))[0])
            raise DatasetError(
                f"{path}: '{key}' contains NaN or infinite pixels, first in example {bad}; "
                "replace them before saving"
            )
        if array.min() < 0 or array.max() > 1:
            raise DatasetError(
                f"{path}: float '{key}' must lie in [0, 1], found values from "
                f"{array.min()} to {array.max()}; divide by the maximum or save uint8"
            )
        return np.round(array * 255).astype(np.uint8)
    raise DatasetError(
        f"{path}: '{key}' has dtype {array.dtype}; save uint8 pixels or floats in [0, 1]"
    )


def _labels(path: Path, key: str, array: np.ndarray, count: int) -> np.ndarray:
    if array.ndim != 1:
        raise DatasetError(f"{path}: '{key}' must be one-dimensional, found shape {array.shape}")
    if len(array) != count:
        image_key = key.replace("y_", "x_")
        raise DatasetError(
            f"{path}: '{key}' has {len(array)} labels but '{image_key}' has {count} images; "
            "save one label per image"
        )
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise DatasetError(
                f"{path}: '{key}' must contain integer labels, found {array[bad].item()!r} at index "
                f"{bad}; save labels as integers 0..K-1"
            )
        return array.astype(np.int64)
    raise DatasetError(
        f"{path}: '{key}' must contain integer labels, found dtype {array.dtype}; "
        "save labels as integers 0..K-1"
    )


def load_npz(path: str | Path) -> Dataset:
    """Load and validate an npz dataset; every problem raises DatasetError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"npz dataset {path} not found; pass an existing file as npz:PATH")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path} is not a readable .npz archive: {error}") from error

    with archive:
        missing = [key for key in REQUIRED_KEYS if key not in archive.files]
        if missing:
            raise DatasetError(
                f"{path}: missing keys {missing}; save with "
                "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
            )
        x_train = _images(path, "x_train", archive["x_train"])
        x_test = _images(path, "x_test", archive["x_test"])
        y_train = _labels(path, "y_train", archive["y_train"], len(x_train))
        y_test = _labels(path, "y_test", archive["y_test"], len(x_test))
        class_names = archive["class_names"].tolist() if "class_names" in archive.files else None

    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{path}: 'x_train' images have shape {x_train.shape[1:]} but 'x_test' images "
            f"have {x_test.shape[1:]}; save both splits at one size"
        )
    low = min(y_train.min(initial=0), y_test.min(initial=0))
    if low < 0:
        raise DatasetError(f"{path}: labels must be 0..K-1, found {low}; shift them to start at 0")
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    if class_names is None:
        class_names = [str(label) for label in range(num_classes)]
    if len(class_names) < num_classes:
        raise DatasetError(
            f"{path}: 'class_names' has {len(class_names)} names but labels go up to "
            f"{num_classes - 1}; give one name per class"
        )
    return Dataset(
        name=path.stem,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(name) for name in class_names),
        source={"file": str(path.resolve())},
    )
