"""Train a batch of models, each on its own subset, and record their correctness."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

from compute.config import TrialConfig
from compute.fused_mlp import (
    compiled_loops,
    fold_first_bias,
    mlp_sgd_step,
    training_layout,
    unfold_first_bias,
)
from compute.models import BatchedCNN, BatchedMLP
from compute.sgd import sgd_step
from compute.subsets import STREAM_INIT, STREAM_ORDER, torch_generator

logger = logging.getLogger(__name__)


@dataclass
class TrialData:
    """Model inputs and labels of both splits, already on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @cached_property
    def x_train_with_ones(self) -> torch.Tensor:
        """Return the (n, D) training inputs with a column of ones appended."""
        ones = self.x_train.new_ones(len(self.x_train), 1)
        return torch.cat([self.x_train, ones], dim=1)


@dataclass
class BatchOutcome:
    """Correctness of each model of a batch on every train and test example."""

    train_correct: np.ndarray  # (B, n) bool
    test_correct: np.ndarray  # (B, n') bool
    # False where training diverged: some weight is NaN or infinite.
    finite: np.ndarray  # (B,) bool


def minibatch_orders(
    config: TrialConfig, trials: list[int], m: int, attempts: list[int] | None = None
) -> list[torch.Tensor]:
    """Return, per epoch, a (B, m) tensor of positions into each model's subset."""
    attempts = attempts or [0] * len(trials)
    generators = [
        torch_generator(config.seed, trial, STREAM_ORDER, attempt)
        for trial, attempt in zip(trials, attempts)
    ]
    return [
        torch.stack([torch.randperm(m, generator=g) for g in generators])
        for _ in range(config.epochs)
    ]


def learning_rate_at(config: TrialConfig, step: int, total_steps: int) -> float:
    """Return the learning rate of a step: linear decay from the peak to 0."""
    return config.learning_rate * (1.0 - step / total_steps)


def initial_params(
    model: BatchedMLP | BatchedCNN,
    config: TrialConfig,
    trials: list[int],
    attempts: list[int] | None = None,
) -> list[torch.Tensor]:
    attempts = attempts or [0] * len(trials)
    generators = [
        torch_generator(config.seed, trial, STREAM_INIT, attempt)
        for trial, attempt in zip(trials, attempts)
    ]
    return model.init_params(generators)


def train_batch(
    model: BatchedMLP | BatchedCNN,
    params: list[torch.Tensor],
    data: TrialData,
    subsets: torch.Tensor,
    orders: list[torch.Tensor],
    config: TrialConfig,
) -> list[torch.Tensor]:
    """Train B models in place with SGD; model b trains only on rows `subsets[b]`.

    `subsets` is (B, m) on the data's device. The summed loss of all models gives
    each model the gradient of its own mean minibatch loss, because no parameter
    is shared between models.
    """
    device = data.x_train.device
    fused = isinstance(model, BatchedMLP)
    params = [p.to(device).requires_grad_(not fused) for p in params]
    x_train = data.x_train
    if fused:
        params = training_layout(fold_first_bias(params))
        x_train = data.x_train_with_ones
    velocities = [None if p is None else torch.zeros_like(p) for p in params]
    m = subsets.shape[1]
    loops = compiled_loops(params, velocities, min(m, config.batch_size)) if fused else None
    steps_per_epoch = math.ceil(m / config.batch_size)
    total_steps = steps_per_epoch * config.epochs

    # Every step's inputs are gathered into this one buffer: a fresh tensor per
    # step costs a page fault per page, which doubled the gather's time.
    input_buffer = x_train.new_empty(len(subsets) * min(m, config.batch_size), *x_train.shape[1:])
    step = 0
    for order in orders:
        rows = torch.gather(subsets, 1, order.to(device))
        for start in range(0, m, config.batch_size):
            batch_rows = rows[:, start : start + config.batch_size]
            learning_rate = learning_rate_at(config, step, total_steps)
            step += 1
            inputs = gather_rows(x_train, batch_rows, out=input_buffer[: batch_rows.numel()])
            if fused:
                mlp_sgd_step(
                    params, velocities, inputs, data.y_train[batch_rows], config, learning_rate,
                    loops,
                )
                continue
            logits = model.forward(params, inputs)
            labels = data.y_train[batch_rows]
            loss = F.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), reduction="sum"
            ) / batch_rows.shape[1]
            gradients = torch.autograd.grad(loss, params)
            sgd_step(params, gradients, velocities, config, learning_rate)
    if fused:
        params = unfold_first_bias(params)
    return [p.detach() for p in params]


def gather_rows(
    x: torch.Tensor, rows: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Return x[rows] for a (B, batch) index tensor: (B, batch, ...).

    index_select on the flat indices copies rows about six times faster on the
    CPU than advanced indexing with a 2-D index (PyTorch 2.13, measured). `out`,
    if given, is a contiguous (B * batch, ...) tensor that receives the rows.
    """
    if out is None:
        flat = x.index_select(0, rows.reshape(-1))
    else:
        flat = torch.index_select(x, 0, rows.reshape(-1), out=out)
    return flat.view(*rows.shape, *x.shape[1:])


@torch.no_grad()
def predict(
    model: BatchedMLP | BatchedCNN, params: list[torch.Tensor], x: torch.Tensor, chunk: int = 256
) -> torch.Tensor:
    """Return the predicted class (B, N) of every model on every input row."""
    chunks = model.logit_chunks(params, x, chunk)
    # max(...).indices, like argmax, takes the first of tied classes, and it is
    # several times faster than argmax over a last axis of ten classes.
    return torch.cat([logits.max(dim=2).indices for logits in chunks], dim=1)


def run_batch(
    model: BatchedMLP | BatchedCNN,
    data: TrialData,
    subsets: np.ndarray,
    trials: list[int],
    config: TrialConfig,
    attempts: list[int] | None = None,
) -> BatchOutcome:
    """Initialize, train and evaluate the models of the given trials together."""
    device = data.x_train.device
    params = initial_params(model, config, trials, attempts)
    orders = minibatch_orders(config, trials, subsets.shape[1], attempts)
    subset_rows = torch.from_numpy(subsets).to(device)
    params = train_batch(model, params, data, subset_rows, orders, config)
    train_correct = predict(model, params, data.x_train) == data.y_train
    test_correct = predict(model, params, data.x_test) == data.y_test
    finite = torch.stack([p.flatten(1).isfinite().all(dim=1) for p in params]).all(dim=0)
    return BatchOutcome(
        train_correct.cpu().numpy(), test_correct.cpu().numpy(), finite.cpu().numpy()
    )
