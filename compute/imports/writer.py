"""Write imported estimates or trial outcomes as a run directory (see compute.rundir).

The store loads an imported run like any other. A run of imported estimates has
0 trials and no shards. Standard errors, trial counts and accuracies that the
file does not give are NaN, which the store keeps as missing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from compute.datasets import Dataset
from compute.imports.archive import ImportFileError
from compute.imports.estimates import ImportedEstimates
from compute.rundir import (
    ESTIMATES,
    FORMAT_VERSION,
    RunDir,
    RunDirError,
    TrialOutcomes,
    atomic_write,
    package_versions,
    shard_ranges,
    write_influence_pairs,
)

logger = logging.getLogger(__name__)

# Trials per shard of an imported trials file.
SHARD_SIZE = 256


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_run(out: str | Path) -> RunDir:
    """Return a RunDir for `out`, which must not exist or be an empty folder."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ImportFileError(f"{path} already exists and is not an empty folder; " + (
            _existing_run_advice(path) if path.is_dir() else "pass a new --out directory"
        ))
    path.mkdir(parents=True, exist_ok=True)
    return RunDir(path)


def _existing_run_advice(path: Path) -> str:
    """Return what to do about a folder that an import would write into."""
    try:
        manifest = RunDir(path).read_manifest()
    except (RunDirError, OSError, ValueError):
        manifest = {}
    if manifest.get("complete"):
        return (
            "it contains a finished run, which 'longtail load' stores without importing "
            f"again (longtail load {path} --db URL --name NAME); or pass a new --out directory"
        )
    if "imported" in manifest:
        return (
            "it contains an unfinished import, as an interrupted import leaves it; delete the "
            "folder and run the command again, or pass a new --out directory"
        )
    return "an import writes a new or empty folder, so pass a new --out directory"


def _manifest(spec, dataset, source: Path, file_format, config, details) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "config": {"dataset": spec, "shard_size": SHARD_SIZE, "seed": None, **config},
        "dataset": dataset.describe(),
        "seed": None,
        "subset_size": round(config["subset_ratio"] * dataset.n_train),
        "versions": package_versions(),
        "execution": {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timings": {},
        "imported": {
            "format": file_format,
            "file": str(source.resolve()),
            "sha256": file_sha256(source),
            **details,
        },
        "complete": False,
    }


def write_estimates_run(
    out: str | Path,
    spec: str,
    dataset: Dataset,
    imported: ImportedEstimates,
    source: Path,
    model: str,
    subset_ratio: float,
) -> RunDir:
    """Write a run directory whose estimates come from an imported file."""
    run = new_run(out)
    n_train, n_test = dataset.n_train, dataset.n_test
    missing_train, missing_test = np.full(n_train, np.nan), np.full(n_test, np.nan)
    arrays = {
        "mem": imported.mem,
        "mem_se": missing_train,
        "consistency": imported.consistency,
        "consistency_se": missing_train,
        "in_trials": missing_train,
        "out_trials": missing_train,
        "train_labels": dataset.y_train,
        "test_labels": dataset.y_test,
        "train_accuracy": missing_train,
        "test_accuracy": missing_test,
        "trial_test_accuracy": np.zeros(0),
    }
    atomic_write(run.path / ESTIMATES, lambda handle: np.savez(handle, **arrays))
    write_influence_pairs(
        run.influence_pairs_path, (n_train, n_test),
        imported.train_index, imported.test_index, imported.infl,
    )

    config = {"model": model, "trials": 0, "subset_ratio": subset_ratio}
    manifest = _manifest(spec, dataset, source, imported.format, config, imported.details)
    manifest["summary"] = {
        "trials": 0,
        "missing_mem": int(np.isnan(imported.mem).sum()),
        "imported_influences": len(imported.infl),
    }
    manifest["complete"] = True
    run.write_manifest(manifest)
    logger.info("imported %s estimates from %s into run %s", imported.format, source, run.path)
    return run


def write_trials_run(
    out: str | Path,
    spec: str,
    dataset: Dataset,
    outcomes: TrialOutcomes,
    source: Path,
    model: str,
) -> RunDir:
    """Write imported trial outcomes as shards, then compute every estimate from them."""
    run = new_run(out)
    subset_sizes = outcomes.mask.sum(axis=1)
    config = {
        "model": model,
        "trials": len(outcomes.trials),
        "subset_ratio": float(subset_sizes.mean() / dataset.n_train),
    }
    details = {"subset_size_min": int(subset_sizes.min()), "subset_size_max": int(subset_sizes.max())}
    manifest = _manifest(spec, dataset, source, "trials", config, details)
    run.write_manifest(manifest)

    for shard, start, stop in shard_ranges(len(outcomes.trials), SHARD_SIZE):
        rows = slice(start, stop)
        run.write_shard(
            shard, outcomes.trials[rows], outcomes.mask[rows],
            outcomes.train_correct[rows], outcomes.test_correct[rows],
        )
    # Imported here because compute.estimate pulls in torch.
    from compute.estimate import write_estimates

    summary = write_estimates(run, dataset=dataset)

    manifest = run.read_manifest()
    manifest["timings"] = {"estimate_seconds": summary["estimate_seconds"]}
    manifest["summary"] = summary
    manifest["complete"] = True
    run.write_manifest(manifest)
    return run
