"""Dataset options shared by the commands that load a dataset (estimate, import).

`--skip-bad-files` and `--layout` are added to the dataset spec itself, because a
run directory reloads its dataset from the spec in its manifest and must apply
the same options then.
"""

from __future__ import annotations

import argparse

from compute.datasets import absolute_spec, with_options
from compute.datasets.npz import LAYOUTS

DATASET_HELP = (
    "mnist5k, digits, cifar10:DIR, cifar100:DIR, mnist:DIR, folder:DIR or npz:PATH, "
    "optionally with loader options as in folder:DIR?skip_bad_files=1 (see docs/datasets.md)"
)


def add_dataset_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """Add --dataset, --skip-bad-files and --layout; default None makes --dataset required."""
    if default is None:
        parser.add_argument("--dataset", required=True, metavar="SPEC", help=DATASET_HELP)
    else:
        parser.add_argument("--dataset", default=default, metavar="SPEC",
                            help=f"{DATASET_HELP} (default: %(default)s)")
    parser.add_argument("--skip-bad-files", action="store_true",
                        help="folder datasets: leave out unreadable image files and record "
                        "them in the manifest, instead of stopping (adds ?skip_bad_files=1)")
    parser.add_argument("--layout", choices=LAYOUTS, default=None,
                        help="npz datasets: image axis order, for shapes such as (N, 3, 32, 3) "
                        "that fit more than one (adds ?layout=...)")


def dataset_spec(args: argparse.Namespace) -> str:
    """Return the --dataset spec with an absolute path and the options of the flags added.

    The flags are --skip-bad-files and --layout.
    """
    options = {}
    if args.skip_bad_files:
        options["skip_bad_files"] = "1"
    if args.layout is not None:
        options["layout"] = args.layout
    spec = with_options(args.dataset, **options) if options else args.dataset
    return absolute_spec(spec)
