"""Typed settings of a run; the manifest stores them and a resumed run compares them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting, the value and the fix."""


# Libraries for the CPU's float32 matrix products, explained in compute.cpu_matmul.
CPU_MATMUL_CHOICES = ("auto", "onednn", "default")


@dataclass(frozen=True)
class TrialConfig:
    """Everything that decides the trials' outcomes.

    Execution choices (device, workers, models trained together) are left out on
    purpose: they change speed, not results, so a run may resume with other ones.
    """

    dataset: str = "mnist5k"
    model: str = "mlp"
    # Hidden layer widths of the MLP, input to output.
    hidden: tuple[int, ...] = (256,)
    # Output channels of the CNN's 3x3 convolutions; each is followed by 2x2 max pooling.
    channels: tuple[int, ...] = (16, 32)
    trials: int = 2000
    # Fraction of the training set in each trial's subset: m = round(ratio * n).
    subset_ratio: float = 0.7
    epochs: int = 10
    # Examples per minibatch of each model.
    batch_size: int = 128
    # Peak learning rate of SGD with Nesterov momentum; it decays linearly to 0.
    learning_rate: float = 0.15
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    # Trials per shard file: the unit of work that a resumed run skips once written.
    shard_size: int = 32

    def __post_init__(self) -> None:
        check_positive("trials", self.trials)
        check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size)
        check_positive("shard_size", self.shard_size)
        if not 0.0 < self.subset_ratio < 1.0:
            raise ConfigError(
                f"subset_ratio must lie strictly between 0 and 1, found {self.subset_ratio}; "
                "0.7 is the usual choice"
            )
        if self.model not in ("mlp", "cnn"):
            raise ConfigError(f"model must be 'mlp' or 'cnn', found {self.model!r}")
        # Written so that NaN fails each check, as it fails every comparison.
        if not 0 < self.learning_rate < math.inf:
            raise ConfigError(
                f"learning_rate must be positive and finite, found {self.learning_rate}"
            )
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must lie in [0, 1), found {self.momentum}")
        if not 0 <= self.weight_decay < math.inf:
            raise ConfigError(
                f"weight_decay must be >= 0 and finite, found {self.weight_decay}"
            )
        if self.weight_decay * self.learning_rate >= 1:
            raise ConfigError(
                f"weight_decay times learning_rate must be below 1, found "
                f"{self.weight_decay} x {self.learning_rate}: each step would flip the "
                "weights' sign; lower either"
            )
        for name in ("hidden", "channels"):
            widths = getattr(self, name)
            if not widths or any(int(width) <= 0 for width in widths):
                raise ConfigError(f"{name} must be positive integers, found {widths}")

    def subset_size(self, n_train: int) -> int:
        """Return m, the number of training examples in each trial's subset."""
        size = round(self.subset_ratio * n_train)
        if not 0 < size < n_train:
            raise ConfigError(
                f"subset_ratio {self.subset_ratio} of {n_train} training examples gives "
                f"subsets of {size}, which leaves no example in or none out; pick another ratio"
            )
        return size

    def to_dict(self) -> dict:
        values = asdict(self)
        values["hidden"] = list(self.hidden)
        values["channels"] = list(self.channels)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrialConfig:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        values = dict(values)
        for name in ("hidden", "channels"):
            if name in values:
                values[name] = tuple(int(width) for width in values[name])
        return cls(**values)


def check_positive(name: str, value: int) -> int:
    """Return `value` if it is a positive int, else raise naming the setting."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, found {value!r}")
    if value <= 0:
        raise ConfigError(f"{name} must be positive, found {value}")
    return value
