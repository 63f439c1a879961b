"""Read an npz file of imported estimates, detect its format, and check its arrays."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compute.datasets.npz import truncated_zip_message

INFLUENCE_FORMAT = "influence-matrix"
PAIRS_FORMAT = "influence-pairs"
CONSISTENCY_FORMAT = "consistency"
TRIALS_FORMAT = "trials"

# The keys that identify each format; a file must contain all keys of exactly one.
FORMAT_KEYS = {
    INFLUENCE_FORMAT: ("tr_mem", "tr_labels", "tt_labels"),
    PAIRS_FORMAT: ("tr_idx", "tt_idx", "infl", "mem"),
    CONSISTENCY_FORMAT: ("labels", "scores"),
    TRIALS_FORMAT: ("mask", "train_correct", "test_correct"),
}


class ImportFileError(ValueError):
    """A file of imported estimates is invalid; the message names the file, key and fix."""


@dataclass
class EstimatesArchive:
    """The arrays of one npz file and the format their keys identify."""

    path: Path
    format: str
    arrays: dict[str, np.ndarray]

    def get(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise ImportFileError(
                f"{self.path}: key {key!r} is missing from this {self.format} file; "
                "docs/import.md lists the keys of each format"
            )
        return self.arrays[key]

    def index_array(self, key: str, size: int, split_name: str) -> np.ndarray:
        """Return a 1-D integer array whose values index `size` examples of `split_name`."""
        values = self.get(key)
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise ImportFileError(
                f"{self.path}: {key!r} must be a 1-D integer array of {split_name} indices, "
                f"found {values.dtype} with shape {values.shape}"
            )
        outside = (values < 0) | (values >= size)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise ImportFileError(
                f"{self.path}: {key}[{first}] is {values[first]}, but the dataset has {size} "
                f"{split_name} examples (indices 0..{size - 1}); the file was computed on "
                "another dataset, so pass the dataset it was computed on"
            )
        return values.astype(np.int64)

    def value_array(self, key: str, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
        """Return a float64 array of this shape whose finite values lie in [low, high].

        NaN marks a missing estimate and is kept. Infinite values raise.
        """
        values = self.get(key)
        if values.shape != shape or not (
            np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)
        ):
            raise ImportFileError(
                f"{self.path}: {key!r} must be a float array of shape {shape}, found "
                f"{values.dtype} with shape {values.shape}"
            )
        values = values.astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (values < low) | (values > high)
        if bad.any():
            first = np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape)
            where = ", ".join(str(int(index)) for index in first)
            raise ImportFileError(
                f"{self.path}: {key}[{where}] is {values[first]}, outside [{low:g}, {high:g}]; "
                "estimates of this kind cannot take that value, so check that the key holds "
                "what docs/import.md describes (NaN marks a missing estimate)"
            )
        return values

    def boolean_matrix(self, key: str, columns: int, split_name: str) -> np.ndarray:
        """Return a 2-D boolean array with `columns` columns; 0/1 integers are accepted."""
        values = self.get(key)
        if values.ndim != 2 or values.shape[1] != columns:
            raise ImportFileError(
                f"{self.path}: {key!r} must have shape (trials, {columns}), one column per "
                f"{split_name} example of the dataset, found shape {values.shape}"
            )
        if values.dtype == np.bool_:
            return values
        if np.issubdtype(values.dtype, np.integer) and np.isin(values, (0, 1)).all():
            return values.astype(bool)
        found = f"{values.dtype} values" if values.dtype.kind not in "iu" else "other integers"
        raise ImportFileError(
            f"{self.path}: {key!r} must be boolean or 0/1 integers, found {found}; save "
            "one True/False entry per trial and example"
        )


def open_archive(path: str | Path) -> EstimatesArchive:
    """Read every array of an npz file and detect its format from the keys."""
    path = Path(path)
    if path.is_dir():
        raise ImportFileError(f"estimates file {path} is a folder; pass the .npz file itself")
    if not path.is_file():
        raise ImportFileError(f"estimates file {path} not found")
    truncated = truncated_zip_message(path)
    if truncated:
        raise ImportFileError(truncated)
    if not zipfile.is_zipfile(path):
        # np.load would read a .npy file as one array.
        raise ImportFileError(
            f"{path} is not an .npz archive (not a zip file); save it with np.savez and "
            "numeric or fixed-width string arrays"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ImportFileError(
            f"{path} is not a readable .npz archive without pickled objects ({error}); "
            "save it with np.savez and numeric or fixed-width string arrays"
        ) from error

    matches = [name for name, keys in FORMAT_KEYS.items() if all(key in arrays for key in keys)]
    if len(matches) != 1:
        expected = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in FORMAT_KEYS.items())
        found = " and ".join(matches) if matches else "no format"
        raise ImportFileError(
            f"{path}: keys {sorted(arrays)} match {found}; an import file must contain the "
            f"keys of exactly one format ({expected})"
        )
    return EstimatesArchive(path=path, format=matches[0], arrays=arrays)
