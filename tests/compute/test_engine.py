"""The trial engine on real digits: determinism, resume, run directory checks."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from compute.config import ConfigError, TrialConfig
from compute.cpu_matmul import measure
from compute.engine import Execution
from compute.estimate import estimate
from compute.rundir import RunDir, RunDirError
from tests.conftest import REPO

SMALL = TrialConfig(dataset="digits", hidden=(32,), trials=24, epochs=2, shard_size=4)
# Slow enough (about 0.2 s a shard) that a kill lands while shards remain.
KILLED = TrialConfig(dataset="digits", hidden=(256,), trials=24, epochs=30, shard_size=4)


def estimates_of(run: RunDir) -> dict[str, np.ndarray]:
    arrays = run.read_estimates()
    infl, infl_se = run.influence()
    arrays["influence"] = np.asarray(infl)
    arrays["influence_se"] = np.asarray(infl_se)
    return arrays


def assert_same_estimates(first: dict, second: dict) -> None:
    assert sorted(first) == sorted(second)
    for key, array in first.items():
        assert np.array_equal(array, second[key], equal_nan=True), f"{key} differs"


def test_same_seed_identical_estimates(digits, tmp_path):
    one = estimate(SMALL, digits, tmp_path / "one", Execution(workers=1))
    two = estimate(SMALL, digits, tmp_path / "two", Execution(workers=2, models_per_batch=3))
    assert_same_estimates(estimates_of(one), estimates_of(two))


def test_other_seed_other_estimates(digits, tmp_path):
    one = estimate(SMALL, digits, tmp_path / "one", Execution(workers=1))
    other = TrialConfig(**{**SMALL.to_dict(), "seed": 1, "hidden": (32,), "channels": (16, 32)})
    two = estimate(other, digits, tmp_path / "two", Execution(workers=1))
    assert not np.array_equal(one.read_estimates()["mem"], two.read_estimates()["mem"])


def test_estimates_shapes_and_ranges(digits, tmp_path):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    arrays = run.read_estimates()
    infl, infl_se = run.influence()
    manifest = run.read_manifest()

    assert arrays["mem"].shape == (digits.n_train,)
    assert infl.shape == (digits.n_train, digits.n_test)
    assert infl_se.shape == infl.shape
    assert np.array_equal(arrays["train_labels"], digits.y_train)
    assert np.array_equal(arrays["test_labels"], digits.y_test)
    finite = np.isfinite(arrays["mem"])
    assert np.all(np.abs(arrays["mem"][finite]) <= 1)
    assert np.all(np.abs(infl[np.isfinite(infl)]) <= 1)
    assert np.all(arrays["in_trials"] + arrays["out_trials"] == SMALL.trials)
    assert manifest["complete"] is True
    assert manifest["dataset"]["fingerprint"] == digits.fingerprint()
    assert manifest["config"] == SMALL.to_dict()
    assert manifest["subset_size"] == round(0.7 * digits.n_train)
    assert set(manifest["versions"]) >= {"longtail", "python", "numpy", "torch"}
    assert manifest["timings"]["train_seconds"] > 0


def test_resume_after_kill_equals_uninterrupted(digits, tmp_path):
    reference = estimate(KILLED, digits, tmp_path / "reference", Execution(workers=1))

    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "backend.cli", "estimate", "--dataset", "digits",
        "--hidden", "256", "--trials", "24", "--epochs", "30", "--shard-size", "4",
        "--workers", "1", "--models-per-batch", "4", "--out", str(out),
    ]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    run = RunDir(out)
    deadline = time.monotonic() + 120
    while len(run.finished_shards()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = run.finished_shards()
    assert 2 <= len(stored) < 6, f"kill landed after {len(stored)} of 6 shards"
    assert not (out / "estimates.npz").exists()

    resumed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(stored) * 4} of 24 trials already stored" in resumed.stderr
    assert_same_estimates(estimates_of(reference), estimates_of(run))


def test_resume_rejects_other_config(digits, tmp_path):
    estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    changed = TrialConfig(**{**SMALL.to_dict(), "epochs": 3, "hidden": (32,)})
    with pytest.raises(RunDirError, match=r"epochs: stored 2, requested 3"):
        estimate(changed, digits, tmp_path / "run", Execution(workers=1))


def test_more_trials_extend_finished_run(digits, tmp_path):
    # 22 trials end two trials into shard 5 of 4, so that shard is trained again.
    fewer = TrialConfig(**{**SMALL.to_dict(), "trials": 22, "hidden": (32,)})
    run = estimate(fewer, digits, tmp_path / "run", Execution(workers=1))
    full_shard_time = run.shard_path(4).stat().st_mtime_ns
    extended = estimate(SMALL, digits, tmp_path / "run", Execution(workers=2))
    reference = estimate(SMALL, digits, tmp_path / "reference", Execution(workers=1))

    assert_same_estimates(estimates_of(reference), estimates_of(extended))
    assert extended.shard_path(4).stat().st_mtime_ns == full_shard_time
    assert len(extended.read_shard(5).trials) == 4
    manifest = extended.read_manifest()
    assert manifest["config"]["trials"] == SMALL.trials
    assert manifest["complete"] is True
    assert [(step["from_trials"], step["to_trials"]) for step in manifest["trial_changes"]] == [
        (22, 24)
    ]


def test_fewer_trials_rejected(digits, tmp_path):
    estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    fewer = TrialConfig(**{**SMALL.to_dict(), "trials": 20, "hidden": (32,)})
    with pytest.raises(
        RunDirError, match=r"trials: the run's estimates come from 24, requested 20 \(a run can gain"
    ):
        estimate(fewer, digits, tmp_path / "run", Execution(workers=1))


def test_interrupted_extension_can_shrink_back(digits, tmp_path):
    # A larger count given up part way: its stored shards stay on disk, and the
    # run may return to any count from its last estimates' 16 trials up.
    fewer = TrialConfig(**{**SMALL.to_dict(), "trials": 16, "hidden": (32,)})
    run = estimate(fewer, digits, tmp_path / "run", Execution(workers=1))
    bigger = TrialConfig(**{**SMALL.to_dict(), "trials": 40, "hidden": (32,)})
    run.start(bigger, digits, execution={})
    with pytest.raises(RunDirError, match="is not complete, so its estimates are missing"):
        run.read_estimates()
    # Shard 5 as the larger count left it: trials 20..23, where 22 trials end at 21.
    # Its placeholder outcomes would show in the estimates if it were kept.
    run.write_shard(5, np.arange(20, 24), *(np.zeros((4, n), bool) for n in (
        digits.n_train, digits.n_train, digits.n_test)))
    target = TrialConfig(**{**SMALL.to_dict(), "trials": 22, "hidden": (32,)})

    shrunk = estimate(target, digits, tmp_path / "run", Execution(workers=1))
    reference = estimate(target, digits, tmp_path / "reference", Execution(workers=1))

    assert_same_estimates(estimates_of(reference), estimates_of(shrunk))
    assert [(step["from_trials"], step["to_trials"])
            for step in shrunk.read_manifest()["trial_changes"]] == [(16, 40), (40, 22)]


def test_dataset_spec_spelled_otherwise_accepted(digits, tmp_path, caplog):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    other_spelling = TrialConfig(**{**SMALL.to_dict(), "dataset": "digits?", "hidden": (32,)})
    run.start(other_spelling, digits, execution={})

    assert run.read_manifest()["config"]["dataset"] == "digits?"
    assert run.read_manifest()["complete"] is True


def test_complete_run_keeps_its_estimates(digits, tmp_path, caplog):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    written = {path.name: path.stat().st_mtime_ns for path in run.path.glob("*.np?")}
    with caplog.at_level(logging.INFO, logger="compute"):
        estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))

    assert {path.name: path.stat().st_mtime_ns for path in run.path.glob("*.np?")} == written
    assert "is complete and its estimates are current" in caplog.text
    assert "trained 0 models" not in caplog.text


def test_run_in_use_rejected(digits, tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock(), pytest.raises(RunDirError, match=rf"in use by another process \(pid {os.getpid()}\)"):
        estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    assert not run.finished_shards()


def test_resume_rejects_other_dataset(digits, tmp_path):
    estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    flipped = type(digits)(
        name=digits.name, x_train=digits.x_train, y_train=(digits.y_train + 1) % 10,
        x_test=digits.x_test, y_test=digits.y_test, class_names=digits.class_names,
    )
    with pytest.raises(RunDirError, match="with fingerprint"):
        estimate(SMALL, flipped, tmp_path / "run", Execution(workers=1))


def test_missing_shard_named_on_read(digits, tmp_path):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    run.shard_path(3).unlink()
    with pytest.raises(RunDirError, match=r"shard 3 \(trials 12..15\) is missing"):
        run.read_trials()


def test_diverging_trials_stop_with_clear_error(digits, tmp_path):
    from compute.engine import TrialError

    config = TrialConfig(dataset="digits", hidden=(32,), trials=4, epochs=1, shard_size=4,
                         learning_rate=1e12, weight_decay=0.0)
    with pytest.raises(TrialError, match=r"trial 0 diverged \(non-finite weights\) in 3 draws"):
        estimate(config, digits, tmp_path / "run", Execution(workers=1))
    assert not RunDir(tmp_path / "run").finished_shards()


def test_manifest_records_cpu_matmul(digits, tmp_path):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1, cpu_matmul="default"))
    assert run.read_manifest()["execution"]["cpu_matmul"] == "default"


def test_unknown_cpu_matmul_rejected(digits, tmp_path):
    with pytest.raises(ConfigError, match="cpu_matmul must be one of auto, onednn, default, "
                       "found 'blas'"):
        estimate(SMALL, digits, tmp_path / "run", Execution(workers=1, cpu_matmul="blas"))
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(
    not (measure()["onednn_available"] and measure()["onednn_exact"]),
    reason="oneDNN does not compute float32 products exactly here",
)
def test_libraries_agree_on_correctness(digits, tmp_path):
    """oneDNN and the default library differ only by rounding, so trials agree."""
    config = TrialConfig(dataset="digits", hidden=(64,), trials=8, epochs=3, shard_size=4)
    runs = {
        library: estimate(config, digits, tmp_path / library,
                          Execution(workers=1, cpu_matmul=library)).read_trials()
        for library in ("default", "onednn")
    }
    default, onednn = runs["default"], runs["onednn"]
    assert np.array_equal(default.mask, onednn.mask)
    for split in ("train_correct", "test_correct"):
        agreement = (getattr(default, split) == getattr(onednn, split)).mean()
        assert agreement > 0.99, f"{split}: libraries agree on only {agreement:.4f}"


def test_resume_keeps_stored_library(digits, tmp_path):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1, cpu_matmul="default"))
    run.shard_path(2).unlink()
    estimate(SMALL, digits, tmp_path / "run", Execution(workers=1))
    execution = run.read_manifest()["execution"]
    assert execution["cpu_matmul"] == "default"
    assert execution["cpu_matmul_libraries"] == ["default"]


@pytest.mark.skipif(
    not (measure()["onednn_available"] and measure()["onednn_exact"]),
    reason="oneDNN does not compute float32 products exactly here",
)
def test_resume_with_other_library_recorded(digits, tmp_path, caplog):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1, cpu_matmul="default"))
    run.shard_path(2).unlink()
    estimate(SMALL, digits, tmp_path / "run", Execution(workers=1, cpu_matmul="onednn"))
    execution = run.read_manifest()["execution"]
    assert execution["cpu_matmul"] == "onednn"
    assert execution["cpu_matmul_libraries"] == ["default", "onednn"]
    assert "stored trials were trained with default products" in caplog.text


@pytest.mark.skipif(
    not (measure()["onednn_available"] and measure()["onednn_exact"]),
    reason="oneDNN does not compute float32 products exactly here",
)
def test_complete_rerun_keeps_library_record(digits, tmp_path, caplog):
    run = estimate(SMALL, digits, tmp_path / "run", Execution(workers=1, cpu_matmul="default"))
    before = run.read_manifest()["execution"]
    estimate(SMALL, digits, tmp_path / "run", Execution(workers=2, cpu_matmul="onednn"))

    assert run.read_manifest()["execution"] == before
    assert "stored trials were trained with" not in caplog.text
