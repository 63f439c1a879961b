"""CIFAR-10 and CIFAR-100 python batches, including Python 2 pickles with bytes keys."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from compute.datasets import DatasetError, load_dataset
from tests.format_files import CIFAR10_NAMES, write_cifar10, write_cifar100


def test_cifar10_python2_pickles_need_encoding(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(UnicodeDecodeError):
        pickle.loads((tmp_path / "data_batch_1").read_bytes())


def test_cifar10_python2_bytes_keys(tmp_path):
    written = write_cifar10(tmp_path, per_batch=4, test=6)
    dataset = load_dataset(f"cifar10:{tmp_path}")

    assert dataset.x_train.shape == (20, 32, 32, 3)
    assert dataset.x_test.shape == (6, 32, 32, 3)
    assert dataset.class_names == CIFAR10_NAMES
    # Training order is batch 1 to 5, rows in file order.
    assert dataset.y_train.tolist() == written["train_labels"]
    assert dataset.y_test.tolist() == written["test_labels"]
    assert dataset.y_train.dtype == np.int64


def test_cifar10_pixels_from_planes(tmp_path):
    written = write_cifar10(tmp_path)
    dataset = load_dataset(f"cifar10:{tmp_path}")
    rows = written["train_rows"]

    # Row layout: R plane, G plane, B plane, each 32x32 in row-major order.
    row, y, x = 5, 3, 17
    for channel in range(3):
        expected = rows[row, channel * 1024 + y * 32 + x]
        assert dataset.x_train[row, y, x, channel] == expected
    assert np.array_equal(dataset.x_test[2], written["test_rows"][2].reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar10_str_keys_same_fingerprint(tmp_path):
    write_cifar10(tmp_path / "python2", python2=True)
    write_cifar10(tmp_path / "python3", python2=False)
    python2 = load_dataset(f"cifar10:{tmp_path / 'python2'}")
    python3 = load_dataset(f"cifar10:{tmp_path / 'python3'}")
    assert python2.fingerprint() == python3.fingerprint()


def test_cifar100_fine_labels_default(tmp_path):
    written = write_cifar100(tmp_path)
    dataset = load_dataset(f"cifar100:{tmp_path}")
    assert dataset.name == "cifar100"
    assert dataset.num_classes == 100
    assert dataset.class_names[7] == "fine07"
    assert dataset.y_train.tolist() == written["train"]["fine"]
    assert dataset.y_test.tolist() == written["test"]["fine"]
    assert dataset.source["labels"] == "fine"


def test_cifar100_coarse_labels_option(tmp_path):
    written = write_cifar100(tmp_path)
    dataset = load_dataset(f"cifar100:{tmp_path}?labels=coarse")
    assert dataset.name == "cifar100-coarse"
    assert dataset.num_classes == 20
    assert dataset.class_names[19] == "coarse19"
    assert dataset.y_train.tolist() == written["train"]["coarse"]
    assert dataset.source["labels"] == "coarse"


def test_cifar100_bad_labels_option(tmp_path):
    write_cifar100(tmp_path)
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar100:{tmp_path}?labels=superclass")
    assert str(caught.value) == (
        f"dataset spec 'cifar100:{tmp_path}?labels=superclass': option "
        "labels='superclass' must be one of fine, coarse"
    )


def test_cifar10_missing_files_suggest_nested(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path}: missing CIFAR files ['data_batch_1', 'data_batch_2', 'data_batch_3', "
        "'data_batch_4', 'data_batch_5', 'test_batch', 'batches.meta']; they are probably in "
        f"{tmp_path / 'cifar-10-batches-py'}, so pass cifar10:{tmp_path / 'cifar-10-batches-py'}"
    )


def test_cifar10_missing_one_batch(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path}: missing CIFAR files ['data_batch_3']; pass the folder that contains "
        "them as cifar10:DIR"
    )


class RunsShell:
    def __reduce__(self):
        return (os.system, ("true",))


def test_cifar10_pickle_with_code_rejected(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({"data": RunsShell()}, protocol=2))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path / 'data_batch_2'} is not a readable CIFAR batch (UnpicklingError: global "
        f"{os.system.__module__}.system is not allowed in a CIFAR batch); use the files of the "
        "'python version' archive, as extracted"
    )


def test_cifar10_wrong_row_width(tmp_path):
    write_cifar10(tmp_path, python2=False)
    batch = {"data": np.zeros((4, 784), np.uint8), "labels": [0, 1, 2, 3]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path / 'test_batch'}: 'data' must be uint8 of shape (N, 3072), found uint8 "
        "with shape (4, 784); the file is not an original CIFAR batch"
    )


def test_cifar10_label_outside_names(tmp_path):
    write_cifar10(tmp_path, python2=False)
    batch = {"data": np.zeros((2, 3072), np.uint8), "labels": [3, 10]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar10:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path / 'test_batch'}: 'labels'[1] is 10, but there are 10 class names; "
        "labels must lie in 0..9"
    )


def test_cifar100_batch_given_as_cifar10(tmp_path):
    write_cifar100(tmp_path / "c100")
    write_cifar10(tmp_path / "c10")
    (tmp_path / "c10" / "test_batch").write_bytes((tmp_path / "c100" / "test").read_bytes())
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"cifar10:{tmp_path / 'c10'}")
    assert str(caught.value) == (
        f"{tmp_path / 'c10' / 'test_batch'} has no key 'labels' (found ['batch_label', "
        "'coarse_labels', 'data', 'filenames', 'fine_labels']); it is not a batch of this "
        "CIFAR variant, so check the dataset prefix and the folder"
    )
