"""npz archives: image layouts, pixel dtypes and labels that need a label map."""

from __future__ import annotations

import numpy as np
import pytest

from compute.datasets import DatasetError, load_dataset


def save(tmp_path, **arrays) -> tuple[str, str]:
    """Save a 6-train, 3-test archive with the given arrays replaced; return (spec, path)."""
    base = {
        "x_train": np.zeros((6, 4, 4), np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_test": np.zeros((3, 4, 4), np.uint8),
        "y_test": np.array([0, 1, 2]),
    }
    base.update(arrays)
    path = tmp_path / "data.npz"
    np.savez(path, **base)
    return f"npz:{path}", str(path)


def test_npz_nchw_detected(tmp_path):
    images = np.arange(6 * 3 * 5 * 4, dtype=np.uint8).reshape(6, 3, 5, 4)
    spec, _ = save(tmp_path, x_train=images, x_test=images[:3])
    dataset = load_dataset(spec)
    assert dataset.x_train.shape == (6, 5, 4, 3)
    assert dataset.x_train[2, 4, 1, 2] == images[2, 2, 4, 1]


def test_npz_nhwc_and_nhw_kept(tmp_path):
    images = np.arange(6 * 5 * 4 * 3, dtype=np.uint8).reshape(6, 5, 4, 3)
    spec, _ = save(tmp_path, x_train=images, x_test=images[:3])
    assert np.array_equal(load_dataset(spec).x_train, images)

    gray = np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4)
    spec, _ = save(tmp_path, x_train=gray, x_test=gray[:3])
    assert np.array_equal(load_dataset(spec).x_train, gray[..., None])


def test_npz_ambiguous_layout_rejected(tmp_path):
    images = np.zeros((6, 3, 32, 3), np.uint8)
    spec, path = save(tmp_path, x_train=images, x_test=images[:3])
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: cannot tell the channel axis of 'x_train' with shape (6, 3, 32, 3): both "
        "its second and its last axis could hold the channels; add ?layout=nhwc (channels "
        "last) or ?layout=nchw (channels first) to the dataset spec, or pass --layout"
    )


def test_npz_ambiguous_layout_resolved(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 3, 32, 3), dtype=np.uint8)
    spec, _ = save(tmp_path, x_train=images, x_test=images[:3])
    channels_first = load_dataset(f"{spec}?layout=nchw")
    assert channels_first.x_train.shape == (6, 32, 3, 3)
    assert channels_first.source["layout"] == "nchw"
    assert np.array_equal(channels_first.x_train, images.transpose(0, 2, 3, 1))
    assert load_dataset(f"{spec}?layout=nhwc").x_train.shape == (6, 3, 32, 3)


def test_npz_no_channel_axis_rejected(tmp_path):
    images = np.zeros((6, 8, 8, 2), np.uint8)
    spec, path = save(tmp_path, x_train=images, x_test=images[:3])
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: cannot tell the channel axis of 'x_train' with shape (6, 8, 8, 2): neither "
        "its second nor its last axis has 1 or 3 entries; add ?layout=nhwc (channels last) "
        "or ?layout=nchw (channels first) to the dataset spec, or pass --layout"
    )
    assert load_dataset(f"{spec}?layout=nhwc").x_train.shape == (6, 8, 8, 2)


def test_npz_layout_rank_mismatch(tmp_path):
    spec, path = save(tmp_path)
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"{spec}?layout=nchw")
    assert str(caught.value) == (
        f"{path}: 'x_train' has shape (6, 4, 4), which does not match layout nchw (4 axes); "
        "pass the layout the array was saved with"
    )


def test_npz_uint16_scaled(tmp_path):
    images = np.zeros((6, 4, 4), np.uint16)
    images[0, 0, :4] = [0, 257, 1000, 65535]
    spec, _ = save(tmp_path, x_train=images, x_test=images[:3])
    dataset = load_dataset(spec)
    # round(v * 255 / 65535): 257 -> 1 exactly, 1000 -> 3.89 -> 4.
    assert dataset.x_train[0, 0, :4, 0].tolist() == [0, 1, 4, 255]


def test_npz_nan_rejected(tmp_path):
    images = np.zeros((6, 4, 4), np.float32)
    images[4, 1, 2] = np.nan
    spec, path = save(tmp_path, x_train=images, x_test=images[:3])
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: 'x_train' contains NaN or infinite pixels, first in example 4; "
        "replace them before saving"
    )


