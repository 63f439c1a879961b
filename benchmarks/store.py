"""Load time and peak memory of `longtail load` into SQLite and PostgreSQL.

Cases are synthetic run directories written with compute's own writers (random
images, random trials, normal influences; see tests/store/synthetic.py):
- mnist5k: the size of the mnist5k run, 4,000 train and 1,000 test 28x28 images;
- cifar100: 50,000 train and 10,000 test 32x32x3 images in 100 classes. Its
  influence matrix is 2 GB (4 GB with the standard errors). The influence spread
  (std 0.0067) makes about 960,000 pairs kept at floor 0.02 and top-k 5, and about
  2,006,000 at the default top-k 20 (50,000 rows x 40 alone are 2,000,000).

Each load runs in a child process; the parent reads the child's peak resident
memory (ru_maxrss) from os.wait4. PostgreSQL loads go into a fresh database
longtail_bench_<random>, dropped at the end.

    .venv/bin/python benchmarks/store.py                       # every case
    .venv/bin/python benchmarks/store.py --case cifar100 --top-k 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {
    "mnist5k": {
        "n_train": 4000, "n_test": 1000, "num_classes": 10, "image_shape": (28, 28, 1),
        "influence_std": 0.01,
    },
    "cifar100": {
        "n_train": 50_000, "n_test": 10_000, "num_classes": 100, "image_shape": (32, 32, 3),
        "influence_std": 0.0067,
    },
}
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def ensure_run(work: Path, case: str) -> Path:
    """Write the case's run directory once; later calls reuse it."""
    from compute.rundir import RunDir
    from tests.store.synthetic import write_synthetic_run

    folder = work / case
    run = RunDir(folder / "run")
    if run.exists() and run.read_manifest().get("complete"):
        return run.path
    started = time.perf_counter()
    write_synthetic_run(folder, **CASES[case])
    print(f"wrote the {case} run directory in {time.perf_counter() - started:.0f} s",
          flush=True)
    return run.path


def child_load(run: str, url: str, top_k: int, floor: float) -> None:
    """Load in this (child) process and print the result as one JSON line."""
    from backend.store.database import open_database
    from backend.store.load import load_run

    engine = open_database(url)
    summary = load_run(engine, run, replace=True, influence_floor=floor, top_k=top_k)
    engine.dispose()
    print(json.dumps({"seconds": summary.seconds, "influences": summary.influences,
                      "examples": summary.examples}))


def measure(run: Path, url: str, top_k: int, floor: float) -> dict:
    """Run one load in a child process; return its result and peak memory."""
    command = [sys.executable, __file__, "--child", str(run), url, str(top_k), str(floor)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"load of {run} into {url} failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    # ru_maxrss is in KiB on Linux.
    result["peak_memory_mib"] = usage.ru_maxrss / 1024
    return result


def postgres_database(server_url: str):
    """Create a fresh benchmark database; return its URL and a function that drops it."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    server = make_url(server_url)
    libpq = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"longtail_bench_{secrets.token_hex(4)}"
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(libpq, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    return server.set(database=name).render_as_string(hide_password=False), drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append",
                        help="case to run, repeatable (default: all)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append",
                        help="database to load into, repeatable (default: both)")
    parser.add_argument("--top-k", type=int, action="append",
                        help="top-k of each load, repeatable (default: 20 and 5)")
    parser.add_argument("--influence-floor", type=float, default=0.02)
    parser.add_argument("--work", type=Path, default=Path("/tmp/longtail-store-bench"),
                        help="folder for run directories and the SQLite files")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("LONGTAIL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help="PostgreSQL server; a fresh database is created on it")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run, url, top_k, floor = args.child
        child_load(run, url, int(top_k), float(floor))
        return 0

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}", flush=True)
    rows = []
    for case in args.case or sorted(CASES):
        run = ensure_run(args.work, case)
        for backend in args.backend or ["sqlite", "postgresql"]:
            for top_k in args.top_k or [20, 5]:
                if backend == "sqlite":
                    database = args.work / f"{case}-top{top_k}.db"
                    for path in database.parent.glob(database.name + "*"):
                        path.unlink()
                    url, drop = f"sqlite:///{database}", (lambda: None)
                else:
                    url, drop = postgres_database(args.postgres_url)
                try:
                    result = measure(run, url, top_k, args.influence_floor)
                finally:
                    drop()
                rows.append((case, backend, top_k, result))
                print(f"{case} {backend} top-k {top_k}: {result['influences']:,} influences, "
                      f"{result['examples']:,} examples in {result['seconds']:.1f} s, "
                      f"peak memory {result['peak_memory_mib']:.0f} MiB", flush=True)

    print("\n| case | database | top-k | kept influences | load time | peak memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case, backend, top_k, result in rows:
        print(f"| {case} | {backend} | {top_k} | {result['influences']:,} | "
              f"{result['seconds']:.1f} s | {result['peak_memory_mib']:.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
