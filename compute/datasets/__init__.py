"""Dataset loaders; `load_dataset(spec)` turns a spec string into a Dataset.

A spec is a built-in name (`mnist5k`, `digits`) or `PREFIX:PATH`, optionally
followed by `?KEY=VALUE&KEY=VALUE` loader options; docs/datasets.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from compute.datasets.builtin import load_digits, load_mnist5k
from compute.datasets.cifar import LABEL_KINDS, load_cifar10, load_cifar100
from compute.datasets.dataset import Dataset, DatasetError, stratified_split
from compute.datasets.folder import load_folder
from compute.datasets.idx import load_mnist
from compute.datasets.npz import LAYOUTS, load_npz
from compute.datasets.spec import (
    DatasetSpec,
    absolute_spec,
    choice_parser,
    format_spec,
    parse_flag,
    parse_fraction,
    parse_seed,
    parse_size,
    parse_spec,
    with_options,
)

# An option parser turns (spec, key, text value) into the loader's keyword argument.
OptionParser = Callable[[str, str, str], object]


@dataclass(frozen=True)
class DatasetFormat:
    """A loader for PREFIX:PATH specs and the options it accepts."""

    load: Callable[..., Dataset]
    usage: str
    options: dict[str, OptionParser] = field(default_factory=dict)


BUILTIN = {"mnist5k": load_mnist5k, "digits": load_digits}
PREFIXED = {
    "cifar10": DatasetFormat(load_cifar10, "cifar10:DIR"),
    "cifar100": DatasetFormat(
        load_cifar100, "cifar100:DIR", {"labels": choice_parser(*LABEL_KINDS)}
    ),
    "folder": DatasetFormat(
        load_folder,
        "folder:DIR",
        {
            "skip_bad_files": parse_flag,
            "test_fraction": parse_fraction,
            "seed": parse_seed,
            "size": parse_size,
        },
    ),
    "mnist": DatasetFormat(load_mnist, "mnist:DIR"),
    "npz": DatasetFormat(load_npz, "npz:PATH", {"layout": choice_parser(*LAYOUTS)}),
}


def load_dataset(spec: str) -> Dataset:
    """Load a dataset from a spec: a built-in name, or PREFIX:PATH[?OPTIONS]."""
    parsed = parse_spec(spec)
    if spec == parsed.prefix and parsed.prefix in BUILTIN:
        return BUILTIN[parsed.prefix]()
    if ":" not in spec or parsed.prefix not in PREFIXED:
        choices = sorted(BUILTIN) + [PREFIXED[prefix].usage for prefix in sorted(PREFIXED)]
        raise DatasetError(f"unknown dataset {spec!r}; expected one of {', '.join(choices)}")
    if not parsed.path:
        usage = PREFIXED[parsed.prefix].usage
        raise DatasetError(f"dataset spec {spec!r} is missing a path; expected {usage}")

    dataset_format = PREFIXED[parsed.prefix]
    unknown = sorted(set(parsed.options) - set(dataset_format.options))
    if unknown:
        accepted = ", ".join(sorted(dataset_format.options)) or "none"
        raise DatasetError(
            f"dataset spec {spec!r}: unknown option {unknown[0]!r}; "
            f"{parsed.prefix} accepts: {accepted}"
        )
    options = {
        key: dataset_format.options[key](spec, key, value)
        for key, value in parsed.options.items()
    }
    return dataset_format.load(parsed.path, **options)


__all__ = [
    "Dataset", "DatasetError", "DatasetFormat", "DatasetSpec", "absolute_spec", "format_spec",
    "load_dataset",
    "parse_spec", "stratified_split", "with_options",
]
