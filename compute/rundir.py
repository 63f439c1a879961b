"""The run directory: manifest, trial shards and estimates, with their reader.

Layout (documented for users in docs/run-format.md):

    manifest.json          config, dataset summary and fingerprint, seed, versions, timings
    shards/shard-NNNNNN.npz  trials, bit-packed membership and correctness, test accuracy
    estimates.npz          per-example estimates and labels
    influence.npy          float32 (n_train, n_test), NaN where missing; open with mmap
    influence_se.npy       float32 (n_train, n_test), standard errors of influence.npy

Every file is written to a temporary name in the same directory and renamed, so a
reader sees either the whole file or none of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from compute.config import TrialConfig
from compute.datasets import Dataset, DatasetError, load_dataset

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shards"
ESTIMATES = "estimates.npz"
INFLUENCE = "influence.npy"
INFLUENCE_SE = "influence_se.npy"
# Held by the process that trains or estimates the run (see RunDir.lock).
LOCK = ".lock"
# Known influences of an imported run as pairs, in place of the two dense matrices.
INFLUENCE_PAIRS = "influence_pairs.npz"


def _file_mode() -> int:
    """Return the mode that open() gives a new file under this process's umask."""
    umask = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


class RunDirError(ValueError):
    """A run directory is missing, corrupt, or made for another config or dataset."""


@dataclass
class TrialOutcomes:
    """All trials of a run, in trial order."""

    trials: np.ndarray  # int64 (t,)
    mask: np.ndarray  # bool (t, n)
    train_correct: np.ndarray  # bool (t, n)
    test_correct: np.ndarray  # bool (t, n')
    test_accuracy: np.ndarray  # float64 (t,)


