"""A real run on real digits in which a few training labels are flipped."""

from __future__ import annotations

import numpy as np

from compute.config import TrialConfig
from compute.datasets import load_dataset
from compute.engine import Execution
from compute.estimate import estimate

FLIPPED = 12


def test_flipped_labels_rank_high(digits, tmp_path):
    rng = np.random.default_rng(0)
    flipped = rng.choice(digits.n_train, size=FLIPPED, replace=False)
    labels = digits.y_train.copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, size=FLIPPED)) % 10
    path = tmp_path / "digits-flipped.npz"
    np.savez(path, x_train=digits.x_train, y_train=labels, x_test=digits.x_test,
             y_test=digits.y_test)
    dataset = load_dataset(f"npz:{path}")

    # Digits subsets are small (1,007 examples), so memorizing a flipped label takes
    # more epochs than the default.
    config = TrialConfig(dataset=f"npz:{path}", trials=160, epochs=40, learning_rate=0.2,
                         shard_size=40)
    run = estimate(config, dataset, tmp_path / "run", Execution())
    estimates = run.read_estimates()
    mem = estimates["mem"]
    accuracy = run.read_manifest()["summary"]["model_test_accuracy_mean"]
    print(f"mean model test accuracy {accuracy:.4f}; mem of flipped {np.round(mem[flipped], 2)}")

    assert np.all(np.isfinite(mem))
    assert np.all((mem >= -1) & (mem <= 1))
    top = np.argsort(-mem)[: int(np.ceil(0.05 * len(mem)))]
    missed = sorted(set(flipped.tolist()) - set(top.tolist()))
    assert not missed, f"flipped examples {missed} are not in the top 5% by memorization"
    assert accuracy > 0.9
