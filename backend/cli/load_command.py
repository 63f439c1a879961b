"""`longtail load`: store a finished run directory in the database."""

from __future__ import annotations

import argparse
import logging

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from backend.store.database import DEFAULT_URL, describe_url, open_database
from backend.store.load import (
    DEFAULT_INFLUENCE_FLOOR,
    DEFAULT_TOP_K,
    LoadSummary,
    RunExistsError,
    existing_run_id,
    load_run,
)
from compute.datasets.spec import absolute_spec


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default=DEFAULT_URL, metavar="URL",
        help="database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB "
        "(default: %(default)s, in the working directory)",
    )


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Add --replace, --influence-floor and --top-k, shared by load and import."""
    parser.add_argument("--replace", action="store_true",
                        help="replace a stored run of the same name")
    parser.add_argument("--influence-floor", type=float, default=DEFAULT_INFLUENCE_FLOOR,
                        help="keep every influence at or above this value "
                        "(default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K,
                        help="also keep this many largest and most negative influences of "
                        "every example (default: %(default)s)")


def quiet_alembic() -> None:
    """Hide Alembic's per-connection INFO lines; the store logs its own upgrade message."""
    migration_logger = logging.getLogger("alembic.runtime.migration")
    if not migration_logger.isEnabledFor(logging.DEBUG):
        migration_logger.setLevel(logging.WARNING)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "load",
        help="store a finished run in the database",
        description="Store a run's examples, estimates, thumbnails and kept influences in "
        "one transaction: if anything fails, the database keeps what it held before. "
        "Kept influences are every pair at or above the floor, plus the top-k largest "
        "and top-k most negative of every train and every test example.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by estimate")
    add_database_option(parser)
    parser.add_argument("--name", default=None,
                        help="run name in the database (default: the directory's name)")
    parser.add_argument("--dataset", default=None, metavar="SPEC",
                        help="read the run's dataset from this spec instead of the stored "
                        "one, for data that has moved; its fingerprint must match")
    add_load_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    load_into_database(
        args.run_dir, args.db, name=args.name, replace=args.replace,
        influence_floor=args.influence_floor, top_k=args.top_k,
        dataset_spec=None if args.dataset is None else absolute_spec(args.dataset),
    )
    return 0


def check_name_free(url: str, name: str | None, advice: str) -> None:
    """Open (and upgrade) the database; raise RunExistsError if `name` is stored there.

    Commands that write a run directory check this first, because writing it can
    take minutes or hours; the load checks again inside its transaction. `advice`
    ends the error, and None as `name` checks the database alone.
    """
    quiet_alembic()
    engine = open_database(url)
    try:
        existing = None if name is None else existing_run_id(engine, name)
    finally:
        engine.dispose()
    if existing is not None:
        raise RunExistsError(f"run {name!r} is already in {describe_url(url)}; {advice}")


def load_into_database(
    run_dir: str,
    url: str,
    name: str | None = None,
    replace: bool = False,
    influence_floor: float = DEFAULT_INFLUENCE_FLOOR,
    top_k: int = DEFAULT_TOP_K,
    dataset_spec: str | None = None,
) -> LoadSummary:
    """Open (and upgrade) the database, load the run with a progress bar, print a summary."""
    quiet_alembic()
    engine = open_database(url)
    bars = {}

    def progress(stage: str, done: int, total: int) -> None:
        # The bar starts when the examples are stored, so that its rate (an average
        # since the start, smoothing=0) covers the first block of influences too.
        if "influences" not in bars:
            # disable=None: no bar when stderr is not a terminal, such as a log file.
            bars["influences"] = tqdm(
                total=None, unit="train row", desc="influences", dynamic_ncols=True,
                smoothing=0, disable=None,
            )
        if stage != "influences":
            return
        bar = bars["influences"]
        bar.total = total
        bar.update(done - bar.n)
        # Show every block at once: update() alone redraws at most every 0.1 s.
        bar.refresh()

    try:
        # Log lines print above the bar instead of on the end of its line.
        with logging_redirect_tqdm():
            summary = load_run(
                engine, run_dir, name=name, replace=replace,
                influence_floor=influence_floor, top_k=top_k, progress=progress,
                dataset_spec=dataset_spec,
            )
    finally:
        for bar in bars.values():
            bar.close()
        engine.dispose()
    print(
        f"run {summary.name!r} loaded into {describe_url(url)}: {summary.examples} examples, "
        f"{summary.influences} influences in {summary.seconds:.1f} s"
    )
    return summary
