"""`longtail estimate` as a user meets it: option errors, run files, warnings, progress."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys

import numpy as np
import pytest

from backend.cli.progress import ProgressLog
from compute.config import TrialConfig
from compute.engine import Execution
from compute.estimate import _warn_if_near_chance, estimate
from tests.conftest import REPO, run_longtail

TINY = ["--dataset", "digits", "--hidden", "32", "--trials", "8", "--epochs", "1",
        "--shard-size", "8", "--workers", "1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--lr", "-0.1"], "--lr must be positive and finite, found -0.1"),
        (["--weight-decay", "nan"], "--weight-decay must be >= 0 and finite, found nan"),
        (["--lr", "3000"], "--weight-decay times --lr must be below 1, found 0.0005 x 3000.0"),
        (["--momentum", "1"], "--momentum must lie in [0, 1), found 1.0"),
        (["--subset-ratio", "0"], "--subset-ratio must lie strictly between 0 and 1, found 0.0"),
        (["--workers", "0"], "argument --workers: expected a positive integer, found 0"),
        (["--models-per-batch", "x"], "argument --models-per-batch: expected a positive integer"),
        (["--cpu-matmul", "mkl"], (
            "argument --cpu-matmul: invalid choice: 'mkl' (choose from 'auto', 'onednn', "
            "'default')"
        )),
    ],
)
def test_bad_option_named_by_flag(tmp_path, options, message):
    result = run_longtail("estimate", *TINY, *options, "--out", str(tmp_path / "run"),
                          check=False)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_worker_warnings_keep_log_format(tmp_path):
    """Warnings from worker processes carry the time, level and logger, like the command's."""
    options = [
        "--dataset", "digits", "--hidden", "32", "--trials", "8", "--epochs", "1",
        "--shard-size", "4", "--workers", "2", "--lr", "1e12", "--weight-decay", "0",
    ]
    result = run_longtail("estimate", *options, "--out", str(tmp_path / "run"), check=False)

    assert result.returncode == 2
    assert "diverged (non-finite weights) in 3 draws" in result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying with draw" in line]
    assert retries
    for line in retries:
        assert re.match(r"\d\d:\d\d:\d\d WARNING compute\.engine: trial \d+ diverged", line), line


def test_channels_with_mlp_warns(tmp_path):
    result = run_longtail("estimate", *TINY, "--channels", "4,8", "--out", str(tmp_path / "run"))

    assert "--channels is ignored: it sets the CNN's convolutions" in result.stderr


def test_out_that_is_a_file_rejected(tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("kept\n")
    result = run_longtail("estimate", *TINY, "--out", str(out), check=False)

    assert result.returncode == 2
    assert f"{out} is a file, not a run directory; pass a directory path to --out" in (
        result.stderr
    )
    assert out.read_text() == "kept\n"


def test_run_files_follow_umask(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "estimate", *TINY, "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert result.returncode == 0, result.stderr

    files = sorted(path for path in out.rglob("*") if path.is_file())
    assert {path.name for path in files} >= {
        "manifest.json", "estimates.npz", "influence.npy", "influence_se.npy",
        "shard-000000.npz",
    }
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, f"{path} has mode {path.stat().st_mode:o}"


def test_near_chance_accuracy_warns(digits, tmp_path, caplog):
    # A learning rate of 100 throws every model to a constant prediction.
    config = TrialConfig(dataset="digits", hidden=(32,), trials=8, epochs=1, shard_size=8,
                         learning_rate=100.0)
    with caplog.at_level(logging.WARNING, logger="compute.estimate"):
        estimate(config, digits, tmp_path / "run", Execution(workers=1))

    warnings = [record.getMessage() for record in caplog.records
                if record.name == "compute.estimate"]
    assert len(warnings) == 1
    assert "the accuracy of always predicting the most common test class" in warnings[0]
    assert "the models barely learned" in warnings[0]
    assert "check --lr (too high diverges) and --epochs" in warnings[0]


def test_single_test_label_warns_accuracy_uninformative(caplog):
    with caplog.at_level(logging.WARNING, logger="compute.estimate"):
        _warn_if_near_chance(0.0, np.array([3, 3]), ["cat", "dog", "emu", "fox"])

    expected = (
        "all 2 test examples are of class 'fox', so the test accuracy cannot tell whether "
        "the models learned; give the test split examples of several classes"
    )
    assert [record.getMessage() for record in caplog.records] == [expected]


def test_class_without_training_examples_warns(digits, tmp_path, caplog):
    extra = type(digits)(
        name=digits.name, x_train=digits.x_train, y_train=digits.y_train,
        x_test=digits.x_test, y_test=digits.y_test, class_names=[*digits.class_names, "extra"],
    )
    config = TrialConfig(dataset="digits", hidden=(32,), trials=8, epochs=1, shard_size=8)
    with caplog.at_level(logging.WARNING, logger="compute.estimate"):
        estimate(config, extra, tmp_path / "run", Execution(workers=1))

    assert "1 class(es) have no training examples" in caplog.text
    assert "nearly every trial: 'extra'" in caplog.text


def test_learning_models_do_not_warn(digits, tmp_path, caplog):
    config = TrialConfig(dataset="digits", hidden=(32,), trials=8, epochs=2, shard_size=8)
    with caplog.at_level(logging.WARNING, logger="compute.estimate"):
        run = estimate(config, digits, tmp_path / "run", Execution(workers=1))

    assert run.read_manifest()["summary"]["model_test_accuracy_mean"] > 0.5
    assert not [record for record in caplog.records if record.name == "compute.estimate"]


def test_progress_log_reports_rate_and_time_left(caplog):
    times = iter([100.0, 110.0, 115.0, 130.0])
    progress = ProgressLog(
        "trials", total=100, unit="model", interval=10.0, clock=lambda: next(times)
    )

    with caplog.at_level(logging.INFO, logger="backend.cli.progress"):
        progress.update(20)  # resumed with 20 stored: the rate starts here
        progress.update(40)  # 10 s later: due
        progress.update(45)  # 5 s after the last line: not due
        progress.update(100)  # finished: always logged

    assert [record.getMessage() for record in caplog.records] == [
        "trials: 40 of 100 done, 2.00 model/s, 30 s left",
        "trials: 100 of 100 done, 2.67 model/s, 0 s left",
    ]
