"""CIFAR-10 and CIFAR-100 in the "python version" layout that their authors distribute.

CIFAR-10: `data_batch_1` .. `data_batch_5`, `test_batch` and `batches.meta`.
CIFAR-100: `train`, `test` and `meta`, with fine (100) and coarse (20) labels.
Each batch is a pickled dict whose `data` is uint8 of shape (N, 3072): the red,
green and blue 32x32 planes of one image per row. The distributed files were
written by Python 2's cPickle, so their keys and strings load as bytes. Keys are
decoded here, so either str or bytes keys are accepted.

Unpickling can run code, so batches are read with an unpickler that resolves only
the few globals that NumPy arrays need and rejects any other.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from compute.datasets.dataset import Dataset, DatasetError

CIFAR10_TRAIN = tuple(f"data_batch_{number}" for number in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_META = "batches.meta"
CIFAR100_TRAIN, CIFAR100_TEST, CIFAR100_META = "train", "test", "meta"
# Folder names inside the distributed archives, used to suggest the right DIR.
ARCHIVE_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
LABEL_KINDS = ("fine", "coarse")
SIDE = 32

# Globals that pickled NumPy arrays refer to, under the names that Python 2 and
# NumPy 1.x or 2.x write.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR batch"
            )
        return super().find_class(module, name)


def read_batch(path: Path) -> dict[str, object]:
    """Unpickle one batch file and return it with str keys."""
    if not path.is_file():
        raise DatasetError(f"CIFAR file {path} not found")
    try:
        with path.open("rb") as handle:
            # encoding="bytes" keeps Python 2 str objects (keys, names, and the raw
            # bytes inside pickled arrays) as bytes instead of decoding them as ASCII.
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, OSError) as error:
        raise DatasetError(
            f"{path} is not a readable CIFAR batch ({type(error).__name__}: {error}); "
            "use the files of the 'python version' archive, as extracted"
        ) from error
    if not isinstance(batch, dict):
        raise DatasetError(
            f"{path} contains a pickled {type(batch).__name__}, but a CIFAR batch is a dict; "
            "use the files of the 'python version' archive"
        )
    return {_text(key): value for key, value in batch.items()}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _field(path: Path, batch: dict, key: str):
    if key not in batch:
        raise DatasetError(
            f"{path} has no key {key!r} (found {sorted(batch)}); it is not a batch of "
            "this CIFAR variant, so check the dataset prefix and the folder"
        )
    return batch[key]


def _images(path: Path, batch: dict) -> np.ndarray:
    data = np.asarray(_field(path, batch, "data"))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise DatasetError(
            f"{path}: 'data' must be uint8 of shape (N, {3 * SIDE * SIDE}), found "
            f"{data.dtype} with shape {data.shape}; the file is not an original CIFAR batch"
        )
    # Each row is the red, then green, then blue 32x32 plane: (N, C, H, W) order.
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1).copy()


def _labels(path: Path, batch: dict, key: str, count: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(_field(path, batch, key))
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{path}: {key!r} must hold {count} integer labels, one per image, found "
            f"{labels.dtype} with shape {labels.shape}"
        )
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise DatasetError(
            f"{path}: {key!r}[{first}] is {labels[first]}, but there are {num_classes} "
            f"class names; labels must lie in 0..{num_classes - 1}"
        )
    return labels.astype(np.int64)


def _names(path: Path, meta: dict, key: str) -> tuple[str, ...]:
    names = _field(path, meta, key)
    if not isinstance(names, (list, tuple)) or not names:
        raise DatasetError(f"{path}: {key!r} must be a non-empty list of class names")
    return tuple(_text(name) for name in names)


def _check_folder(folder: Path, prefix: str, required: tuple[str, ...]) -> None:
    if not folder.is_dir():
        raise DatasetError(
            f"{prefix} folder {folder} not found; pass the extracted "
            f"'{ARCHIVE_FOLDERS[prefix]}' folder as {prefix}:DIR"
        )
    missing = [name for name in required if not (folder / name).is_file()]
    if not missing:
        return
    hint = f"pass the folder that contains them as {prefix}:DIR"
    nested = folder / ARCHIVE_FOLDERS[prefix]
    if nested.is_dir():
        hint = f"they are probably in {nested}, so pass {prefix}:{nested}"
    raise DatasetError(f"{folder}: missing CIFAR files {missing}; {hint}")


def load_cifar10(path: str | Path) -> Dataset:
    """Load CIFAR-10 in file order: training batches 1 to 5, then the test batch."""
    folder = Path(path)
    _check_folder(folder, "cifar10", (*CIFAR10_TRAIN, CIFAR10_TEST, CIFAR10_META))
    class_names = _names(folder / CIFAR10_META, read_batch(folder / CIFAR10_META), "label_names")

    splits = {}
    for split, files in (("train", CIFAR10_TRAIN), ("test", (CIFAR10_TEST,))):
        images, labels = [], []
        for name in files:
            batch = read_batch(folder / name)
            images.append(_images(folder / name, batch))
            labels.append(
                _labels(folder / name, batch, "labels", len(images[-1]), len(class_names))
            )
        splits[split] = (np.concatenate(images), np.concatenate(labels))

    return Dataset(
        name="cifar10",
        x_train=splits["train"][0],
        y_train=splits["train"][1],
        x_test=splits["test"][0],
        y_test=splits["test"][1],
        class_names=class_names,
        source={"format": "cifar10", "folder": str(folder.resolve())},
    )


def load_cifar100(path: str | Path, labels: str = "fine") -> Dataset:
    """Load CIFAR-100 in file order with its fine (100) or coarse (20) labels."""
    if labels not in LABEL_KINDS:
        raise DatasetError(
            f"invalid CIFAR-100 option labels={labels!r}; expected labels=fine or labels=coarse"
        )
    folder = Path(path)
    _check_folder(folder, "cifar100", (CIFAR100_TRAIN, CIFAR100_TEST, CIFAR100_META))
    meta = read_batch(folder / CIFAR100_META)
    class_names = _names(folder / CIFAR100_META, meta, f"{labels}_label_names")

    splits = {}
    for split in (CIFAR100_TRAIN, CIFAR100_TEST):
        batch = read_batch(folder / split)
        images = _images(folder / split, batch)
        key = f"{labels}_labels"
        splits[split] = (images, _labels(folder / split, batch, key, len(images), len(class_names)))

    return Dataset(
        name="cifar100" if labels == "fine" else "cifar100-coarse",
        x_train=splits[CIFAR100_TRAIN][0],
        y_train=splits[CIFAR100_TRAIN][1],
        x_test=splits[CIFAR100_TEST][0],
        y_test=splits[CIFAR100_TEST][1],
        class_names=class_names,
        source={"format": "cifar100", "folder": str(folder.resolve()), "labels": labels},
    )