def package_versions() -> dict:
    import torch

    from compute import __version__

    return {
        "longtail": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


def atomic_write(path: Path, write) -> None:
    """Call `write(handle)` on a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not a with-block: the file must outlive its handle, to be renamed or deleted.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # Temporary files are private (0600); a run's files are as readable as
        # any file the user creates, so that colleagues can open the run.
        os.chmod(handle.name, FILE_MODE)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def shard_name(shard: int) -> str:
    return f"shard-{shard:06d}.npz"


def shard_ranges(trials: int, shard_size: int) -> list[tuple[int, int, int]]:
    """Return (shard number, first trial, end trial) for every shard of a run."""
    return [
        (number, start, min(start + shard_size, trials))
        for number, start in enumerate(range(0, trials, shard_size))
    ]


class RunDir:
    """Read and write one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # Manifest.

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict:
        if not self.exists():
            raise RunDirError(
                f"{self.path} is not a run directory: {MANIFEST} not found; "
                "create one with 'longtail estimate --out DIR'"
            )
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirError(f"{self.manifest_path} is not valid JSON: {error}") from error
        if manifest.get("format_version") != FORMAT_VERSION:
            raise RunDirError(
                f"{self.manifest_path} has format version {manifest.get('format_version')!r}, "
                f"this Longtail reads version {FORMAT_VERSION}"
            )
        return manifest

    def write_manifest(self, manifest: dict) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        atomic_write(self.manifest_path, lambda handle: handle.write(text.encode()))

    def start(self, config: TrialConfig, dataset: Dataset, execution: dict) -> dict:
        """Create the manifest of a new run, or check an existing one and return it.

        An existing run must have the same config and dataset fingerprint, else
        resuming it would mix trials of two different experiments.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(
                f"{self.path} is a file, not a run directory; pass a directory path to --out"
            )
        described = dataset.describe()
        if self.exists():
            manifest = self.read_manifest()
            self._check_same_experiment(manifest, config, described)
            stored_trials = int(manifest["config"].get("trials", 0))
            if config.trials != stored_trials:
                logger.info("run %s: changing from %d to %d trials",
                            self.path, stored_trials, config.trials)
                manifest["config"]["trials"] = config.trials
                manifest["complete"] = False
                manifest.setdefault("trial_changes", []).append({
                    "from_trials": stored_trials, "to_trials": config.trials,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                })
            if manifest["config"].get("dataset") != config.dataset:
                # The same data under another spelling, such as another relative path.
                logger.info("run %s: dataset %s is now read from %s",
                            self.path, manifest["config"].get("dataset"), config.dataset)
                manifest["config"]["dataset"] = config.dataset
            manifest["execution"] = execution
            self.write_manifest(manifest)
            return manifest

        manifest = {
            "format_version": FORMAT_VERSION,
            "config": config.to_dict(),
            "dataset": described,
            "seed": config.seed,
            "subset_size": config.subset_size(dataset.n_train),
            "versions": package_versions(),
            "execution": execution,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "timings": {},
            "complete": False,
        }
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_manifest(manifest)
        return manifest

    def _check_same_experiment(self, manifest: dict, config: TrialConfig, described: dict) -> None:
        """Raise RunDirError unless `config` and the dataset continue the stored run.

        The trial count may grow: each trial's outcome depends only on the seed and
        its number. It may also shrink, after an interrupted extension, but not below
        the trials of the run's last estimates. The dataset is the same if its
        fingerprint is, however its spec is spelled.
        """
        stored = manifest["config"]
        estimated = int(manifest.get("summary", {}).get("trials", 0))
        differences = [
            f"{key}: stored {stored.get(key)!r}, requested {value!r}"
            for key, value in config.to_dict().items()
            if stored.get(key) != value and key not in ("trials", "dataset")
        ]
        if config.trials < estimated:
            differences.append(
                f"trials: the run's estimates come from {estimated}, requested "
                f"{config.trials} (a run can gain trials, not lose them)"
            )
        if manifest["dataset"]["fingerprint"] != described["fingerprint"]:
            differences.append(
                f"dataset: stored {stored.get('dataset')!r} with fingerprint "
                f"{manifest['dataset']['fingerprint'][:12]}, requested {config.dataset!r} "
                f"with fingerprint {described['fingerprint'][:12]}"
            )
        if differences:
            raise RunDirError(
                f"{self.path} contains a run with another config or dataset "
                f"({'; '.join(differences)}); pass a new --out directory, or delete "
                "this one to start over"
            )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock file in the block; raise RunDirError if another process holds it.

        Two commands on one run directory would train the same trials twice, and one
        that changed the trial count would leave the other reading a run that no
        longer matches its own count.
        """
        if fcntl is None:  # not POSIX: run without the lock
            yield
            return
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(
                f"{self.path} is a file, not a run directory; pass a directory path to --out"
            )
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            with self._locked():
                yield
        finally:
            # A command that failed before writing anything leaves no directory behind.
            if created and [item.name for item in self.path.iterdir()] == [LOCK]:
                (self.path / LOCK).unlink()
                self.path.rmdir()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / LOCK, "a+", encoding="ascii") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise RunDirError(
                    f"run {self.path} is in use by another process (pid {holder}); wait "
                    "for it to finish or stop it, then run the command again"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def config(self) -> TrialConfig:
        return TrialConfig.from_dict(self.read_manifest()["config"])

    def load_dataset(self, spec: str | None = None) -> Dataset:
        """Load the run's dataset again and check that its content is unchanged.

        `spec` reads the data from elsewhere, for a run whose data has moved; the
        stored spec is read by default.
        """
        manifest = self.read_manifest()
        stored = manifest["config"]["dataset"]
        try:
            dataset = load_dataset(spec or stored)
        except DatasetError as error:
            if spec is not None:
                raise
            raise DatasetError(
                f"{error}; if the data of run {self.path} has moved, pass its new place "
                "with 'longtail load RUN_DIR --dataset SPEC'"
            ) from error
        if dataset.fingerprint() != manifest["dataset"]["fingerprint"]:
            if spec is not None and spec != stored:
                raise RunDirError(
                    f"dataset {spec!r} is not the data of run {self.path}, which was computed "
                    f"on {stored!r} (fingerprints differ); pass the same data"
                )
            raise RunDirError(
                f"dataset {stored!r} has changed since run {self.path} was computed "
                "(fingerprints differ); restore the original data or rerun"
            )
        return dataset

    # Shards.

    def shard_path(self, shard: int) -> Path:
        return self.path / SHARD_DIR / shard_name(shard)

    def write_shard(
        self,
        shard: int,
        trials: np.ndarray,
        mask: np.ndarray,
        train_correct: np.ndarray,
        test_correct: np.ndarray,
        attempts: np.ndarray | None = None,
    ) -> None:
        if attempts is None:
            attempts = np.zeros(len(trials), dtype=np.int64)
        arrays = {
            "trials": trials.astype(np.int64),
            # Failed draws before the stored one; those failures are never counted.
            "attempts": attempts.astype(np.int64),
            "n_train": np.int64(mask.shape[1]),
            "n_test": np.int64(test_correct.shape[1]),
            "mask": np.packbits(mask, axis=1),
            "train_correct": np.packbits(train_correct, axis=1),
            "test_correct": np.packbits(test_correct, axis=1),
            "test_accuracy": test_correct.mean(axis=1),
        }
        atomic_write(self.shard_path(shard), lambda handle: np.savez(handle, **arrays))

    def read_shard(self, shard: int) -> TrialOutcomes:
        path = self.shard_path(shard)
        try:
            with np.load(path, allow_pickle=False) as archive:
                n_train, n_test = int(archive["n_train"]), int(archive["n_test"])
                return TrialOutcomes(
                    trials=archive["trials"],
                    mask=np.unpackbits(archive["mask"], axis=1, count=n_train).astype(bool),
                    train_correct=np.unpackbits(
                        archive["train_correct"], axis=1, count=n_train
                    ).astype(bool),
                    test_correct=np.unpackbits(
                        archive["test_correct"], axis=1, count=n_test
                    ).astype(bool),
                    test_accuracy=archive["test_accuracy"].astype(np.float64),
                )
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise RunDirError(f"shard {path} is unreadable: {error}") from error

    def finished_shards(self) -> set[int]:
        """Return the numbers of shards whose files exist and contain exactly their trials.

        A run extended to more trials keeps its last shard if that shard was full.
        A shorter last shard (2,000 trials end 16 trials into shard 62 of 32) contains
        fewer trials than the shard's range in the extended run, so it is not
        finished and the engine trains it again, whole.
        """
        folder = self.path / SHARD_DIR
        if not folder.is_dir():
            return set()
        config = self.read_manifest()["config"] if self.exists() else None
        numbers = set()
        for path in folder.glob("shard-*.npz"):
            stem = path.stem.removeprefix("shard-")
            if not stem.isdigit():
                continue
            number = int(stem)
            if config is None or not self._shard_mismatched(number, config):
                numbers.add(number)
        return numbers

    def _shard_mismatched(self, number: int, config: dict) -> bool:
        """Return whether a readable shard's trial count differs from its range's in the run.

        A shard written for a larger count that was given up contains more trials.
        """
        size = int(config["shard_size"])
        expected = min(size, int(config["trials"]) - number * size)
        try:
            with np.load(self.shard_path(number)) as archive:
                stored = len(archive["trials"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            # An unreadable shard counts as finished, so that reading the trials
            # reports it by name instead of the engine overwriting it.
            return False
        return stored != expected

    def read_trials(self) -> TrialOutcomes:
        """Read every shard and check that together they hold trials 0..t-1 once each."""
        manifest = self.read_manifest()
        # Only the trial count and shard size are read, not a whole TrialConfig, so that
        # imported runs read the same way: their model is one Longtail does not train,
        # and imported estimates come with 0 trials (see docs/import.md).
        trials = int(manifest["config"]["trials"])
        shard_size = int(manifest["config"]["shard_size"])
        n_train, n_test = manifest["dataset"]["n_train"], manifest["dataset"]["n_test"]
        if trials == 0:
            return TrialOutcomes(
                trials=np.zeros(0, dtype=np.int64),
                mask=np.zeros((0, n_train), dtype=bool),
                train_correct=np.zeros((0, n_train), dtype=bool),
                test_correct=np.zeros((0, n_test), dtype=bool),
                test_accuracy=np.zeros(0),
            )

        parts = []
        for shard, start, stop in shard_ranges(trials, shard_size):
            if not self.shard_path(shard).is_file():
                raise RunDirError(
                    f"{self.path}: shard {shard} (trials {start}..{stop - 1}) is missing; "
                    "rerun the same estimate command to finish the run"
                )
            part = self.read_shard(shard)
            if not np.array_equal(part.trials, np.arange(start, stop)):
                raise RunDirError(
                    f"shard {self.shard_path(shard)} contains trials {part.trials[:3]}..., "
                    f"expected {start}..{stop - 1}"
                )
            if part.mask.shape[1] != n_train or part.test_correct.shape[1] != n_test:
                raise RunDirError(
                    f"shard {self.shard_path(shard)} has {part.mask.shape[1]} train and "
                    f"{part.test_correct.shape[1]} test columns, the manifest says "
                    f"{n_train} and {n_test}"
                )
            parts.append(part)
        return TrialOutcomes(
            trials=np.concatenate([part.trials for part in parts]),
            mask=np.concatenate([part.mask for part in parts]),
            train_correct=np.concatenate([part.train_correct for part in parts]),
            test_correct=np.concatenate([part.test_correct for part in parts]),
            test_accuracy=np.concatenate([part.test_accuracy for part in parts]),
        )

    # Estimates.

    def read_estimates(self) -> dict[str, np.ndarray]:
        """Return every array of estimates.npz (see docs/run-format.md for the keys).

        Raises RunDirError while the run is not complete, when the file on disk may
        be from before a change of the trial count.
        """
        if self.exists() and not self.read_manifest().get("complete"):
            raise RunDirError(
                f"run {self.path} is not complete, so its estimates are missing or from "
                "before its last change; rerun its estimate command to finish it"
            )
        path = self.path / ESTIMATES
        if not path.is_file():
            raise RunDirError(
                f"{path} not found: the run has no estimates yet; rerun the estimate command"
            )
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise RunDirError(f"{path} is unreadable: {error}") from error

    def influence(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (n_train, n_test) influence and standard-error arrays.

        The dense matrices are memory-mapped. A run that stores its influences as
        pairs gets both built in memory, so read a large one with
        `iter_influence_rows` instead.
        """
        if self.influence_pairs_path.is_file():
            shape, train, test, values = self._read_influence_pairs()
            infl = np.full(shape, np.nan, dtype=np.float32)
            infl[train, test] = values
            return infl, np.full(shape, np.nan, dtype=np.float32)
        arrays = []
        for name in (INFLUENCE, INFLUENCE_SE):
            path = self.path / name
            try:
                arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
            except (OSError, ValueError) as error:
                raise RunDirError(f"{path} is missing or unreadable: {error}") from error
        return arrays[0], arrays[1]

    def iter_influence_rows(
        self, block_rows: int = 1024
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield (first train index, infl block, infl_se block), reading one block at a time.

        Blocks are read with plain file reads, not through a memory map: pages of a map
        stay resident once touched, so a pass over a 2 GB matrix would grow the
        process to 2 GB.
        """
        if self.influence_pairs_path.is_file():
            yield from self._iter_pair_rows(block_rows)
            return
        paths = (self.path / INFLUENCE, self.path / INFLUENCE_SE)
        with contextlib.ExitStack() as stack:
            try:
                handles = [stack.enter_context(open(path, "rb")) for path in paths]
            except OSError as error:
                raise RunDirError(
                    f"{error.filename} is missing or unreadable: {error}"
                ) from error
            shapes = [_read_npy_header(path, handle) for path, handle in zip(paths, handles)]
            if shapes[0] != shapes[1]:
                raise RunDirError(
                    f"{paths[0]} has shape {shapes[0]} but {paths[1]} has {shapes[1]}; "
                    "rerun the estimate command to rewrite both"
                )
            n_train, n_test = shapes[0]
            for start in range(0, n_train, block_rows):
                rows = min(block_rows, n_train - start)
                blocks = [_read_rows(path, handle, rows, n_test, start)
                          for path, handle in zip(paths, handles)]
                yield start, blocks[0], blocks[1]

    @property
    def influence_pairs_path(self) -> Path:
        return self.path / INFLUENCE_PAIRS

    def influence_shape(self) -> tuple[int, int]:
        """Return the (n_train, n_test) shape of the stored influences, in either form."""
        if self.influence_pairs_path.is_file():
            return self._read_influence_pairs()[0]
        path = self.path / INFLUENCE
        try:
            with open(path, "rb") as handle:
                return _read_npy_header(path, handle)
        except OSError as error:
            raise RunDirError(f"{path} is missing or unreadable: {error}") from error

    def _read_influence_pairs(self) -> tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]:
        """Return the shape, train indices, test indices and values of the stored pairs."""
        path = self.influence_pairs_path
        try:
            with np.load(path, allow_pickle=False) as archive:
                shape = tuple(int(size) for size in archive["shape"])
                train, test = archive["train_index"], archive["test_index"]
                values = archive["infl"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise RunDirError(f"{path} is unreadable: {error}") from error
        if len(shape) != 2 or not len(train) == len(test) == len(values):
            raise RunDirError(
                f"{path} is inconsistent: shape {shape}, {len(train)} train and {len(test)} "
                f"test indices, {len(values)} values; import the file again"
            )
        for name, index, size in (("train_index", train, shape[0]), ("test_index", test, shape[1])):
            if len(index) and (index.min() < 0 or index.max() >= size):
                raise RunDirError(
                    f"{path} is inconsistent: {name} runs from {index.min()} to {index.max()}, "
                    f"outside shape {shape}; import the file again"
                )
        return shape, train.astype(np.int64), test.astype(np.int64), values.astype(np.float32)

    def _iter_pair_rows(self, block_rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield dense blocks, NaN except at the stored pairs, whose standard errors are NaN."""
        (n_train, n_test), train, test, values = self._read_influence_pairs()
        order = np.argsort(train, kind="stable")
        train, test, values = train[order], test[order], values[order]
        for start in range(0, n_train, block_rows):
            stop = min(start + block_rows, n_train)
            block = np.full((stop - start, n_test), np.nan, dtype=np.float32)
            first, last = np.searchsorted(train, (start, stop))
            block[train[first:last] - start, test[first:last]] = values[first:last]
            yield start, block, np.full_like(block, np.nan)


def write_influence_pairs(
    path: Path, shape: tuple[int, int], train: np.ndarray, test: np.ndarray, values: np.ndarray
) -> None:
    """Write known influences as pairs: every other pair, and every standard error, is missing."""
    atomic_write(path, lambda handle: np.savez(
        handle, shape=np.asarray(shape, np.int64), train_index=train.astype(np.int64),
        test_index=test.astype(np.int64), infl=values.astype(np.float32),
    ))


def _read_npy_header(path: Path, handle) -> tuple[int, int]:
    """Read the header of a float32 (rows, columns) .npy file and return its shape."""
    try:
        version = np.lib.format.read_magic(handle)
        # Versions 1.0 and 2.0 differ only in the header length field; numpy writes
        # 3.0 only for structured dtypes with non-ASCII names, never for a matrix.
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran_order, dtype = read_header(handle)
    except (OSError, ValueError) as error:
        raise RunDirError(f"{path} is not a readable .npy file: {error}") from error
    if dtype != np.dtype("<f4") or fortran_order or len(shape) != 2:
        raise RunDirError(
            f"{path} contains {dtype} of shape {shape} (Fortran order: {fortran_order}), "
            "expected a C-order float32 (n_train, n_test) matrix; rerun the estimate command"
        )
    return shape


def _read_rows(path: Path, handle, rows: int, columns: int, start: int) -> np.ndarray:
    block = np.fromfile(handle, dtype="<f4", count=rows * columns)
    if block.size != rows * columns:
        raise RunDirError(
            f"{path} ends inside row {start + block.size // max(columns, 1)}: the file is "
            "truncated, so rerun the estimate command"
        )
    return block.reshape(rows, columns)
