"""The trial engine: trains every trial of a run, shard by shard, and resumes.

On the CPU, one single-threaded worker process runs per usable core. A process
with several threads slows down sharply as soon as anything else is busy on one
of its cores, while one thread per process keeps its speed, so the run does not
depend on having the machine to itself. On CUDA one process trains large batches
of models at once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from compute.config import ConfigError, TrialConfig
from compute.cpu_matmul import check_choice, choose_library, describe, products_on, use_products_of
from compute.datasets import Dataset
from compute.errors import TrialError
from compute.interrupts import deferred_interrupts
from compute.models import build_model, bytes_per_model, pixel_statistics, prepare_inputs
from compute.rundir import RunDir, shard_ranges
from compute.subsets import draw_subset, membership_mask
from compute.trainer import TrialData, run_batch
from compute.workers import exit_with_parent, start_worker_server, usable_cores, worker_context

logger = logging.getLogger(__name__)

# Rows of the evaluation pass per forward call; activations scale with it.
EVAL_CHUNK = 256
# Draws per trial before a diverging trial stops the run.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Execution:
    """Execution settings of a run; None picks the default for the device."""

    device: str = "cpu"
    # CPU worker processes, each single-threaded; defaults to the usable cores.
    workers: int | None = None
    # Models trained together in one batched pass; defaults to what fits.
    models_per_batch: int | None = None
    # Library of the CPU's float32 products: "auto", "onednn" or "default" (see
    # compute.cpu_matmul). `auto` takes oneDNN where it keeps float32 accuracy and
    # is faster. Like the device, the library changes results only by rounding.
    cpu_matmul: str = "auto"


# Most last-level cache per core that the planner counts on. A virtual machine
# given 2 cores of a large Xeon reads the whole chip's 480 MiB of L3, which
# dozens of other cores share. There the uncapped share planned 51 models per
# batch for the 784-256-10 MLP, which trained at 9.6 models/s against 11.3 to
# 11.6 for 4 to 16 models.
MAX_CACHE_PER_CORE = 32 * 1024**2


def _cache_bytes_per_core() -> int:
    """Return the last-level cache size divided by the cores, or 16 MiB if unknown.

    The result is at most MAX_CACHE_PER_CORE.
    """
    for index in (3, 2):
        path = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size")
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        scale = {"K": 1024, "M": 1024**2}.get(text[-1], 1)
        share = int(text.rstrip("KM")) * scale // max(1, usable_cores())
        return min(share, MAX_CACHE_PER_CORE)
    return 16 * 1024**2


def _available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 4 * 1024**3


def resolve_device(name: str) -> torch.device:
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', found {name!r}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} requested but PyTorch finds no CUDA GPU; use --device cpu"
        )
    return device


def plan_models_per_batch(
    config: TrialConfig, dataset: Dataset, device: torch.device, workers: int
) -> int:
    """Return how many models to train together on this device.

    On CUDA the limit is half the free memory. On the CPU it is the number whose
    training state and activations fit in the worker's share of the last-level
    cache, because the elementwise passes over anything that spills out of cache
    are memory-bound. On a 2-core EPYC with 32 MiB of L3 that gives 3 models for
    the 784-256-10 MLP and 10 for 64-256-10, and with 16 MiB, 1 and 5. On the
    16 MiB machine (Zen 2), 1 model trained faster than 2 or 4 on mnist5k.
    """
    model = build_model(config, dataset.image_shape, dataset.num_classes)
    state, activations = bytes_per_model(model, config.batch_size, EVAL_CHUNK)
    memory_limit = _available_memory(device) // (2 * workers) // (state + activations)
    if device.type == "cuda":
        count = memory_limit
    else:
        count = min(memory_limit, _cache_bytes_per_core() // (state + activations))
    return int(max(1, min(count, config.trials, 4096)))


class _Trainer:
    """Per-process training state: data on the device, the model and the run directory."""

    def __init__(
        self,
        config: TrialConfig,
        dataset: Dataset,
        run_path: str,
        device: str,
        models_per_batch: int,
        progress_queue=None,
    ) -> None:
        self.config = config
        self.run = RunDir(run_path)
        self.device = torch.device(device)
        self.models_per_batch = models_per_batch
        self.progress_queue = progress_queue
        self.n_train = dataset.n_train
        self.m = config.subset_size(dataset.n_train)
        self.model = build_model(config, dataset.image_shape, dataset.num_classes)
        if self.device.type == "cuda":
            # TF32 products keep 10 mantissa bits: ample for SGD, and several times faster.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        mean, std = pixel_statistics(dataset.x_train)
        self.data = TrialData(
            x_train=prepare_inputs(dataset.x_train, config.model, mean, std).to(self.device),
            y_train=torch.from_numpy(dataset.y_train).to(self.device),
            x_test=prepare_inputs(dataset.x_test, config.model, mean, std).to(self.device),
            y_test=torch.from_numpy(dataset.y_test).to(self.device),
        )

    def train_shards(self, shards: list[tuple[int, int, int]], progress=None) -> list[float]:
        """Train the trials of the given shards and write each shard file."""
        trials = np.concatenate([np.arange(start, stop) for _, start, stop in shards])
        mask = membership_mask(self.config.seed, trials, self.n_train, self.m)
        attempts = np.zeros(len(trials), dtype=np.int64)
        train_correct = np.zeros((len(trials), self.n_train), dtype=bool)
        test_correct = np.zeros((len(trials), len(self.data.y_test)), dtype=bool)

        for first in range(0, len(trials), self.models_per_batch):
            rows = np.arange(first, min(first + self.models_per_batch, len(trials)))
            while len(rows):
                rows = self._train_rows(rows, trials, mask, attempts, train_correct, test_correct)
            done = min(self.models_per_batch, len(trials) - first)
            if progress is not None:
                progress(done)
            if self.progress_queue is not None:
                self.progress_queue.put(done)

        accuracies = []
        offset = 0
        for shard, start, stop in shards:
            rows = slice(offset, offset + stop - start)
            self.run.write_shard(
                shard, trials[rows], mask[rows], train_correct[rows], test_correct[rows],
                attempts[rows],
            )
            accuracies.extend(test_correct[rows].mean(axis=1).tolist())
            offset += stop - start
        return accuracies

    def _train_rows(self, rows, trials, mask, attempts, train_correct, test_correct):
        """Train the given rows once; return the rows that failed and were redrawn."""
        subsets = np.nonzero(mask[rows])[1].reshape(len(rows), self.m)
        outcome = run_batch(
            self.model, self.data, subsets, trials[rows].tolist(), self.config,
            attempts[rows].tolist(),
        )
        train_correct[rows] = outcome.train_correct
        test_correct[rows] = outcome.test_correct

        failed = rows[~outcome.finite]
        for row in failed:
            trial = int(trials[row])
            attempts[row] += 1
            if attempts[row] >= MAX_ATTEMPTS:
                raise TrialError(
                    f"trial {trial} diverged (non-finite weights) in {MAX_ATTEMPTS} draws; "
                    f"lower the learning rate (now {self.config.learning_rate})"
                )
            logger.warning(
                "trial %d diverged (non-finite weights); retrying with draw %d",
                trial, attempts[row],
            )
            mask[row] = False
            mask[row, draw_subset(self.config.seed, trial, self.n_train, self.m,
                                  int(attempts[row]))] = True
        return failed


_worker: _Trainer | None = None


def _log_settings() -> tuple[int, str | None, str | None]:
    """Return this process's log level, and the format and date format of its output.

    Strings, not the formatter itself: a formatter may refer to a stream, which
    cannot be pickled for the workers (pytest's formatter does).
    """
    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if h.formatter is not None), None)
    if formatter is None:
        return root.getEffectiveLevel(), None, None
    return root.getEffectiveLevel(), formatter._fmt, formatter.datefmt


def _start_worker(
    parent_pid: int, log_settings: tuple[int, str | None, str | None], cpu_matmul: str, *args
) -> None:
    global _worker
    exit_with_parent(parent_pid)
    # Workers fork from the fork server, which never ran the command's logging set-up.
    level, log_format, date_format = log_settings
    logging.basicConfig(level=level, format=log_format, datefmt=date_format)
    # One thread per process: see the module docstring for why.
    torch.set_num_threads(1)
    use_products_of(cpu_matmul)
    _worker = _Trainer(*args)


def _train_in_worker(shards: list[tuple[int, int, int]]) -> list[float]:
    assert _worker is not None, "worker used before its initializer ran"
    return _worker.train_shards(shards)


def group_shards(
    pending: list[tuple[int, int, int]], per_batch: int, shard_size: int
) -> list[list[tuple[int, int, int]]]:
    """Group consecutive pending shards so that one group fills one batch of models."""
    size = max(1, per_batch // shard_size)
    return [pending[first : first + size] for first in range(0, len(pending), size)]


def run_trials(
    config: TrialConfig,
    dataset: Dataset,
    run: RunDir,
    execution: Execution = Execution(),
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Train every trial that has no shard file yet; return execution statistics.

    `progress(done, total)` is called with trial counts as batches finish.
    """
    device = resolve_device(execution.device)
    for name in ("workers", "models_per_batch"):
        value = getattr(execution, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be positive, found {value}; use None for the default")
    workers = 1 if device.type == "cuda" else (execution.workers or usable_cores())
    per_batch = execution.models_per_batch or plan_models_per_batch(
        config, dataset, device, workers
    )
    cpu_matmul, stored_libraries = _library_for_run(execution.cpu_matmul, device, run)
    libraries = sorted({*stored_libraries, cpu_matmul})
    previous = run.read_manifest().get("execution") if run.exists() else None
    run.start(config, dataset, {**asdict(execution), "workers": workers,
                                "models_per_batch": per_batch, "cpu_matmul": cpu_matmul,
                                "cpu_matmul_libraries": libraries})

    shards = shard_ranges(config.trials, config.shard_size)
    finished = run.finished_shards()
    pending = [shard for shard in shards if shard[0] not in finished]
    if not pending and previous is not None:
        # Nothing trains, so the record of how the trials were trained stays as it was.
        manifest = run.read_manifest()
        manifest["execution"] = previous
        run.write_manifest(manifest)
    elif len(libraries) > 1:
        logger.warning(
            "run %s: stored trials were trained with %s products and the pending ones use "
            "%s, so its estimates differ from an uninterrupted run's by float32 rounding",
            run.path, " and ".join(stored_libraries), cpu_matmul,
        )
    done = sum(stop - start for number, start, stop in shards if number in finished)
    logger.info(
        "run %s: %d of %d trials already stored, %d shard(s) to train on %s with %d "
        "worker(s), %d model(s) per batch, float32 products by %s",
        run.path, done, config.trials, len(pending), device, workers, per_batch,
        describe(cpu_matmul),
    )
    if progress is not None:
        progress(done, config.trials)

    started = time.perf_counter()
    trained = 0

    def advance(count: int) -> None:
        nonlocal trained
        trained += count
        if progress is not None:
            progress(done + trained, config.trials)

    if not pending:
        pass
    elif workers == 1:
        trainer = _Trainer(config, dataset, str(run.path), str(device), per_batch)
        previous_threads = torch.get_num_threads()
        if device.type == "cpu":
            torch.set_num_threads(1)
        try:
            with products_on(cpu_matmul):
                # On CUDA consecutive shards share one batch when it has room for them.
                for group in group_shards(pending, per_batch, config.shard_size):
                    trainer.train_shards(group, progress=advance)
        finally:
            torch.set_num_threads(previous_threads)
    else:
        _train_in_pool(
            config, dataset, run, device, workers, per_batch, cpu_matmul, pending, advance
        )

    seconds = time.perf_counter() - started
    rate = trained / seconds if seconds > 0 else math.nan
    if trained:
        logger.info("trained %d models in %.1f s (%.2f models/s)", trained, seconds, rate)
    return {
        "device": str(device),
        "workers": workers,
        "models_per_batch": per_batch,
        "cpu_matmul": cpu_matmul,
        "trained": trained,
        "train_seconds": seconds,
        "models_per_second": rate,
    }


def _library_for_run(choice: str, device: torch.device, run: RunDir) -> tuple[str, list[str]]:
    """Return the library for the run's pending trials and those that trained its stored ones.

    On a resumed run, `auto` keeps the library of the stored trials, so that the
    result equals an uninterrupted run bit for bit. Runs from before the choice
    existed were trained with the default library.
    """
    check_choice(choice)
    stored: list[str] = []
    if run.exists() and run.finished_shards():
        recorded = run.read_manifest().get("execution", {})
        stored = recorded.get("cpu_matmul_libraries", [recorded.get("cpu_matmul", "default")])
    if device.type != "cpu":
        return "default", stored
    if choice == "auto" and len(stored) == 1:
        try:
            return choose_library(stored[0]), stored
        except ConfigError as error:
            logger.warning("run %s: %s; the pending trials use the automatic choice",
                           run.path, error)
    return choose_library(choice), stored


def _train_in_pool(
    config, dataset, run, device, workers, per_batch, cpu_matmul, pending, advance
) -> None:
    start_worker_server(str(device), workers)  # at once if already running
    context = worker_context()
    progress_queue = context.Queue()
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(pending)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(
            os.getpid(), _log_settings(), cpu_matmul, config, dataset, str(run.path),
            str(device), per_batch, progress_queue,
        ),
    ) as pool:
        # Each worker gets at most its share, so both cores stay busy to the end.
        share = -(-sum(stop - start for _, start, stop in pending) // workers)
        groups = group_shards(pending, min(per_batch, share), config.shard_size)
        try:
            # Submitting starts the worker processes. An interrupt in the middle left
            # a starting worker to read a pickle or a semaphore that was gone.
            with deferred_interrupts():
                futures = [pool.submit(_train_in_worker, group) for group in groups]
            remaining = set(futures)
            while remaining:
                finished, remaining = concurrent.futures.wait(remaining, timeout=0.5)
                _drain(progress_queue, advance)
                for future in finished:
                    future.result()  # re-raises a worker's error here
            _drain(progress_queue, advance)
        except BaseException:
            # An interrupt or a worker's error stops the run now: the other workers
            # would otherwise finish their current and next shards first. The pool
            # then fails the pending futures itself. Cancelling them first made its
            # management thread raise InvalidStateError (Python 3.11).
            _terminate_workers(pool)
            raise


def _terminate_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Send SIGTERM to every worker of the pool; written shards stay complete."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14 and later
    if terminate is not None:
        terminate()
        return
    # Earlier versions keep the worker processes in a private mapping.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _drain(progress_queue, advance) -> None:
    while True:
        try:
            advance(progress_queue.get_nowait())
        except queue.Empty:
            return
