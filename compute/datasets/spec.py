"""Dataset spec strings: `NAME`, `PREFIX:PATH` or `PREFIX:PATH?KEY=VALUE&KEY=VALUE`.

A run's manifest stores the spec, and reloading the run parses it again. Loader
options therefore belong in the spec itself, so that a reload applies them too.
The first `?` in a spec starts its options, so a path cannot contain `?`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from compute.datasets.dataset import DatasetError

TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("0", "false", "no")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed spec: the prefix (or built-in name), the path and the options."""

    prefix: str
    path: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_spec(self.prefix, self.path, self.options)


def parse_spec(spec: str) -> DatasetSpec:
    """Split a spec into prefix, path and options; a bare name has no path."""
    if not isinstance(spec, str):
        raise TypeError(f"dataset spec must be a str, found {type(spec).__name__}")
    head, question, query = spec.partition("?")
    prefix, colon, path = head.partition(":")
    if not colon:
        if question:
            raise DatasetError(
                f"dataset spec {spec!r}: options after '?' need a PREFIX:PATH spec, "
                "such as folder:DIR?skip_bad_files=1"
            )
        return DatasetSpec(prefix=head)

    options: dict[str, str] = {}
    if question:
        for item in query.split("&"):
            key, equals, value = item.partition("=")
            if not key or not equals or not value:
                raise DatasetError(
                    f"dataset spec {spec!r}: option {item!r} is not KEY=VALUE; "
                    "separate options with '&', as in folder:DIR?skip_bad_files=1&seed=3"
                )
            if key in options:
                raise DatasetError(f"dataset spec {spec!r}: option {key!r} is given twice")
            options[key] = value
    return DatasetSpec(prefix=prefix, path=path, options=options)


def format_spec(prefix: str, path: str = "", options: dict[str, str] | None = None) -> str:
    """Build a spec string; options are written in sorted order of their keys."""
    if not path:
        return prefix
    text = f"{prefix}:{path}"
    if options:
        text += "?" + "&".join(f"{key}={options[key]}" for key in sorted(options))
    return text


def absolute_spec(spec: str) -> str:
    """Return the spec with a relative path made absolute against the working folder.

    A run stores its spec and reads its data again from it, for instance when
    `longtail load` runs from another folder.
    """
    parsed = parse_spec(spec)
    if not parsed.path or os.path.isabs(parsed.path):
        return spec
    return format_spec(parsed.prefix, os.path.abspath(parsed.path), parsed.options)


def with_options(spec: str, **options: str) -> str:
    """Return the spec with the given options added; a conflicting value raises."""
    parsed = parse_spec(spec)
    if not parsed.path:
        raise DatasetError(
            f"dataset {spec!r} is built in and takes no options (requested: "
            f"{', '.join(sorted(options))}); options apply to PREFIX:PATH datasets such as "
            "folder:DIR or npz:PATH"
        )
    merged = dict(parsed.options)
    for key, value in options.items():
        if key in merged and merged[key] != value:
            raise DatasetError(
                f"dataset spec {spec!r} sets {key}={merged[key]}, but the command line asks "
                f"for {key}={value}; give the option in one place"
            )
        merged[key] = value
    return format_spec(parsed.prefix, parsed.path, merged)


def parse_flag(spec: str, key: str, value: str) -> bool:
    """Return an on/off option's value: 1/true/yes or 0/false/no."""
    lowered = value.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise DatasetError(
        f"dataset spec {spec!r}: option {key}={value!r} must be 1 or 0 (true/false, yes/no)"
    )


def parse_fraction(spec: str, key: str, value: str) -> float:
    """Return a fraction strictly between 0 and 1."""
    try:
        fraction = float(value)
    except ValueError:
        fraction = float("nan")
    if not 0.0 < fraction < 1.0:
        raise DatasetError(
            f"dataset spec {spec!r}: option {key}={value!r} must be a number strictly "
            "between 0 and 1, such as 0.2"
        )
    return fraction


def parse_seed(spec: str, key: str, value: str) -> int:
    """Return a non-negative integer seed."""
    if not value.isdigit():
        raise DatasetError(
            f"dataset spec {spec!r}: option {key}={value!r} must be a non-negative integer"
        )
    return int(value)


def parse_size(spec: str, key: str, value: str) -> tuple[int, int]:
    """Return (height, width) from HEIGHTxWIDTH, or from one number for a square."""
    parts = value.lower().split("x")
    if len(parts) not in (1, 2) or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise DatasetError(
            f"dataset spec {spec!r}: option {key}={value!r} must be HEIGHTxWIDTH in pixels, "
            "such as 32x32, or one number for a square"
        )
    height = int(parts[0])
    width = int(parts[-1])
    return height, width


def choice_parser(*choices: str):
    """Return a parser that accepts one of `choices`, compared in lower case."""

    def parse(spec: str, key: str, value: str) -> str:
        if value.lower() not in choices:
            raise DatasetError(
                f"dataset spec {spec!r}: option {key}={value!r} must be one of "
                f"{', '.join(choices)}"
            )
        return value.lower()

    return parse
