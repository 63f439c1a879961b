"""Batched models: the weights of B models stacked on a leading axis.

Each model keeps its own weights and trains on its own minibatches, but one batched
matrix product (or one grouped convolution) runs all of them, which is what makes
thousands of small trials affordable. `plain_module` rebuilds one model as an
ordinary `torch.nn.Module`, the reference that tests compare against.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from compute.config import TrialConfig
from compute.cpu_matmul import onednn_active


def prepare_inputs(images: np.ndarray, model: str, mean: float, std: float) -> torch.Tensor:
    """Turn uint8 (N, H, W, C) images into normalized float32 model inputs.

    The MLP takes flat vectors (N, H*W*C); the CNN takes (N, C, H, W).
    """
    x = torch.from_numpy(images).float().div_(255.0).sub_(mean).div_(std)
    if model == "mlp":
        return x.reshape(len(images), -1).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()


def pixel_statistics(images: np.ndarray) -> tuple[float, float]:
    """Return the mean and standard deviation of pixel values scaled to [0, 1]."""
    scaled = images.astype(np.float64) / 255.0
    return float(scaled.mean()), float(max(scaled.std(), 1e-6))


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound


@dataclass(frozen=True)
class BatchedMLP:
    """Fully connected ReLU network: in_features -> hidden... -> num_classes."""

    in_features: int
    hidden: tuple[int, ...]
    num_classes: int

    @property
    def widths(self) -> list[int]:
        return [self.in_features, *self.hidden, self.num_classes]

    def init_params(self, generators: list[torch.Generator]) -> list[torch.Tensor]:
        """Return [W1, b1, W2, b2, ...], each stacked over one generator per model.

        Weights take He-uniform draws (bound sqrt(6 / fan_in)) except the output
        layer, which takes bound 1 / sqrt(fan_in); biases start at zero.
        """
        params = []
        layers = list(zip(self.widths[:-1], self.widths[1:]))
        for number, (fan_in, fan_out) in enumerate(layers):
            last = number == len(layers) - 1
            bound = 1.0 / math.sqrt(fan_in) if last else math.sqrt(6.0 / fan_in)
            weight = torch.stack([_uniform((fan_in, fan_out), bound, g) for g in generators])
            params += [weight, torch.zeros(len(generators), fan_out)]
        return params

    def forward(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Return logits (B, N, K) for inputs (B, N, D), or (N, D) shared by all models."""
        if x.dim() == 2:
            return torch.cat(list(self.logit_chunks(params, x, max(1, len(x)))), dim=1)
        return self._layers(params, x, first=0)

    def logit_chunks(
        self, params: list[torch.Tensor], x: torch.Tensor, chunk: int
    ) -> Iterator[torch.Tensor]:
        """Yield logits (B, rows, K) of successive chunks of rows of x (N, D), shared by all models.

        The models' first-layer weights are laid side by side once, so that each
        chunk takes one wide matrix product, bias included. Each model's rows of
        the result stay a strided view. With hidden layers, every chunk's wide
        product reuses one buffer: a fresh one of this size costs a page fault
        per page, which doubled the evaluation time (64-256-10, 11 models).
        """
        weight, bias = params[0], params[1]
        batch, fan_in, fan_out = weight.shape
        wide_weight = weight.permute(1, 0, 2).reshape(fan_in, batch * fan_out)
        hidden = len(params) > 2
        buffer = x.new_empty(min(chunk, len(x)), batch * fan_out) if hidden else None
        for start in range(0, len(x), chunk):
            rows = x[start : start + chunk]
            if hidden:
                wide = torch.addmm(bias.reshape(-1), rows, wide_weight, out=buffer[: len(rows)])
                wide.relu_()
            else:
                # The logits themselves: each chunk needs its own tensor.
                wide = torch.addmm(bias.reshape(-1), rows, wide_weight)
            yield self._layers(params, wide.view(-1, batch, fan_out).transpose(0, 1), first=1)

    def _layers(self, params: list[torch.Tensor], h: torch.Tensor, first: int) -> torch.Tensor:
        """Apply layers `first`, `first` + 1, ... to per-model inputs h (B, N, fan_in)."""
        layer_count = len(params) // 2
        for number in range(first, layer_count):
            weight, bias = params[2 * number], params[2 * number + 1]
            if weight.shape[2] < 64 and not (h.device.type == "cpu" and onednn_active()):
                # A narrow output is faster computed transposed: MKL's batched
                # product is slow when the output has few columns. oneDNN's is
                # 3.6x faster without the transposes (64-256-10, 11 models).
                h = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), h.transpose(1, 2))
                h = h.transpose(1, 2)
            else:
                h = torch.baddbmm(bias[:, None, :], h, weight)
            if number < layer_count - 1:
                h = torch.relu_(h)
        return h

    def plain_module(self, params: list[torch.Tensor], k: int) -> nn.Module:
        """Return model k alone as an nn.Sequential with copies of its weights."""
        layers: list[nn.Module] = []
        for number in range(len(params) // 2):
            weight, bias = params[2 * number][k], params[2 * number + 1][k]
            linear = nn.Linear(weight.shape[0], weight.shape[1])
            with torch.no_grad():
                linear.weight.copy_(weight.T)
                linear.bias.copy_(bias)
            layers += [linear, nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    def training_flops_per_example(self) -> int:
        """Count matrix-product FLOPs of one example's forward and backward pass.

        Forward and weight gradient cost 2 * fan_in * fan_out each. The input
        gradient costs the same again for every layer but the first, because the
        input itself needs no gradient.
        """
        total = 0
        for number, (fan_in, fan_out) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            total += (4 if number == 0 else 6) * fan_in * fan_out
        return total

    def inference_flops_per_example(self) -> int:
        return sum(2 * a * b for a, b in zip(self.widths[:-1], self.widths[1:]))


@dataclass(frozen=True)
class BatchedCNN:
    """3x3 convolutions with ReLU and 2x2 max pooling, then one linear layer."""

    in_channels: int
    height: int
    width: int
    channels: tuple[int, ...]
    num_classes: int

    def _feature_size(self) -> tuple[int, int, int]:
        height, width = self.height, self.width
        for _ in self.channels:
            height, width = height // 2, width // 2
        if height == 0 or width == 0:
            raise ValueError(
                f"{len(self.channels)} pooling stages shrink {self.height}x{self.width} "
                "images to nothing; use fewer CNN channels entries"
            )
        return self.channels[-1], height, width

    def init_params(self, generators: list[torch.Generator]) -> list[torch.Tensor]:
        """Return [conv1 weight, conv1 bias, ..., head weight, head bias], stacked per model."""
        params = []
        fan_channels = self.in_channels
        for out_channels in self.channels:
            bound = math.sqrt(6.0 / (fan_channels * 9))
            weight = torch.stack(
                [_uniform((out_channels, fan_channels, 3, 3), bound, g) for g in generators]
            )
            params += [weight, torch.zeros(len(generators), out_channels)]
            fan_channels = out_channels
        features = math.prod(self._feature_size())
        bound = 1.0 / math.sqrt(features)
        head = torch.stack([_uniform((features, self.num_classes), bound, g) for g in generators])
        params += [head, torch.zeros(len(generators), self.num_classes)]
        return params

    def logit_chunks(
        self, params: list[torch.Tensor], x: torch.Tensor, chunk: int
    ) -> Iterator[torch.Tensor]:
        """Yield logits (B, rows, K) of successive chunks of rows of x, shared by all models."""
        for start in range(0, len(x), chunk):
            yield self.forward(params, x[start : start + chunk])

    def forward(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Return logits (B, N, K) for inputs (B, N, C, H, W), or (N, C, H, W) shared."""
        batch = params[0].shape[0]
        if x.dim() == 5:
            # Models become groups of one convolution: (N, B*C, H, W) with groups=B.
            count = x.shape[1]
            h = x.transpose(0, 1).reshape(count, batch * x.shape[2], *x.shape[3:])
            first_groups = batch
        else:
            count = x.shape[0]
            h = x
            first_groups = 1
        for number in range(len(self.channels)):
            weight, bias = params[2 * number], params[2 * number + 1]
            groups = first_groups if number == 0 else batch
            h = F.conv2d(h, weight.flatten(0, 1), bias.flatten(), padding=1, groups=groups)
            h = F.max_pool2d(torch.relu(h), 2)
        features = h.reshape(count, batch, -1).transpose(0, 1)
        head, head_bias = params[-2], params[-1]
        return torch.baddbmm(head_bias[:, None, :], features, head)

    def plain_module(self, params: list[torch.Tensor], k: int) -> nn.Module:
        """Return model k alone as an nn.Sequential with copies of its weights."""
        layers: list[nn.Module] = []
        for number in range(len(self.channels)):
            weight, bias = params[2 * number][k], params[2 * number + 1][k]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)
            layers += [conv, nn.ReLU(), nn.MaxPool2d(2)]
        head = nn.Linear(params[-2].shape[1], params[-2].shape[2])
        with torch.no_grad():
            head.weight.copy_(params[-2][k].T)
            head.bias.copy_(params[-1][k])
        return nn.Sequential(*layers, nn.Flatten(), head)

    def _conv_flops(self) -> list[int]:
        flops = []
        height, width, fan_channels = self.height, self.width, self.in_channels
        for out_channels in self.channels:
            flops.append(2 * fan_channels * out_channels * 9 * height * width)
            height, width, fan_channels = height // 2, width // 2, out_channels
        return flops

    def training_flops_per_example(self) -> int:
        """Count convolution and product FLOPs of one example's forward and backward pass."""
        convs = self._conv_flops()
        head = 2 * math.prod(self._feature_size()) * self.num_classes
        return 2 * convs[0] + 3 * sum(convs[1:]) + 3 * head

    def inference_flops_per_example(self) -> int:
        return sum(self._conv_flops()) + 2 * math.prod(self._feature_size()) * self.num_classes


def build_model(
    config: TrialConfig, image_shape: tuple[int, int, int], num_classes: int
) -> BatchedMLP | BatchedCNN:
    """Return the batched model that `config.model` names."""
    height, width, channels = image_shape
    if config.model == "mlp":
        return BatchedMLP(height * width * channels, tuple(config.hidden), num_classes)
    return BatchedCNN(channels, height, width, tuple(config.channels), num_classes)


def bytes_per_model(
    model: BatchedMLP | BatchedCNN, batch_size: int, eval_chunk: int
) -> tuple[int, int]:
    """Estimate the bytes one model of a batch needs: (training state, activations).

    Training state is the float32 weights, their momentum buffers and their
    gradients, which autograd keeps for the CNN and the MLP's compiled CPU update
    keeps in buffers. Activations cover one minibatch's forward and backward pass
    and one evaluation chunk. This is an estimate that ignores allocator overhead.
    """
    params = model.init_params([torch.Generator().manual_seed(0)])
    weights = sum(p.numel() for p in params)
    if isinstance(model, BatchedMLP):
        per_example = model.in_features + 3 * sum(model.hidden) + 3 * model.num_classes
    else:
        per_example = model.in_channels * model.height * model.width
        height, width = model.height, model.width
        for out_channels in model.channels:
            per_example += 4 * out_channels * height * width
            height, width = height // 2, width // 2
        per_example += 3 * model.num_classes
    activations = (batch_size + eval_chunk) * per_example
    return 4 * 3 * weights, 4 * activations
