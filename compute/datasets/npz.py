"""Load a dataset from a NumPy archive with x_train, y_train, x_test and y_test.

Images may be laid out (N, H, W), (N, H, W, C) or (N, C, H, W). A 4-D shape is
read as NHWC when its last axis has 1 or 3 entries and as NCHW when its second
axis has; a shape that fits both, such as (N, 3, 32, 3), or neither, such as
(N, 32, 32, 2), needs the `layout` option (nhw, nhwc or nchw).

Pixels: uint8 is kept, uint16 is scaled to 0..255 (round(v * 255 / 65535)),
floats must be finite and in [0, 1] and are scaled by 255 and rounded. Any other
dtype is rejected. Labels go through `compute.datasets.labels`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from compute.datasets.dataset import Dataset, DatasetError
from compute.datasets.labels import encode_labels, label_values

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")
LAYOUTS = ("nhw", "nhwc", "nchw")
# Channel counts that identify the channel axis of an image array without a layout.
CHANNEL_COUNTS = (1, 3)


def truncated_zip_message(path: Path) -> str | None:
    """Return an error message if a file begins like a zip archive but lacks its end, else None."""
    with open(path, "rb") as handle:
        start = handle.read(4)
    if start != b"PK\x03\x04" or zipfile.is_zipfile(path):
        return None
    return (
        f"{path} starts as a zip archive but its end is missing: the file is truncated or "
        "damaged, so copy or save it again"
    )


def check_layout(layout: str | None) -> str | None:
    """Return the layout in lower case, or raise if it is not nhw, nhwc or nchw."""
    if layout is None:
        return None
    if layout.lower() not in LAYOUTS:
        raise DatasetError(
            f"invalid image layout {layout!r}; expected one of {', '.join(LAYOUTS)}"
        )
    return layout.lower()


def detect_layout(where: str, key: str, shape: tuple[int, ...], layout: str | None) -> str:
    """Return the layout of an image array of this shape, or raise if it is ambiguous."""
    if layout is not None:
        expected_ndim = 3 if layout == "nhw" else 4
        if len(shape) != expected_ndim:
            raise DatasetError(
                f"{where}: '{key}' has shape {shape}, which does not match layout "
                f"{layout} ({expected_ndim} axes); pass the layout the array was saved with"
            )
        return layout
    if len(shape) == 3:
        return "nhw"
    if len(shape) != 4:
        raise DatasetError(
            f"{where}: '{key}' must have shape (N, H, W), (N, H, W, C) or (N, C, H, W), "
            f"found {shape}; save images with one example per row of the first axis"
        )

    channels_last = shape[3] in CHANNEL_COUNTS
    channels_first = shape[1] in CHANNEL_COUNTS
    if channels_last and not channels_first:
        return "nhwc"
    if channels_first and not channels_last:
        return "nchw"
    if channels_last:
        reason = "both its second and its last axis could hold the channels"
    else:
        reason = "neither its second nor its last axis has 1 or 3 entries"
    raise DatasetError(
        f"{where}: cannot tell the channel axis of '{key}' with shape {shape}: {reason}; "
        "add ?layout=nhwc (channels last) or ?layout=nchw (channels first) to the dataset "
        "spec, or pass --layout"
    )


def to_nhwc(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "nhw":
        return array[..., None]
    if layout == "nchw":
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1))
    return array


def to_uint8(where: str, key: str, array: np.ndarray) -> np.ndarray:
    """Return pixels as uint8: uint16 and [0, 1] floats are scaled, other dtypes raise."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        # Exact integer rounding of v * 255 / 65535, without a float copy.
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array).all(axis=tuple(range(1, array.ndim)))
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise DatasetError(
                f"{where}: '{key}' contains NaN or infinite pixels, first in example {bad}; "
                "replace them before saving"
            )
        if array.size and (array.min() < 0 or array.max() > 1):
            raise DatasetError(
                f"{where}: float '{key}' must lie in [0, 1], found values from "
                f"{array.min()} to {array.max()}; divide by the maximum or save uint8"
            )
        return np.round(array * 255).astype(np.uint8)
    raise DatasetError(
        f"{where}: '{key}' has dtype {array.dtype}; save uint8 pixels, uint16 pixels or "
        "floats in [0, 1] (for integers already in 0..255, use x.astype(np.uint8))"
    )


def _images(path: Path, key: str, array: np.ndarray, layout: str | None) -> np.ndarray:
    layout = detect_layout(str(path), key, array.shape, layout)
    return to_uint8(str(path), key, to_nhwc(array, layout))


def _labels(path: Path, key: str, array: np.ndarray, count: int) -> np.ndarray:
    labels = label_values(str(path), key, array)
    if len(labels) != count:
        image_key = key.replace("y_", "x_")
        raise DatasetError(
            f"{path}: '{key}' has {len(labels)} labels but '{image_key}' has {count} images; "
            "save one label per image"
        )
    return labels


def _read(archive, path: Path, key: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as error:
        # np.load refuses object arrays without allow_pickle, and pickles can run code.
        raise DatasetError(
            f"{path}: '{key}' is an object array, which only pickle can read ({error}); "
            "save numbers or fixed-width strings, e.g. np.array(labels, dtype=str)"
        ) from error


def load_npz(path: str | Path, layout: str | None = None) -> Dataset:
    """Load and validate an npz dataset; every problem raises DatasetError naming the key.

    `layout` (nhw, nhwc or nchw) overrides the detection of the image layout.
    """
    path = Path(path)
    layout = check_layout(layout)
    if path.is_dir():
        raise DatasetError(f"npz dataset {path} is a folder; pass the .npz file as npz:PATH")
    if not path.is_file():
        raise DatasetError(f"npz dataset {path} not found; pass an existing file as npz:PATH")
    truncated = truncated_zip_message(path)
    if truncated:
        raise DatasetError(truncated)
    if not zipfile.is_zipfile(path):
        # np.load would read a .npy file as one array, and for other files it
        # reports pickled data, which misleads.
        raise DatasetError(
            f"{path} is not an .npz archive (not a zip file); save the splits with "
            "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
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
        x_train = _images(path, "x_train", _read(archive, path, "x_train"), layout)
        x_test = _images(path, "x_test", _read(archive, path, "x_test"), layout)
        y_train = _labels(path, "y_train", _read(archive, path, "y_train"), len(x_train))
        y_test = _labels(path, "y_test", _read(archive, path, "y_test"), len(x_test))
        class_names = None
        if "class_names" in archive.files:
            class_names = tuple(str(name) for name in _read(archive, path, "class_names"))

    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{path}: 'x_train' images have shape {x_train.shape[1:]} but 'x_test' images "
            f"have {x_test.shape[1:]}; save both splits at one size"
        )
    labels = encode_labels(str(path), y_train, y_test, class_names)
    source = {"file": str(path.resolve())}
    if layout is not None:
        source["layout"] = layout
    source.update(labels.source_entry())
    return Dataset(
        name=path.stem,
        x_train=x_train,
        y_train=labels.y_train,
        x_test=x_test,
        y_test=labels.y_test,
        class_names=labels.class_names,
        source=source,
    )
