"""The `longtail` command's entry point, which loads the CLI with Ctrl-C held.

Importing the CLI takes about half a second (SQLAlchemy, Pillow, the commands).
A Ctrl-C in that time printed a KeyboardInterrupt traceback from an import, so
the interrupt is held until the imports are done.
"""

from __future__ import annotations

import sys

from compute.interrupts import deferred_interrupts


def main() -> int:
    try:
        with deferred_interrupts():
            from backend.cli import main as run_command
    except KeyboardInterrupt:
        print("longtail: interrupted", file=sys.stderr)
        return 130
    return run_command()
