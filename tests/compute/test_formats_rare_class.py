"""A class with one training example: subsets without it still train K-way models."""

from __future__ import annotations

import numpy as np

from compute.config import TrialConfig
from compute.datasets import load_dataset
from compute.models import build_model
from compute.rundir import RunDir
from tests.conftest import run_longtail

RARE = 3


def write_rare_class_npz(digits, path) -> int:
    """Save 20 training digits each of 0-2 plus one of digit 3; return the rare index."""
    keep_train = np.concatenate(
        [np.flatnonzero(digits.y_train == label)[:20] for label in range(RARE)]
    )
    rare = np.flatnonzero(digits.y_train == RARE)[0]
    keep_train = np.append(keep_train, rare)
    keep_test = np.flatnonzero(digits.y_test <= RARE)
    np.savez(
        path,
        x_train=digits.x_train[keep_train],
        y_train=digits.y_train[keep_train],
        x_test=digits.x_test[keep_test],
        y_test=digits.y_test[keep_test],
        class_names=np.array(["zero", "one", "two", "three"]),
    )
    return len(keep_train) - 1


def test_rare_class_model_width(digits, tmp_path):
    path = tmp_path / "rare.npz"
    write_rare_class_npz(digits, path)
    dataset = load_dataset(f"npz:{path}")
    assert dataset.num_classes == 4
    assert np.bincount(dataset.y_train).tolist()[RARE] == 1
    for model in ("mlp", "cnn"):
        config = TrialConfig(dataset=f"npz:{path}", model=model)
        assert build_model(config, dataset.image_shape, dataset.num_classes).num_classes == 4


def test_rare_class_run_without_it(digits, tmp_path):
    path = tmp_path / "rare.npz"
    rare_index = write_rare_class_npz(digits, path)
    out = tmp_path / "run"
    run_longtail(
        "estimate", "--dataset", f"npz:{path}", "--trials", "16", "--epochs", "20",
        "--batch-size", "16", "--subset-ratio", "0.5", "--shard-size", "8", "--workers", "1", "--out", str(out),
    )

    run = RunDir(out)
    outcomes = run.read_trials()
    dataset = run.load_dataset()
    held_out = ~outcomes.mask[:, rare_index]
    # Trials whose subset has no example of the rare class at all.
    assert 0 < held_out.sum() < len(held_out)

    # Models that never saw the class never predict it; models that did, memorize it.
    rare_test = dataset.y_test == RARE
    assert outcomes.test_correct[np.ix_(held_out, rare_test)].sum() == 0
    assert outcomes.train_correct[~held_out, rare_index].mean() >= 0.75
    estimates = run.read_estimates()
    assert estimates["mem"][rare_index] >= 0.75
