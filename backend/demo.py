"""`make demo`: estimate on mnist5k, load the run into SQLite, and serve the explorer.

A second run reuses everything: a complete run directory is not estimated again, and
a run already in the database is not loaded again.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from backend.cli import main as longtail
from backend.cli.load_command import quiet_alembic
from backend.cli.serve_command import serve
from backend.store.database import open_database
from backend.store.models import Run
from compute.rundir import RunDir, RunDirError

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = REPO / "runs" / "mnist5k-demo"
RUN_NAME = RUN_DIR.name
DATABASE_URL = f"sqlite:///{REPO / 'longtail.db'}"
HOST, PORT = "127.0.0.1", 8000
# 1,000 trials of 5 epochs keep the estimate under 5 minutes on 2 CPU cores.
ESTIMATE_ARGS = ["--dataset", "mnist5k", "--trials", "1000", "--epochs", "5"]


def run_is_complete(path: Path) -> bool:
    try:
        return bool(RunDir(path).read_manifest().get("complete"))
    except RunDirError:
        return False


def run_is_loaded(database_url: str, name: str) -> bool:
    engine = open_database(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(Run.id).where(Run.name == name)) is not None
    finally:
        engine.dispose()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    quiet_alembic()
    if run_is_complete(RUN_DIR):
        print(f"run {RUN_DIR} is complete; skipping the estimate")
    else:
        # In a child process, so that torch and the trial workers' fork server
        # leave memory before the explorer starts. The launcher defers a Ctrl-C
        # until the child's imports are done, as the `longtail` command does.
        command = [sys.executable, "-m", "backend.launcher", "backend.cli", "estimate",
                   *ESTIMATE_ARGS, "--out", str(RUN_DIR)]
        try:
            status = subprocess.run(command, check=False).returncode
        except KeyboardInterrupt:
            # The child got the same Ctrl-C. Within its first hundredths of a
            # second it may stop before it can print anything.
            status = 130
        if status == 130:
            print("make demo: interrupted; run it again to resume the estimate", file=sys.stderr)
        if status:
            return status

    if run_is_loaded(DATABASE_URL, RUN_NAME):
        print(f"run {RUN_NAME} is already in {DATABASE_URL}; skipping the load")
    else:
        status = longtail(["load", str(RUN_DIR), "--db", DATABASE_URL, "--name", RUN_NAME])
        if status:
            return status

    print(f"Longtail explorer: http://{HOST}:{PORT}/runs/{RUN_NAME}  (Ctrl+C stops it)",
          flush=True)
    try:
        serve(DATABASE_URL, HOST, PORT)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
