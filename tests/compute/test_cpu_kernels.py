"""The compiled CPU loops of the MLP step against the same step in PyTorch alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from compute.config import TrialConfig
from compute.fused_mlp import (
    compiled_loops,
    fold_first_bias,
    mlp_sgd_step,
    training_layout,
)
from compute.models import BatchedMLP


def fresh_state(widths: tuple[int, ...], models: int, seed: int = 0):
    generators = [torch.Generator().manual_seed(seed + k) for k in range(models)]
    params = BatchedMLP(widths[0], widths[1:-1], widths[-1]).init_params(generators)
    # Nonzero biases, so that their updates are checked too.
    for number in range(1, len(params), 2):
        params[number] = torch.randn(params[number].shape, generator=generators[0]) * 0.1
    params = training_layout(fold_first_bias(params))
    velocities = [None if p is None else torch.zeros_like(p) for p in params]
    return params, velocities


def batch(widths: tuple[int, ...], models: int, rows: int = 32):
    generator = torch.Generator().manual_seed(99)
    inputs = torch.randn(models, rows, widths[0] + 1, generator=generator)
    inputs[..., -1] = 1.0  # the column that carries the first layer's bias
    labels = torch.randint(0, widths[-1], (models, rows), generator=generator)
    return inputs, labels


@pytest.mark.parametrize(
    "widths, config, rows",
    [
        # Weight decay large enough that a wrong decay term would show.
        ((30, 256, 10), TrialConfig(dataset="digits", weight_decay=0.01), 32),
        ((30, 64, 32, 10), TrialConfig(dataset="digits", weight_decay=0.01), 32),
        ((30, 48, 7), TrialConfig(dataset="digits", momentum=0.0, weight_decay=0.01), 32),
        # 100 classes: the output layer is wide, so only the update runs compiled.
        ((30, 80, 100), TrialConfig(dataset="digits", momentum=0.5, weight_decay=0.01), 32),
        # Rows and classes that do not fill the output loops' blocks of four.
        ((30, 256, 10), TrialConfig(dataset="digits", weight_decay=0.01), 31),
        ((30, 40, 3), TrialConfig(dataset="digits", weight_decay=0.01), 30),
    ],
    ids=["one-hidden", "narrow-hidden", "no-momentum", "wide-output", "odd-rows", "three-classes"],
)
def test_compiled_steps_match_pytorch(widths, config, rows):
    models = 3
    inputs, labels = batch(widths, models, rows)
    compiled_params, compiled_velocities = fresh_state(widths, models)
    plain_params, plain_velocities = fresh_state(widths, models)
    loops = compiled_loops(compiled_params, compiled_velocities, rows=rows)
    assert loops is not None
    # Few steps: over many, a ReLU that flips on a rounding difference would
    # make the two runs drift apart for reasons other than a wrong loop.
    for step in range(4):
        learning_rate = 0.1 * (1 - step / 4)
        mlp_sgd_step(
            compiled_params, compiled_velocities, inputs, labels, config, learning_rate, loops
        )
        mlp_sgd_step(plain_params, plain_velocities, inputs, labels, config, learning_rate)

    initial, _ = fresh_state(widths, models)
    for number, (before, after) in enumerate(zip(initial, plain_params)):
        assert before is None or not torch.equal(before, after), f"param {number} never changed"

    pairs = list(zip(compiled_params, plain_params))
    if config.momentum > 0:  # without momentum, PyTorch's path leaves velocities unused
        pairs += zip(compiled_velocities, plain_velocities)
    for number, (compiled, plain) in enumerate(pairs):
        if plain is None:
            continue
        scale = max(plain.abs().max().item(), 1.0)
        difference = (compiled - plain).abs().max().item()
        assert difference <= 1e-5 * scale, (
            f"tensor {number}: compiled and PyTorch steps differ by {difference:.2e}"
        )


def test_nan_stays_in_its_own_model():
    """A model whose inputs contain NaN ends with NaN weights, and its batch mates stay finite."""
    widths = (30, 256, 10)
    config = TrialConfig(dataset="digits")
    inputs, labels = batch(widths, models=2)
    inputs[1, 3, 5] = float("nan")
    params, velocities = fresh_state(widths, models=2)
    plain_params, plain_velocities = fresh_state(widths, models=2)
    loops = compiled_loops(params, velocities, rows=32)
    for _ in range(2):
        mlp_sgd_step(params, velocities, inputs, labels, config, 0.1, loops)
        mlp_sgd_step(plain_params, plain_velocities, inputs, labels, config, 0.1)

    for param, plain in zip(params, plain_params):
        if param is None:
            continue
        assert not param[1].isfinite().all(), "NaN inputs left a model's weights finite"
        assert param[0].isfinite().all()
        assert torch.allclose(param[0], plain[0], atol=1e-5)


def test_no_loops_for_float64():
    params, velocities = fresh_state((30, 16, 10), models=2)
    doubles = [p.double() if p is not None else None for p in params]
    assert compiled_loops(doubles, velocities, rows=32) is None


# One output-layer step at 112 and at 31 rows, where freshly compiled and cached
# machine code once rounded differently, as a digest of every array it changes.
STEP_DIGEST = """
import hashlib
import numpy as np
from compute.cpu_kernels import output_layer_step

digest = hashlib.sha256()
rng = np.random.default_rng(0)
for rows in (112, 31):
    z = rng.standard_normal((2, rows, 256)).astype(np.float32)
    weight = (rng.standard_normal((2, 10, 256)) * 0.05).astype(np.float32)
    bias = (rng.standard_normal((2, 10)) * 0.1).astype(np.float32)
    velocities = np.full_like(weight, 0.01), np.full_like(bias, 0.01)
    labels = rng.integers(0, 10, (2, rows))
    scalars = np.float32(0.1), np.float32(0.9), np.float32(5e-4)
    output_layer_step(z, weight, bias, *velocities, labels, *scalars)
    for array in (z, weight, bias, *velocities):
        digest.update(array.tobytes())
print(digest.hexdigest())
"""


def test_cached_loops_round_as_fresh_ones(tmp_path):
    """The first run after installing, which compiles the loops, equals later runs bit for bit."""
    cache = tmp_path / "numba-cache"
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    repository = Path(__file__).resolve().parents[2]

    def digest() -> str:
        result = subprocess.run(
            [sys.executable, "-c", STEP_DIGEST], cwd=repository, env=environment,
            capture_output=True, text=True, check=True,
        )
        return result.stdout.strip()

    fresh = digest()
    assert any(cache.rglob("*.nbc")), "Numba wrote no machine code to its cache"
    cached = digest()
    assert fresh == cached
