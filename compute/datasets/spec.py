"""Dataset spec strings: `NAME`, `PREFIX:PATH` or `PREFIX:PATH?KEY=VALUE&KEY=VALUE`.

A run's manifest stores the spec, and reloading the run parses it again. Loader
options therefore belong in the spec itself, so that a reload applies them too.
The first `?` in a spec starts its options, so a path cannot contain `?`.
"""

from __future__ import annotations

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


def with_options(spec: str, **options: str) -> str:
    """Return the spec with the given options added; a conflicting value raises."""
    parsed = parse_spec(spec)
    if not parsed.path:
        raise DatasetError(
            f"dataset {spec!r} takes no options; {', '.join(sorted(options))} apply to "
            "PREFIX:PATH datasets such as folder:DIR or npz:PATH"
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
