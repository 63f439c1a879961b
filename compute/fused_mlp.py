"""One training step of a batched MLP with hand-written backward pass and SGD.

Autograd works, but on the CPU it leaves a third of the time outside the matrix
products: fresh gradient tensors, a separate weight-decay pass, ReLU masks on
transposed gradients. Here the weight decay rides in the gradient product (the
beta of baddbmm), the momentum buffer takes one fused pass, and every
elementwise step runs on contiguous tensors. The update equals
torch.optim.SGD(momentum, nesterov=True, weight_decay) with dampening 0;
tests compare it with a plain torch.optim loop.
"""

from __future__ import annotations

import torch

from compute.config import TrialConfig

# TODO: the elementwise passes around the products (row gather, bias, ReLU, the SGD
# update) hold the 784-256-10 MLP at about 59% of a 2-core CPU's matmul peak, short
# of 75%. Fusing them into fewer memory passes is the next step.

# Layers whose output is narrower than this run their products transposed, because
# MKL's batched product is slow when the output has few columns.
NARROW = 64


def _linear(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if weight.shape[2] < NARROW:
        out = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), a.transpose(1, 2))
        return out.transpose(1, 2)
    return torch.baddbmm(bias[:, None, :], a, weight)


def _weight_gradient(
    a: torch.Tensor, g: torch.Tensor, weight: torch.Tensor, decay: float, out: torch.Tensor
) -> torch.Tensor:
    """Write decay * weight + a^T g for every model, (B, fan_in, fan_out), into `out`.

    `out` is reused across steps: a fresh tensor of this size costs more than the
    product's own pass over it.
    """
    if weight.shape[2] < NARROW:
        transposed = out.view(weight.shape[0], weight.shape[2], weight.shape[1])
        torch.baddbmm(weight.transpose(1, 2), g.transpose(1, 2), a, beta=decay, out=transposed)
        return transposed.transpose(1, 2)
    return torch.baddbmm(weight, a.transpose(1, 2), g, beta=decay, out=out)


@torch.no_grad()
def mlp_sgd_step(
    params: list[torch.Tensor],
    velocities: list[torch.Tensor],
    buffers: list[torch.Tensor],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: TrialConfig,
    learning_rate: float,
) -> None:
    """Update every model's [W1, b1, W2, b2, ...] in place on its own minibatch.

    `inputs` is (B, batch, D) and `labels` (B, batch); the loss of each model is
    its mean cross-entropy over its minibatch. `buffers` has one tensor per weight
    matrix, of its shape, for the weight gradients.
    """
    layer_count = len(params) // 2
    activations = [inputs]
    for number in range(layer_count):
        z = _linear(activations[-1], params[2 * number], params[2 * number + 1])
        if number < layer_count - 1:
            z = torch.relu_(z.contiguous())
        activations.append(z)

    # Gradient of the mean cross-entropy with respect to the logits.
    g = torch.softmax(activations[-1], dim=2)
    g.scatter_add_(2, labels[:, :, None], torch.full_like(g[:, :, :1], -1.0))
    g.div_(inputs.shape[1])

    gradients: list[torch.Tensor] = [None] * len(params)  # type: ignore[list-item]
    for number in reversed(range(layer_count)):
        weight, bias = params[2 * number], params[2 * number + 1]
        a = activations[number]
        gradients[2 * number] = _weight_gradient(
            a, g, weight, config.weight_decay, buffers[number]
        )
        gradients[2 * number + 1] = torch.add(g.sum(dim=1), bias, alpha=config.weight_decay)
        if number > 0:
            # ReLU's backward pass: keep the gradient where the activation was positive.
            g = torch.ops.aten.threshold_backward(torch.bmm(g, weight.transpose(1, 2)), a, 0.0)

    for param, gradient, velocity in zip(params, gradients, velocities):
        # velocity = momentum * velocity + gradient, in one pass.
        torch.add(gradient, velocity, alpha=config.momentum, out=velocity)
        if config.momentum > 0:
            gradient = gradient.add_(velocity, alpha=config.momentum)
        param.add_(gradient, alpha=-learning_rate)