def test_npz_float_above_one_rejected(tmp_path):
    images = np.full((6, 4, 4), 255.0)
    spec, path = save(tmp_path, x_train=images, x_test=images[:3])
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: float 'x_train' must lie in [0, 1], found values from 255.0 to 255.0; "
        "divide by the maximum or save uint8"
    )


def test_npz_int64_pixels_rejected(tmp_path):
    images = np.zeros((6, 4, 4), np.int64)
    spec, path = save(tmp_path, x_train=images, x_test=images[:3])
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: 'x_train' has dtype int64; save uint8 pixels, uint16 pixels or floats in "
        "[0, 1] (for integers already in 0..255, use x.astype(np.uint8))"
    )


def test_npz_string_labels_mapped(tmp_path):
    spec, _ = save(
        tmp_path,
        y_train=np.array(["zebra", "ant", "moth", "ant", "zebra", "moth"]),
        y_test=np.array(["moth", "zebra", "ant"]),
    )
    dataset = load_dataset(spec)
    assert dataset.class_names == ("ant", "moth", "zebra")
    assert dataset.y_train.tolist() == [2, 0, 1, 0, 2, 1]
    assert dataset.y_test.tolist() == [1, 2, 0]
    assert dataset.source["label_map"] == ["ant", "moth", "zebra"]


def test_npz_gapped_and_negative_labels_mapped(tmp_path):
    spec, _ = save(tmp_path, y_train=np.array([-1, 4, 10, -1, 4, 10]), y_test=np.array([10, 10, 4]))
    dataset = load_dataset(spec)
    assert dataset.class_names == ("-1", "4", "10")
    assert dataset.y_train.tolist() == [0, 1, 2, 0, 1, 2]
    assert dataset.y_test.tolist() == [2, 2, 1]
    assert dataset.source["label_map"] == [-1, 4, 10]


def test_npz_dense_labels_unmapped(tmp_path):
    spec, _ = save(tmp_path)
    dataset = load_dataset(spec)
    assert dataset.class_names == ("0", "1", "2")
    assert "label_map" not in dataset.source


def test_npz_class_names_allow_empty_class(tmp_path):
    spec, _ = save(tmp_path, class_names=np.array(["cat", "dog", "eel", "fox"]))
    dataset = load_dataset(spec)
    assert dataset.num_classes == 4
    assert "label_map" not in dataset.source


def test_npz_string_labels_with_class_names(tmp_path):
    spec, path = save(
        tmp_path, y_train=np.array(list("abcabc")), y_test=np.array(list("abc")),
        class_names=np.array(["a", "b", "c"]),
    )
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: string labels are their own class names, so 'class_names' is not used with "
        "them; save integer labels 0..K-1 with class_names, or drop class_names"
    )


def test_npz_mixed_label_types(tmp_path):
    spec, path = save(tmp_path, y_test=np.array(["0", "1", "2"]))
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == (
        f"{path}: train labels are integers but test labels are strings; use one type of "
        "label in both splits"
    )


def test_npz_object_labels_rejected(tmp_path):
    labels = np.array(["a", 1, None, "a", 1, None], dtype=object)
    spec, _ = save(tmp_path, y_train=labels)
    with pytest.raises(DatasetError, match=r"'y_train' is an object array, which only pickle"):
        load_dataset(spec)


def test_npz_unknown_option(tmp_path):
    spec, _ = save(tmp_path)
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"{spec}?skip_bad_files=1")
    assert str(caught.value) == (
        f"dataset spec '{spec}?skip_bad_files=1': unknown option 'skip_bad_files'; "
        "npz accepts: layout"
    )


def test_npz_truncated_file_named(tmp_path):
    spec, path = save(tmp_path)
    with open(path, "rb") as file:
        content = file.read()
    with open(path, "wb") as file:
        file.write(content[: len(content) // 2])

    with pytest.raises(DatasetError, match="starts as a zip archive but its end is missing"):
        load_dataset(spec)


def test_npz_folder_named(tmp_path):
    with pytest.raises(DatasetError, match=f"npz dataset {tmp_path} is a folder"):
        load_dataset(f"npz:{tmp_path}")


def test_npz_empty_test_split_names_file(tmp_path):
    spec, path = save(tmp_path, x_test=np.zeros((0, 4, 4), np.uint8), y_test=np.zeros(0, np.int64))

    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value).startswith(f"dataset {path}: x_test contains no images")
