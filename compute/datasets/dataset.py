"""The one in-memory form that every dataset loader produces."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np


class DatasetError(ValueError):
    """A dataset file or spec is invalid; the message names the value and the fix."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 arrays of shape (N, H, W, C) and integer labels 0..K-1.

    The index of an example is its position in `x_train` or `x_test`, and that
    position is how every later stage addresses it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    # Free-form facts about where the data came from, stored in the run manifest.
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("x_train", "x_test"):
            array = getattr(self, key)
            if array.dtype != np.uint8 or array.ndim != 4:
                raise DatasetError(
                    f"{key} must be uint8 with shape (N, H, W, C), "
                    f"found {array.dtype} with shape {array.shape}"
                )
            if len(array) == 0:
                # Trials hold out part of the training split and score every
                # test example, so neither split may be empty.
                where = self.source.get("file") or self.source.get("folder") or self.name
                raise DatasetError(
                    f"dataset {where}: {key} contains no images (shape {array.shape}); "
                    "give both splits at least one example"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DatasetError(
                f"train and test images differ in shape: {self.x_train.shape[1:]} "
                f"and {self.x_test.shape[1:]}"
            )
        for key, images in (("y_train", self.x_train), ("y_test", self.x_test)):
            labels = getattr(self, key)
            if labels.dtype != np.int64 or labels.shape != (len(images),):
                raise DatasetError(
                    f"{key} must be int64 with shape ({len(images)},), "
                    f"found {labels.dtype} with shape {labels.shape}"
                )
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
                raise DatasetError(
                    f"{key} must lie in 0..{len(self.class_names) - 1}, "
                    f"found values from {labels.min()} to {labels.max()}"
                )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    def fingerprint(self) -> str:
        """Return a SHA-256 over the pixels, labels, shapes and class names."""
        digest = hashlib.sha256()
        header = {
            "train_shape": list(self.x_train.shape),
            "test_shape": list(self.x_test.shape),
            "class_names": list(self.class_names),
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self) -> dict:
        """Return the JSON-ready summary that run manifests store."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
            "source": self.source,
        }


def stratified_split(
    labels: np.ndarray, test_per_class: int | float, seed: int  # noqa: PYI041
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and test with the same share of each class.

    `test_per_class` is a count when it is an int and a fraction of each class when
    it is a float. Both returned index arrays are sorted, so examples keep the order
    of the source file within each split.
    """
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        if isinstance(test_per_class, float):
            count = round(test_per_class * len(members))
        else:
            count = test_per_class
        test_parts.append(members[:count])
        train_parts.append(members[count:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(test_parts))
