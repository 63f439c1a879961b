"""Builders of small dataset files in the formats researchers bring, written inside tests.

Nothing is downloaded: each builder writes real files of the format, with
deterministic content, into a folder the test owns.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")


class Python2Pickler(pickle._Pickler):
    """Write bytes as Python 2 `str` objects (BINSTRING opcodes), as cPickle did.

    Python 3 pickles bytes at protocol 2 as calls to _codecs.encode instead; real
    CIFAR files contain BINSTRING, which Python 3 only reads with an `encoding`.
    """

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def python2_pickle(obj) -> bytes:
    """Pickle at protocol 2 the way Python 2 with NumPy 1.x wrote it."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    # NumPy 2 names its module numpy._core; NumPy 1.x under Python 2 wrote numpy.core.
    return buffer.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def cifar_rows(count: int, seed: int) -> np.ndarray:
    """Random CIFAR rows: uint8 (count, 3072), the R, G and B planes of 32x32 images."""
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def write_cifar10(folder: Path, per_batch: int = 4, test: int = 6, python2: bool = True) -> dict:
    """Write the six CIFAR-10 batches and batches.meta; return the rows and labels written.

    With python2, keys and strings are bytes and the files are Python 2 pickles.
    Otherwise keys are str and the files are Python 3 pickles at protocol 4.
    """
    folder.mkdir(parents=True, exist_ok=True)

    def key(text: str):
        return text.encode() if python2 else text

    def dump(name: str, obj) -> None:
        data = python2_pickle(obj) if python2 else pickle.dumps(obj, protocol=4)
        (folder / name).write_bytes(data)

    written = {"train_rows": [], "train_labels": []}
    for number in range(1, 6):
        rows = cifar_rows(per_batch, seed=number)
        labels = [(number + index) % 10 for index in range(per_batch)]
        dump(f"data_batch_{number}", {
            key("batch_label"): key(f"training batch {number} of 5"),
            key("labels"): labels,
            key("data"): rows,
            key("filenames"): [key(f"image_{number}_{index}.png") for index in range(per_batch)],
        })
        written["train_rows"].append(rows)
        written["train_labels"].extend(labels)
    test_rows = cifar_rows(test, seed=99)
    test_labels = [index % 10 for index in range(test)]
    dump("test_batch", {key("batch_label"): key("testing batch 1 of 1"),
                        key("labels"): test_labels, key("data"): test_rows})
    dump("batches.meta", {key("label_names"): [key(name) for name in CIFAR10_NAMES],
                          key("num_cases_per_batch"): per_batch, key("num_vis"): 3072})
    written["train_rows"] = np.concatenate(written["train_rows"])
    written["test_rows"] = test_rows
    written["test_labels"] = test_labels
    return written


def write_cifar100(folder: Path, train: int = 10, test: int = 5) -> dict:
    """Write CIFAR-100's train, test and meta as Python 2 pickles with bytes keys."""
    folder.mkdir(parents=True, exist_ok=True)
    fine_names = [f"fine{index:02d}".encode() for index in range(100)]
    coarse_names = [f"coarse{index:02d}".encode() for index in range(20)]
    written = {}
    for split, count, seed in (("train", train, 1), ("test", test, 2)):
        fine = [(7 * index + seed) % 100 for index in range(count)]
        coarse = [label // 5 for label in fine]
        rows = cifar_rows(count, seed)
        (folder / split).write_bytes(python2_pickle({
            b"filenames": [f"{split}_{index}.png".encode() for index in range(count)],
            b"batch_label": split.encode(),
            b"fine_labels": fine,
            b"coarse_labels": coarse,
            b"data": rows,
        }))
        written[split] = {"rows": rows, "fine": fine, "coarse": coarse}
    (folder / "meta").write_bytes(python2_pickle(
        {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names}
    ))
    return written


def idx_bytes(array: np.ndarray, little_endian: bool = False) -> bytes:
    """Return an unsigned-byte IDX file of `array`; little_endian writes a wrong header."""
    order = "<" if little_endian else ">"
    # The magic number is 0x0000_08_DD: two zero bytes, type 0x08 (uint8), DD dimensions.
    header = struct.pack(f"{order}I", 0x0800 | array.ndim)
    sizes = struct.pack(f"{order}{array.ndim}I", *array.shape)
    return header + sizes + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_mnist(
    folder: Path, train: int = 20, test: int = 10, side: int = 6, gzip_names: bool = False
) -> dict:
    """Write the four MNIST IDX files, gzipped without a .gz suffix; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(test)[::-1] % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(array), mtime=0))
    return arrays


def save_image(path: Path, pixels: np.ndarray, mode: str | None = None, **save_options) -> Path:
    """Save pixels as an image file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels, mode) if mode else Image.fromarray(pixels)
    image.save(path, **save_options)
    return path


def write_image_folder(root: Path, classes: dict[str, int], side: int = 8, color=True) -> None:
    """Write `count` PNG images per class under root/CLASS/, each a distinct solid color."""
    for label, (name, count) in enumerate(sorted(classes.items())):
        for index in range(count):
            value = (40 * label + 7 * index) % 256
            if color:
                pixels = np.zeros((side, side, 3), np.uint8)
                pixels[..., label % 3] = value
                pixels[..., (label + 1) % 3] = 255 - value
            else:
                pixels = np.full((side, side), value, np.uint8)
            save_image(root / name / f"{index:03d}.png", pixels)
