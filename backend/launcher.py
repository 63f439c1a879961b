"""Entry points that load a command's modules with Ctrl-C held.

Importing the CLI takes about half a second (SQLAlchemy, Pillow, the commands).
A Ctrl-C in that time printed a KeyboardInterrupt traceback from an import, so
the interrupt is held until the imports are done. `longtail` starts here, and

    python -m backend.launcher MODULE [ARGS...]

runs MODULE's main() the same way, as `make demo` does with backend.demo.
"""

from __future__ import annotations

import importlib
import sys

from compute.interrupts import deferred_interrupts


def main() -> int:
    """Run the `longtail` command."""
    return launch("backend.cli", "longtail")


def launch(module: str, name: str) -> int:
    """Import `module` with interrupts held, then return what its main() returns.

    An interrupt during the import prints "NAME: interrupted" and returns 130.
    """
    try:
        with deferred_interrupts():
            entry = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return entry()


# Names that interrupt messages give the modules that users start by another name.
NAMES = {"backend.cli": "longtail", "backend.demo": "make demo"}

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m backend.launcher MODULE [ARGS...]")
    target = sys.argv.pop(1)
    sys.exit(launch(target, NAMES.get(target, target)))
