"""Dataset loaders; `load_dataset(spec)` turns a spec string into a Dataset."""

from __future__ import annotations

from compute.datasets.builtin import load_digits, load_mnist5k
from compute.datasets.dataset import Dataset, DatasetError, stratified_split
from compute.datasets.npz import load_npz

BUILTIN = {"mnist5k": load_mnist5k, "digits": load_digits}
PREFIXED = {"npz": load_npz}


def load_dataset(spec: str) -> Dataset:
    """Load a dataset from a spec: a built-in name, or PREFIX:PATH."""
    if spec in BUILTIN:
        return BUILTIN[spec]()
    prefix, colon, rest = spec.partition(":")
    if colon and prefix in PREFIXED:
        if not rest:
            raise DatasetError(f"dataset spec {spec!r} is missing a path after '{prefix}:'")
        return PREFIXED[prefix](rest)
    choices = sorted(BUILTIN) + [f"{prefix}:PATH" for prefix in sorted(PREFIXED)]
    raise DatasetError(f"unknown dataset {spec!r}; expected one of {', '.join(choices)}")


__all__ = ["Dataset", "DatasetError", "load_dataset", "stratified_split"]
