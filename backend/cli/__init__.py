"""The `longtail` command: estimate, load, serve and manage the database."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from backend.cli import (
    db_command,
    estimate_command,
    import_command,
    load_command,
    serve_command,
)
from compute.errors import TrialError

# Each module adds one subcommand: register(subparsers) and run(args) -> exit code.
COMMAND_MODULES = [estimate_command, load_command, db_command, serve_command, import_command]


class UsageError(Exception):
    """Bad input from the command line; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longtail",
        description="Estimate memorization and influence of training examples, and browse them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # PyTorch logs cache statistics at INFO when the process exits.
    logging.getLogger("torch").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # `kill` and job schedulers send SIGTERM: stop the way Ctrl-C does, so that
    # workers end, bars close, and nothing is left half-written.
    global _received_signal
    # Reset, because one process may call main() more than once, as the tests do.
    _received_signal = signal.SIGINT
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.run(args) or 0
    except (UsageError, ValueError, TrialError) as error:
        # Input errors (DatasetError, ConfigError, RunDirError are ValueErrors) and
        # diverged trials carry a message that names the value and the fix, so no
        # traceback is shown.
        print(f"longtail {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = RESUME_HINTS.get(args.command)
        print(f"longtail {args.command}: interrupted" + (f"; {hint}" if hint else ""),
              file=sys.stderr)
        # The shell's convention: 128 plus the signal's number, 130 for Ctrl-C.
        return 128 + _received_signal


# Advice printed after an interrupt, for the commands that have one.
RESUME_HINTS = {
    "estimate": "rerun the same command to resume; after a larger --trials, the previous "
    "count gives the extension up",
    "load": "the load is one transaction, so nothing was stored; rerun the same command",
    "import": "the database is unchanged; delete the run directory that the import "
    "started (its --out) and run the same command again",
}

# The signal that stopped the command: SIGINT unless SIGTERM arrived.
_received_signal = signal.SIGINT


def _raise_interrupt(signum, frame) -> None:
    global _received_signal
    _received_signal = signum
    raise KeyboardInterrupt
