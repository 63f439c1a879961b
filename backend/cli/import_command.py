"""`longtail import`: store estimates or trial outcomes computed elsewhere."""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
from pathlib import Path

from backend.cli.dataset_options import add_dataset_options, dataset_spec
from backend.cli.load_command import (
    add_database_option,
    add_load_options,
    check_name_free,
    load_into_database,
)
from backend.store.load import check_influence_floor, check_run_name, check_top_k
from compute.imports import DEFAULT_SUBSET_RATIO, EXTERNAL_MODEL, ImportFileError, import_run
from compute.rundir import RunDir, RunDirError

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="store estimates or trial outcomes computed elsewhere",
        description="Check an .npz file of estimates (influence matrices by class, "
        "high-influence pairs, consistency scores) or of trial outcomes (membership mask "
        "and correctness) against the dataset, write it as a run directory, and load "
        "that into the database. The file's labels must match the dataset's in length "
        "and order, else nothing is written. See docs/import.md for the formats.",
    )
    parser.add_argument("file", metavar="FILE", help=".npz file to import")
    add_dataset_options(parser, default=None)
    parser.add_argument("--name", required=True, help="run name in the database")
    add_database_option(parser)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run directory to write (default: runs/imported/NAME)")
    parser.add_argument("--model", default=EXTERNAL_MODEL,
                        help="name of the model the file was computed with, stored for "
                        "display (default: %(default)s)")
    parser.add_argument("--subset-ratio", type=float, default=DEFAULT_SUBSET_RATIO,
                        help="subset ratio the imported estimates were computed with, stored "
                        "for display; trial files give their own (default: %(default)s)")
    add_load_options(parser)
    parser.set_defaults(run=run)


def default_out(name: str) -> Path:
    """Return runs/imported/NAME, one folder per name.

    Characters other than letters, digits and '.-_' become '_', and a name that
    needed that gets a short hash of itself, so that 'a b' and 'a_b' differ.
    """
    folder = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if folder != name:
        folder += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return Path("runs") / "imported" / folder


def run(args: argparse.Namespace) -> int:
    spec = dataset_spec(args)
    # Every check of the command line runs before the import writes anything.
    check_run_name(args.name)
    check_influence_floor(args.influence_floor)
    check_top_k(args.top_k)
    out = Path(args.out) if args.out is not None else default_out(args.name)
    _check_out_free(out, args)
    check_name_free(args.db, None if args.replace else args.name,
                    "pass --replace to import it again, or another --name")

    imported, file_format = import_run(
        args.file, spec, out, model=args.model, subset_ratio=args.subset_ratio
    )
    print(f"imported {file_format} file {args.file} as run directory {imported.path}")
    load_into_database(
        str(imported.path), args.db, name=args.name, replace=args.replace,
        influence_floor=args.influence_floor, top_k=args.top_k,
    )
    return 0


def _check_out_free(out: Path, args: argparse.Namespace) -> None:
    """Raise ImportFileError if `out` exists and is not an empty folder, with what to do."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    try:
        manifest = RunDir(out).read_manifest() if out.is_dir() else {}
    except (RunDirError, OSError, ValueError):
        manifest = {}
    if manifest.get("complete"):
        command = f"longtail load {out} --db {args.db} --name {args.name}"
        advice = (
            f"it contains a finished run, which '{command}"
            f"{' --replace' if args.replace else ''}' stores without importing again; "
            "or pass a new --out directory"
        )
    elif "imported" in manifest:
        advice = ("it contains an unfinished import, as an interrupted import leaves it; "
                  "delete the folder and run the command again, or pass a new --out directory")
    else:
        advice = "an import writes a new or empty folder, so pass a new --out directory"
    raise ImportFileError(f"{out} already exists and is not an empty folder; {advice}")
