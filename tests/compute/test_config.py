"""Settings of a run are checked when they are made, with messages that name the fix."""

from __future__ import annotations

import pytest

from compute.config import ConfigError, TrialConfig


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"trials": 0}, "trials must be positive, found 0"),
        ({"epochs": 2.5}, "epochs must be an integer, found 2.5"),
        ({"subset_ratio": 1.0}, "subset_ratio must lie strictly between 0 and 1, found 1.0"),
        ({"model": "resnet"}, "model must be 'mlp' or 'cnn', found 'resnet'"),
        ({"learning_rate": 0.0}, "learning_rate must be positive and finite, found 0.0"),
        ({"learning_rate": float("nan")}, "learning_rate must be positive and finite, found nan"),
        ({"learning_rate": float("inf")}, "learning_rate must be positive and finite, found inf"),
        ({"momentum": 1.0}, "momentum must lie in [0, 1), found 1.0"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0 and finite, found -0.0001"),
        ({"weight_decay": float("nan")}, "weight_decay must be >= 0 and finite, found nan"),
        (
            {"weight_decay": 0.5, "learning_rate": 2.0},
            "weight_decay times learning_rate must be below 1, found 0.5 x 2.0",
        ),
        ({"hidden": (256, 0)}, "hidden must be positive integers, found (256, 0)"),
    ],
)
def test_bad_setting_is_rejected_by_name(settings, message):
    with pytest.raises(ConfigError) as caught:
        TrialConfig(**settings)
    assert str(caught.value).startswith(message)


def test_subset_size_needs_example_out():
    with pytest.raises(ConfigError, match="gives subsets of 10, which leaves no example"):
        TrialConfig(subset_ratio=0.99).subset_size(10)
