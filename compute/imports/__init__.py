"""Import estimates or trial outcomes computed elsewhere into a run directory.

`import_run` reads an npz file, detects its format from its keys, checks it against
the dataset (labels in the same order, indices in range, values in range) and
writes a run directory that `longtail load` stores like any other. This package
has no database code. docs/import.md describes the formats.
"""

from __future__ import annotations

from pathlib import Path

from compute.datasets import Dataset, load_dataset
from compute.imports.archive import (
    CONSISTENCY_FORMAT,
    FORMAT_KEYS,
    INFLUENCE_FORMAT,
    PAIRS_FORMAT,
    TRIALS_FORMAT,
    ImportFileError,
    open_archive,
)
from compute.imports.estimates import (
    ImportedEstimates,
    read_consistency,
    read_influence_matrix,
    read_influence_pairs,
)
from compute.imports.trials import read_trial_outcomes
from compute.imports.writer import write_estimates_run, write_trials_run
from compute.rundir import RunDir

ESTIMATE_READERS = {
    INFLUENCE_FORMAT: read_influence_matrix,
    PAIRS_FORMAT: read_influence_pairs,
    CONSISTENCY_FORMAT: read_consistency,
}
# Model name stored for runs whose models Longtail did not train.
EXTERNAL_MODEL = "external"
# Subset ratio stored for imported estimates when the caller does not give one.
DEFAULT_SUBSET_RATIO = 0.7


def import_run(
    path: str | Path,
    spec: str,
    out: str | Path,
    model: str = EXTERNAL_MODEL,
    subset_ratio: float = DEFAULT_SUBSET_RATIO,
    dataset: Dataset | None = None,
) -> tuple[RunDir, str]:
    """Check an import file against the dataset and write it as run directory `out`.

    Returns the run and the detected format. Nothing is written unless every check
    passes. `subset_ratio` is only stored, for estimates computed elsewhere: trial
    files give their own. `dataset` skips loading `spec` again when the caller has it.
    """
    if not 0.0 < subset_ratio < 1.0:
        raise ImportFileError(
            f"subset ratio must lie strictly between 0 and 1, found {subset_ratio}; pass the "
            "ratio the estimates were computed with"
        )
    path = Path(path)
    archive = open_archive(path)
    dataset = dataset if dataset is not None else load_dataset(spec)

    if archive.format == TRIALS_FORMAT:
        outcomes = read_trial_outcomes(archive, dataset)
        return write_trials_run(out, spec, dataset, outcomes, path, model), archive.format

    imported = ESTIMATE_READERS[archive.format](archive, dataset)
    run = write_estimates_run(out, spec, dataset, imported, path, model, subset_ratio)
    return run, archive.format


__all__ = [
    "CONSISTENCY_FORMAT", "FORMAT_KEYS", "INFLUENCE_FORMAT", "PAIRS_FORMAT", "TRIALS_FORMAT",
    "ImportFileError", "ImportedEstimates", "import_run",
]
