"""MNIST IDX files: gzip found by its magic bytes, and every header check."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from compute.datasets import DatasetError, load_dataset
from tests.format_files import idx_bytes, write_mnist


def test_mnist_gzip_without_gz_name(tmp_path):
    arrays = write_mnist(tmp_path, train=20, test=10, side=6)
    assert (tmp_path / "train-images-idx3-ubyte").read_bytes()[:2] == b"\x1f\x8b"

    dataset = load_dataset(f"mnist:{tmp_path}")
    assert dataset.x_train.shape == (20, 6, 6, 1)
    assert np.array_equal(dataset.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(dataset.x_test[..., 0], arrays["t10k-images-idx3-ubyte"])
    assert dataset.y_test.tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert dataset.class_names == tuple("0123456789")
    assert "label_map" not in dataset.source


def test_mnist_gz_name_not_gzipped(tmp_path):
    arrays = write_mnist(tmp_path)
    for name, array in arrays.items():
        (tmp_path / name).unlink()
        (tmp_path / f"{name}.gz").write_bytes(idx_bytes(array))
    dataset = load_dataset(f"mnist:{tmp_path}")
    assert np.array_equal(dataset.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    assert dataset.source["files"]["train_images"] == "train-images-idx3-ubyte.gz"


def test_mnist_dotted_names(tmp_path):
    arrays = write_mnist(tmp_path)
    for name in arrays:
        (tmp_path / name).rename(tmp_path / name.replace("-idx", ".idx"))
    dataset = load_dataset(f"mnist:{tmp_path}")
    assert dataset.n_train == 20


def test_mnist_little_endian_header(tmp_path):
    arrays = write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(arrays["train-images-idx3-ubyte"], little_endian=True))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"mnist:{tmp_path}")
    assert str(caught.value) == (
        f"{path}: header bytes 03 08 00 00 are not an IDX magic number; expected 00 00 08 03 "
        "(big-endian); the bytes are in reverse order, so the header was written "
        "little-endian: write it big-endian, e.g. with struct.pack('>HBB', 0, 8, ndim) and "
        "'>I' sizes"
    )


def test_mnist_truncated_file(tmp_path):
    write_mnist(tmp_path, train=20, side=6)
    path = tmp_path / "train-images-idx3-ubyte"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(data[:-7])
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"mnist:{tmp_path}")
    assert str(caught.value) == (
        f"{path} is {16 + 720 - 7} bytes, but its header declares shape (20, 6, 6), which "
        "needs 736 bytes; the file is truncated or corrupt, so download it again"
    )


def test_mnist_image_label_count_mismatch(tmp_path):
    write_mnist(tmp_path, test=10)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9, np.uint8)))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"mnist:{tmp_path}")
    assert str(caught.value) == (
        "t10k-images-idx3-ubyte contains 10 images but t10k-labels-idx1-ubyte contains 9 labels "
        f"(in {tmp_path}); the files belong to different sets, so use the matching pair"
    )


def test_mnist_labels_file_as_images(tmp_path):
    arrays = write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(arrays["train-labels-idx1-ubyte"]))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"mnist:{tmp_path}")
    assert str(caught.value) == (
        f"{path}: magic number 00 00 08 01 declares 1-dimensional data of type 0x08; "
        "expected 00 00 08 03, 3-dimensional unsigned bytes, as in the MNIST images file"
    )


def test_mnist_corrupt_gzip(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DatasetError, match=r"starts like a gzip file but does not decompress"):
        load_dataset(f"mnist:{tmp_path}")


def test_mnist_missing_file(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"mnist:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path}: IDX file t10k-labels-idx1-ubyte not found (looked for "
        "t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz, t10k-labels.idx1-ubyte, "
        "t10k-labels.idx1-ubyte.gz); pass the folder that contains the four MNIST files as "
        "mnist:DIR"
    )


def test_mnist_gapped_labels_mapped(tmp_path):
    write_mnist(tmp_path, train=6, test=3)
    labels = {"train-labels-idx1-ubyte": [1, 3, 7, 1, 3, 7], "t10k-labels-idx1-ubyte": [7, 1, 3]}
    for name, values in labels.items():
        (tmp_path / name).write_bytes(idx_bytes(np.array(values, np.uint8)))
    dataset = load_dataset(f"mnist:{tmp_path}")
    assert dataset.class_names == ("1", "3", "7")
    assert dataset.y_train.tolist() == [0, 1, 2, 0, 1, 2]
    assert dataset.y_test.tolist() == [2, 0, 1]
    assert dataset.source["label_map"] == [1, 3, 7]
