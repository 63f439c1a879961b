"""Dataset loaders: the built-in real digits and validated npz archives."""

from __future__ import annotations

import numpy as np
import pytest

from compute.datasets import DatasetError, load_dataset


def test_mnist5k_stratified_split():
    dataset = load_dataset("mnist5k")
    assert dataset.x_train.shape == (4000, 28, 28, 1)
    assert dataset.x_test.shape == (1000, 28, 28, 1)
    assert dataset.x_train.dtype == np.uint8
    assert np.array_equal(np.bincount(dataset.y_train), [400] * 10)
    assert np.array_equal(np.bincount(dataset.y_test), [100] * 10)
    assert dataset.class_names == tuple("0123456789")
    assert dataset.x_train.max() == 255


def test_mnist5k_fingerprint_stable():
    assert load_dataset("mnist5k").fingerprint() == load_dataset("mnist5k").fingerprint()


def test_digits_split_and_scale(digits):
    assert digits.n_train + digits.n_test == 1797
    assert digits.image_shape == (8, 8, 1)
    assert digits.x_train.max() == 255
    counts = np.bincount(digits.y_test)
    assert np.all((counts >= 35) & (counts <= 37))


def test_unknown_dataset_lists_choices():
    with pytest.raises(DatasetError, match=r"unknown dataset 'cifar'; expected one of digits"):
        load_dataset("cifar")


def save(tmp_path, **arrays):
    base = {
        "x_train": np.zeros((6, 4, 4), np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_test": np.zeros((3, 4, 4), np.uint8),
        "y_test": np.array([0, 1, 2]),
    }
    base.update(arrays)
    base = {key: value for key, value in base.items() if value is not None}
    path = tmp_path / "data.npz"
    np.savez(path, **base)
    return f"npz:{path}"


def test_npz_valid_with_class_names(tmp_path):
    spec = save(tmp_path, class_names=np.array(["cat", "dog", "eel"]))
    dataset = load_dataset(spec)
    assert dataset.x_train.shape == (6, 4, 4, 1)
    assert dataset.class_names == ("cat", "dog", "eel")


def test_npz_float_images_scaled(tmp_path):
    images = np.full((6, 4, 4, 3), 0.5, np.float32)
    dataset = load_dataset(save(tmp_path, x_train=images, x_test=images[:3]))
    assert dataset.x_train.shape == (6, 4, 4, 3)
    assert dataset.x_train[0, 0, 0, 0] == 128


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y_train": None}, r"missing keys \['y_train'\]"),
        ({"x_train": np.zeros((6, 16), np.uint8)}, r"'x_train' must have shape \(N, H, W\)"),
        ({"y_train": np.array([0, 1, 2])}, r"'y_train' has 3 labels but 'x_train' has 6 images"),
        (
            {"x_train": np.full((6, 4, 4), np.nan, np.float32)},
            r"'x_train' contains NaN or infinite pixels, first in example 0",
        ),
        (
            {"y_train": np.array([0, 1, 2.5, 0, 1, 2])},
            r"'y_train' must contain integer or string labels, found 2.5 at index 2",
        ),
        ({"x_test": np.zeros((3, 5, 5), np.uint8)}, r"'x_train' images have shape \(4, 4, 1\) but 'x_test' images have \(5, 5, 1\)"),
        ({"x_train": np.zeros((6, 4, 4), np.int32)}, r"'x_train' has dtype int32"),
        (
            {"x_test": np.zeros((0, 4, 4), np.uint8), "y_test": np.zeros(0, np.int64)},
            r"x_test contains no images \(shape \(0, 4, 4, 1\)\)",
        ),
        (
            {"x_test": np.zeros((0, 4, 4), np.float32), "y_test": np.zeros(0, np.int64)},
            r"x_test contains no images",
        ),
    ],
    ids=[
        "missing-key", "flat-images", "length-mismatch", "nan", "fractional-label",
        "size-mismatch", "int32-pixels", "empty-test-split", "empty-float-test-split",
    ],
)
def test_npz_invalid_names_key(tmp_path, arrays, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(save(tmp_path, **arrays))


def test_npz_not_an_archive(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"is not an .npz archive \(not a zip file\)"):
        load_dataset(f"npz:{path}")


def test_npy_file_named_npz_rejected(tmp_path):
    path = tmp_path / "single.npz"
    with open(path, "wb") as file:
        np.save(file, np.zeros(3))
    with pytest.raises(DatasetError, match=r"is not an .npz archive \(not a zip file\)"):
        load_dataset(f"npz:{path}")
