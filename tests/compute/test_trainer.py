"""The batched trainer against a plain one-model PyTorch loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compute.config import TrialConfig
from compute.cpu_matmul import measure, products_on
from compute.models import build_model, pixel_statistics, prepare_inputs
from compute.subsets import draw_subset
from compute.trainer import (
    TrialData,
    initial_params,
    learning_rate_at,
    minibatch_orders,
    predict,
    train_batch,
)


def plain_training(module, data, subset, orders, config):
    """Train one nn.Module with torch.optim.SGD on its own minibatches, as scripts do."""
    optimizer = torch.optim.SGD(
        module.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        nesterov=config.momentum > 0,  # PyTorch refuses Nesterov without momentum
        weight_decay=config.weight_decay,
    )
    m = len(subset)
    total = -(-m // config.batch_size) * config.epochs
    step = 0
    for order in orders:
        rows = subset[order]
        for start in range(0, m, config.batch_size):
            batch = rows[start : start + config.batch_size]
            loss = F.cross_entropy(module(data.x_train[batch]), data.y_train[batch])
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(config, step, total)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    return module


def onednn_exact() -> bool:
    found = measure()
    return found["onednn_available"] and found["onednn_exact"]


# The batched trainer runs with each library that `auto` may pick; the plain
# reference loop always runs with PyTorch's default one.
LIBRARIES = [
    "default",
    pytest.param("onednn", marks=pytest.mark.skipif(
        not onednn_exact(), reason="oneDNN does not compute float32 products exactly here"
    )),
]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(
    "config",
    [
        TrialConfig(dataset="digits", model="mlp", hidden=(64, 32), epochs=3, batch_size=50),
        TrialConfig(dataset="digits", model="mlp", hidden=(64,), epochs=5, momentum=0.0),
        TrialConfig(dataset="digits", model="cnn", channels=(8, 16), epochs=2, batch_size=64),
    ],
    ids=["mlp", "mlp-no-momentum", "cnn"],
)
def test_batched_trainer_matches_plain_loop(digits, config, library):
    torch.manual_seed(0)
    mean, std = pixel_statistics(digits.x_train)
    data = TrialData(
        prepare_inputs(digits.x_train, config.model, mean, std),
        torch.from_numpy(digits.y_train),
        prepare_inputs(digits.x_test, config.model, mean, std),
        torch.from_numpy(digits.y_test),
    )
    model = build_model(config, digits.image_shape, digits.num_classes)
    trials = [0, 1, 2]
    m = config.subset_size(digits.n_train)
    subsets = np.stack([draw_subset(config.seed, t, digits.n_train, m) for t in trials])
    start = initial_params(model, config, trials)
    orders = minibatch_orders(config, trials, m)

    with products_on(library):
        trained = train_batch(
            model, [p.clone() for p in start], data, torch.from_numpy(subsets), orders, config
        )
        batched_logits = model.forward(trained, data.x_test)
        predicted = predict(model, trained, data.x_test)

    for k in trials:
        module = model.plain_module(start, k)
        subset = torch.from_numpy(subsets[k])
        plain_training(module, data, subset, [order[k] for order in orders], config)
        with torch.no_grad():
            plain_logits = module(data.x_test)
        assert torch.allclose(batched_logits[k], plain_logits, atol=2e-4, rtol=1e-4), (
            f"model {k}: max logit difference "
            f"{(batched_logits[k] - plain_logits).abs().max().item():.2e}"
        )
        assert torch.equal(batched_logits[k].argmax(1), plain_logits.argmax(1))

    assert torch.equal(predicted, batched_logits.argmax(2))
    accuracy = (predicted == data.y_test).float().mean().item()
    assert accuracy > 0.8, f"batched models reach only {accuracy:.3f} test accuracy"


@pytest.mark.parametrize("library", LIBRARIES)
def test_batched_models_are_independent(digits, library):
    """A model's result does not depend on which other models share its batch."""
    config = TrialConfig(dataset="digits", hidden=(32,), epochs=1)
    mean, std = pixel_statistics(digits.x_train)
    data = TrialData(
        prepare_inputs(digits.x_train, "mlp", mean, std),
        torch.from_numpy(digits.y_train),
        prepare_inputs(digits.x_test, "mlp", mean, std),
        torch.from_numpy(digits.y_test),
    )
    model = build_model(config, digits.image_shape, digits.num_classes)
    m = config.subset_size(digits.n_train)

    def train(trials):
        subsets = np.stack([draw_subset(config.seed, t, digits.n_train, m) for t in trials])
        with products_on(library):
            params = train_batch(
                model, initial_params(model, config, trials), data,
                torch.from_numpy(subsets), minibatch_orders(config, trials, m), config,
            )
            return model.forward(params, data.x_test)

    together = train([5, 6, 7])
    alone = train([6])
    assert torch.allclose(together[1], alone[0], atol=1e-5)
