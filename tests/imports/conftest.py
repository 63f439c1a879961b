"""Import fixtures: the store's database URLs (SQLite and PostgreSQL) and a small dataset."""

from __future__ import annotations

import numpy as np
import pytest

from tests.store.conftest import database_url, postgres_database_url  # noqa: F401

# Train and test labels of the small dataset below: three classes.
TRAIN_LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
TEST_LABELS = np.array([2, 0, 1, 0, 1, 2])


@pytest.fixture
def small_dataset(tmp_path) -> str:
    """The spec of an npz dataset with 10 train and 6 test 4x4 grayscale images."""
    rng = np.random.default_rng(0)
    path = tmp_path / "small.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (len(TRAIN_LABELS), 4, 4), dtype=np.uint8),
        y_train=TRAIN_LABELS,
        x_test=rng.integers(0, 256, (len(TEST_LABELS), 4, 4), dtype=np.uint8),
        y_test=TEST_LABELS,
        class_names=np.array(["apple", "bee", "cloud"]),
    )
    return f"npz:{path}"
