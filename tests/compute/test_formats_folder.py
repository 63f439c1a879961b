"""Image folders: layouts, class order, pixel conversions, resizing and bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from compute.datasets import DatasetError, load_dataset
from tests.format_files import save_image, write_image_folder


def noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_split_folder(root, train=3, test=2, color=True):
    write_image_folder(root / "train", {"dog": train, "cat": train, "Bird": train}, color=color)
    write_image_folder(root / "test", {"dog": test, "cat": test, "Bird": test}, color=color)


def test_folder_train_test_layout(tmp_path):
    write_split_folder(tmp_path, train=3, test=2)
    dataset = load_dataset(f"folder:{tmp_path}")

    assert dataset.class_names == ("Bird", "cat", "dog")
    assert dataset.y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert dataset.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    assert dataset.x_train.shape == (9, 8, 8, 3)
    assert dataset.source["layout"] == "train/test"
    # train/cat/001.png is class 1, image 1: channel 1 is 40 + 7 and channel 2 is 255 - 47.
    assert dataset.x_train[4, 0, 0].tolist() == [0, 47, 208]


def test_folder_split_options_ignored_with_test_folder(tmp_path, caplog):
    write_split_folder(tmp_path, train=3, test=2)
    with caplog.at_level(logging.WARNING, logger="compute.datasets.folder"):
        with_options = load_dataset(f"folder:{tmp_path}?test_fraction=0.5&seed=3")
    plain = load_dataset(f"folder:{tmp_path}")

    assert with_options.fingerprint() == plain.fingerprint()
    assert f"{tmp_path} has train/ and test/ folders, so its split options" in caplog.text


def test_folder_grayscale_one_channel(tmp_path):
    write_split_folder(tmp_path, color=False)
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.x_train.shape == (9, 8, 8, 1)
    assert dataset.source["channels"] == 1
    assert dataset.x_train[4, 0, 0, 0] == 47


def test_folder_mixed_gray_and_rgb(tmp_path):
    write_split_folder(tmp_path, color=False)
    save_image(tmp_path / "test" / "cat" / "color.png", np.full((8, 8, 3), [9, 8, 7], np.uint8))
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.x_train.shape == (9, 8, 8, 3)
    assert dataset.x_train[4, 0, 0].tolist() == [47, 47, 47]
    assert dataset.x_test[4, 0, 0].tolist() == [9, 8, 7]


def test_folder_16bit_png_scaled(tmp_path):
    write_split_folder(tmp_path, color=False)
    wide = np.array([[0, 1000], [30000, 65535]], np.uint16).repeat(4, axis=0).repeat(4, axis=1)
    path = save_image(tmp_path / "train" / "cat" / "wide.png", wide)
    assert Image.open(path).mode == "I;16"

    dataset = load_dataset(f"folder:{tmp_path}")
    image = dataset.x_train[6, :, :, 0]
    # round(v * 255 / 65535): 1000 -> 3.89 -> 4 and 30000 -> 116.7 -> 117.
    assert image[::4, ::4].tolist() == [[0, 4], [117, 255]]
    assert dataset.source["channels"] == 1


def test_folder_rgba_over_black(tmp_path):
    write_split_folder(tmp_path)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[0, 0] = [200, 100, 50, 128]
    rgba[0, 1] = [200, 100, 50, 255]
    rgba[0, 2] = [200, 100, 50, 0]
    save_image(tmp_path / "train" / "dog" / "alpha.png", rgba)

    dataset = load_dataset(f"folder:{tmp_path}")
    image = dataset.x_train[9]
    # round(value * alpha / 255): 200 * 128 / 255 = 100.4 -> 100.
    assert image[0, 0].tolist() == [100, 50, 25]
    assert image[0, 1].tolist() == [200, 100, 50]
    assert image[0, 2].tolist() == [0, 0, 0]


def test_folder_gray_alpha_stays_gray(tmp_path):
    write_split_folder(tmp_path, color=False)
    gray_alpha = np.zeros((8, 8, 2), np.uint8)
    gray_alpha[..., 0] = 200
    gray_alpha[..., 1] = 51
    save_image(tmp_path / "train" / "dog" / "gray_alpha.png", gray_alpha, "LA")
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.source["channels"] == 1
    assert dataset.x_train[9, 0, 0, 0] == 40


def test_folder_palette_images(tmp_path):
    write_split_folder(tmp_path)
    indices = np.zeros((8, 8), np.uint8)
    indices[0, 1] = 1
    palette = [10, 20, 30, 200, 0, 0] + [0] * 762
    plain = Image.fromarray(indices, "P")
    plain.putpalette(palette)
    (tmp_path / "train" / "dog" / "palette.png").parent.mkdir(parents=True, exist_ok=True)
    plain.save(tmp_path / "train" / "dog" / "palette.png")
    plain.save(tmp_path / "train" / "dog" / "transparent.png", transparency=1)

    dataset = load_dataset(f"folder:{tmp_path}")
    opaque, transparent = dataset.x_train[9], dataset.x_train[10]
    assert opaque[0, 0].tolist() == [10, 20, 30]
    assert opaque[0, 1].tolist() == [200, 0, 0]
    assert transparent[0, 0].tolist() == [10, 20, 30]
    assert transparent[0, 1].tolist() == [0, 0, 0]


def test_folder_resized_to_most_common(tmp_path):
    write_split_folder(tmp_path)
    save_image(tmp_path / "train" / "dog" / "small.png", np.full((4, 6, 3), [50, 60, 70], np.uint8))
    save_image(tmp_path / "test" / "cat" / "large.jpg", np.full((20, 10, 3), 90, np.uint8),
               quality=100)

    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.x_train.shape == (10, 8, 8, 3)
    assert dataset.source["image_size"] == [8, 8]
    assert dataset.source["resized_images"] == 2
    # A solid color stays the same color under bilinear resampling.
    assert np.all(dataset.x_train[9] == [50, 60, 70])


def test_folder_size_option(tmp_path):
    write_split_folder(tmp_path)
    dataset = load_dataset(f"folder:{tmp_path}?size=4x5")
    assert dataset.x_train.shape == (9, 4, 5, 3)
    assert dataset.source["resized_images"] == 15


def test_folder_bad_files_listed_together(tmp_path):
    write_split_folder(tmp_path)
    truncated = save_image(tmp_path / "train" / "cat" / "truncated.png", noise((32, 32, 3)))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "test" / "dog" / "empty.jpg").write_bytes(b"")

    with pytest.raises(DatasetError) as caught:
        load_dataset(f"folder:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path}: 2 of 17 image files cannot be read:\n"
        "  train/cat/truncated.png: OSError: Truncated File Read\n"
        "  test/dog/empty.jpg: empty file (0 bytes)\n"
        "fix or remove them, or add ?skip_bad_files=1 to the dataset spec (or pass "
        "--skip-bad-files) to leave them out"
    )


def test_folder_skip_bad_files_recorded(tmp_path):
    write_split_folder(tmp_path)
    (tmp_path / "test" / "dog" / "empty.jpg").write_bytes(b"")
    (tmp_path / "train" / "cat" / "header.png").write_bytes(b"\x89PNG\r\n\x1a\n")

    dataset = load_dataset(f"folder:{tmp_path}?skip_bad_files=1")
    assert dataset.n_train == 9
    assert dataset.n_test == 6
    assert dataset.source["skipped_files"] == [
        {"file": "train/cat/header.png", "error": "not an image format that Pillow can read"},
        {"file": "test/dog/empty.jpg", "error": "empty file (0 bytes)"},
    ]


def test_folder_stratified_split(tmp_path):
    write_image_folder(tmp_path, {"a": 10, "b": 5, "c": 1})
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.source["layout"] == "split"
    assert dataset.source["test_fraction"] == 0.2
    assert dataset.source["split_seed"] == 0
    assert np.bincount(dataset.y_train, minlength=3).tolist() == [8, 4, 1]
    assert np.bincount(dataset.y_test, minlength=3).tolist() == [2, 1, 0]
    assert load_dataset(f"folder:{tmp_path}").fingerprint() == dataset.fingerprint()

    reseeded = load_dataset(f"folder:{tmp_path}?seed=5")
    assert reseeded.fingerprint() != dataset.fingerprint()
    halved = load_dataset(f"folder:{tmp_path}?test_fraction=0.5")
    assert np.bincount(halved.y_test, minlength=3).tolist() == [5, 2, 0]


def test_folder_train_only_is_split(tmp_path):
    write_image_folder(tmp_path / "train", {"a": 5, "b": 5})
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.class_names == ("a", "b")
    assert dataset.n_test == 2


def test_folder_ignored_and_hidden_files(tmp_path):
    write_split_folder(tmp_path)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("taken in 2019")
    (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"\0")
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.n_train == 9
    assert dataset.source["ignored_files"] == ["train/cat/notes.txt"]


def test_folder_test_without_train(tmp_path):
    write_image_folder(tmp_path / "test", {"a": 2})
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"folder:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path} has a test/ folder but no train/ folder; add train/CLASS/ folders "
        "beside it, or put the class folders directly in DIR for a seeded split"
    )


def test_folder_without_classes(tmp_path):
    save_image(tmp_path / "loose.png", noise((4, 4)))
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"folder:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path} has no class folders; put the images of each class in their own "
        "subfolder, DIR/CLASS/*.png or DIR/train/CLASS/*.png and DIR/test/CLASS/*.png"
    )


def test_folder_empty_test_split(tmp_path):
    write_image_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(DatasetError) as caught:
        load_dataset(f"folder:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path}: the test split has no readable images; add images, or for a folder "
        "without test/ raise test_fraction"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("skip_bad_files=maybe", "option skip_bad_files='maybe' must be 1 or 0 (true/false, yes/no)"),
        ("test_fraction=1.5", "option test_fraction='1.5' must be a number strictly between 0 and 1, such as 0.2"),
        ("size=32xwide", "option size='32xwide' must be HEIGHTxWIDTH in pixels, such as 32x32, or one number for a square"),
        ("seed=-1", "option seed='-1' must be a non-negative integer"),
    ],
    ids=["flag", "fraction", "size", "seed"],
)
def test_folder_invalid_option(tmp_path, option, message):
    spec = f"folder:{tmp_path}?{option}"
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    assert str(caught.value) == f"dataset spec {spec!r}: {message}"
