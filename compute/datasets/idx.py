"""MNIST-style IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...

An IDX file starts with a big-endian header: two zero bytes, a type byte (0x08
for unsigned bytes), the number of dimensions, then one 4-byte big-endian size
per dimension. The data follows in row-major order. Files are gunzipped when they
start with the gzip magic bytes, whatever their names are. Fashion-MNIST uses the
same file names and loads the same way.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from compute.datasets.dataset import Dataset, DatasetError
from compute.datasets.labels import encode_labels

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


def candidate_names(stem: str) -> list[str]:
    """Return the file names that the files of one stem go by, e.g. train-images-idx3-ubyte.

    Some copies name the files with a dot (train-images.idx3-ubyte) and some are
    gzipped with a .gz suffix.
    """
    dotted = stem.replace("-idx", ".idx")
    return [stem, f"{stem}.gz", dotted, f"{dotted}.gz"]


def find_file(folder: Path, stem: str) -> Path:
    for name in candidate_names(stem):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(
        f"{folder}: IDX file {stem} not found (looked for {', '.join(candidate_names(stem))}); "
        "pass the folder that contains the four MNIST files as mnist:DIR"
    )


def read_bytes(path: Path) -> bytes:
    """Return the file's content, gunzipped if it starts with the gzip magic bytes."""
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(
            f"{path} starts like a gzip file but does not decompress ({error}); "
            "download it again"
        ) from error


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file of `ndim` dimensions, checking its header."""
    data = read_bytes(path)
    header = data[:4]
    if len(data) < 4 or header[:2] != b"\x00\x00":
        raise DatasetError(
            f"{path}: header bytes {header.hex(' ')} are not an IDX magic number; "
            f"expected 00 00 08 {ndim:02x} (big-endian){_byte_swap_hint(header)}"
        )
    type_code, found_ndim = header[2], header[3]
    if type_code != UBYTE or found_ndim != ndim:
        raise DatasetError(
            f"{path}: magic number {header.hex(' ')} declares {found_ndim}-dimensional data "
            f"of type 0x{type_code:02x}; expected 00 00 08 {ndim:02x}, {ndim}-dimensional "
            f"unsigned bytes, as in the MNIST {'images' if ndim == 3 else 'labels'} file"
        )

    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DatasetError(
            f"{path} is {len(data)} bytes, too short for its {offset}-byte header; "
            "the file is truncated, so download it again"
        )
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = offset + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise DatasetError(
            f"{path} is {len(data)} bytes, but its header declares shape {shape}, which "
            f"needs {expected} bytes; the file is truncated or corrupt, so download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _byte_swap_hint(header: bytes) -> str:
    if len(header) == 4 and header[2:] == b"\x00\x00" and header[1] == UBYTE:
        return (
            "; the bytes are in reverse order, so the header was written little-endian: "
            "write it big-endian, e.g. with struct.pack('>HBB', 0, 8, ndim) and '>I' sizes"
        )
    return "; the file is not an IDX file"


def load_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    prefix = SPLIT_PREFIXES[split]
    image_path = find_file(folder, f"{prefix}-images-idx3-ubyte")
    label_path = find_file(folder, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(image_path, 3)
    labels = read_idx(label_path, 1)
    if len(images) != len(labels):
        raise DatasetError(
            f"{image_path.name} contains {len(images)} images but {label_path.name} contains "
            f"{len(labels)} labels (in {folder}); the files belong to different sets, so "
            "use the matching pair"
        )
    files = {f"{split}_images": image_path.name, f"{split}_labels": label_path.name}
    return images[..., None], labels.astype(np.int64), files


def load_mnist(path: str | Path) -> Dataset:
    """Load the four IDX files of an MNIST-format folder, in file order."""
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(
            f"MNIST folder {folder} not found; pass the folder that contains "
            "train-images-idx3-ubyte and the other three files as mnist:DIR"
        )
    x_train, y_train, train_files = load_split(folder, "train")
    x_test, y_test, test_files = load_split(folder, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{folder}: training images are {x_train.shape[1:3]} but test images are "
            f"{x_test.shape[1:3]}; use files of one dataset"
        )

    labels = encode_labels(str(folder), y_train, y_test)
    return Dataset(
        name="mnist",
        x_train=x_train,
        y_train=labels.y_train,
        x_test=x_test,
        y_test=labels.y_test,
        class_names=labels.class_names,
        source={
            "format": "mnist",
            "folder": str(folder.resolve()),
            "files": {**train_files, **test_files},
            **labels.source_entry(),
        },
    )
