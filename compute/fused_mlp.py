"""One training step of a batched MLP with hand-written backward pass and SGD.

Autograd works, but on the CPU it leaves a third of the time outside the matrix
products: fresh gradient tensors, a separate weight-decay pass, ReLU masks on
transposed gradients. Here each weight gradient is accumulated by its matrix
product straight into the momentum buffer, and the update takes three
elementwise passes (see `_update_weight`). The result equals
torch.optim.SGD(momentum, nesterov=True, weight_decay) with dampening 0 up to
rounding; tests compare it with a plain torch.optim loop.
"""

from __future__ import annotations

import torch

from compute.config import TrialConfig
from compute.sgd import sgd_step

# TODO: on digits (64-256-10) the first layer's products run at the matmul peak
# but take only 40% of a batch. The 10-wide output layer (about 20%), the
# elementwise passes (about 15%) and evaluation (about 8%) take most of the rest,
# which keeps the engine near half of the oneDNN peak (2-core EPYC, 11 models per
# batch).

# Layers whose output is narrower than this run their products transposed, because
# MKL's batched product is slow when the output has few columns.
NARROW = 64


def _is_narrow(weight: torch.Tensor) -> bool:
    return weight.shape[2] < NARROW


def fold_first_bias(params: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """Return [W1 with b1 as its last input row, None, W2, b2, ...].

    With a column of ones appended to the inputs, the first layer's product adds
    the bias, and its weight-gradient product yields the bias gradient. That saves
    a separate bias's passes over the first hidden layer (4% of a digits step).
    Weight decay and momentum treat the bias row as torch.optim.SGD treats a bias.
    """
    weight, bias = params[0], params[1]
    return [torch.cat([weight, bias[:, None, :]], dim=1), None, *params[2:]]


def unfold_first_bias(params: list[torch.Tensor | None]) -> list[torch.Tensor]:
    """Return [W1, b1, W2, b2, ...] from the form that `fold_first_bias` returns."""
    folded = params[0]
    return [folded[:, :-1, :].contiguous(), folded[:, -1, :].contiguous(), *params[2:]]


def training_layout(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Return [W1, b1, W2, b2, ...] with each narrow layer's weights stored transposed.

    The tensors keep their shapes, (B, fan_in, fan_out). Only a narrow layer's
    memory order becomes (B, fan_out, fan_in), the layout of its transposed
    products. Its gradient product then writes the momentum buffer in place, and
    the update passes run over contiguous memory. Buffers made with
    torch.zeros_like keep this layout.
    """
    return [
        param.transpose(1, 2).contiguous().transpose(1, 2)
        if param is not None and number % 2 == 0 and _is_narrow(param) else param
        for number, param in enumerate(params)
    ]


def _linear(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Return a @ weight + bias per model; a narrow output is a transposed view."""
    if _is_narrow(weight):
        if bias is None:
            return torch.bmm(weight.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)
        out = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), a.transpose(1, 2))
        return out.transpose(1, 2)
    if bias is None:
        return torch.bmm(a, weight)
    return torch.baddbmm(bias[:, None, :], a, weight)


def _accumulate_gradient(
    target: torch.Tensor, a: torch.Tensor, g: torch.Tensor, beta: float, alpha: float = 1.0
) -> None:
    """Set target = beta * target + alpha * a^T g for every model, in place."""
    if _is_narrow(target):
        stored = target.transpose(1, 2)
        torch.baddbmm(stored, g.transpose(1, 2), a, beta=beta, alpha=alpha, out=stored)
    else:
        torch.baddbmm(target, a.transpose(1, 2), g, beta=beta, alpha=alpha, out=target)


def _update_weight(
    weight: torch.Tensor,
    velocity: torch.Tensor,
    a: torch.Tensor,
    g: torch.Tensor,
    config: TrialConfig,
    learning_rate: float,
) -> None:
    """Apply Nesterov SGD with weight decay to `weight`, whose loss gradient is a^T g.

    With G = a^T g + d W (d the weight decay), torch.optim.SGD computes
        v' = mu v + G,    W' = W - lr (G + mu v') = W - lr (1 + mu) v' + lr mu v.
    Four in-place lines give the same without materializing G:
        W  += lr mu v                                  (W now contains W + lr mu v)
        v  += d / (mu (1 - d lr)) W
        v   = mu (1 - d lr) v + a^T g                  (in the matrix product)
        W  -= lr (1 + mu) v
    The second and third lines expand to mu v + d (W + lr mu v) - d lr mu v = v'.
    Each line but the product is one pass over two tensors. Computing G first
    takes a gradient buffer, a copy of W into it, and the same three passes.
    """
    mu, decay, lr = config.momentum, config.weight_decay, learning_rate
    if mu == 0:
        # Plain SGD: W' = (1 - lr d) W - lr a^T g, all inside the product.
        _accumulate_gradient(weight, a, g, beta=1.0 - lr * decay, alpha=-lr)
        return
    shrink = 1.0 - decay * lr  # positive: TrialConfig keeps decay * lr below 1
    weight.add_(velocity, alpha=lr * mu)
    velocity.add_(weight, alpha=decay / (mu * shrink))
    _accumulate_gradient(velocity, a, g, beta=mu * shrink)
    weight.add_(velocity, alpha=-lr * (1.0 + mu))


def _update_bias(
    bias: torch.Tensor, velocity: torch.Tensor, gradient: torch.Tensor,
    config: TrialConfig, learning_rate: float,
) -> None:
    """Apply Nesterov SGD with weight decay to a bias, given its loss gradient."""
    sgd_step([bias], [gradient], [velocity], config, learning_rate)


@torch.no_grad()
def mlp_sgd_step(
    params: list[torch.Tensor | None],
    velocities: list[torch.Tensor | None],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: TrialConfig,
    learning_rate: float,
) -> None:
    """Update every model's [W1, b1, W2, b2, ...] in place on its own minibatch.

    `inputs` is (B, batch, D) and `labels` (B, batch); the loss of each model is
    its mean cross-entropy over its minibatch. `params` are in `training_layout`
    and `velocities` are zeros_like them at the start. A bias may be None when
    its layer's weights carry it (see `fold_first_bias`).
    """
    layer_count = len(params) // 2
    activations = [inputs]
    for number in range(layer_count):
        z = _linear(activations[-1], params[2 * number], params[2 * number + 1])
        if number < layer_count - 1:
            z = torch.relu_(z.contiguous())
        activations.append(z)

    # Gradient of the mean cross-entropy with respect to the logits. Softmax over
    # the class axis of a (B, classes, batch) tensor is fast; over a last axis of
    # ten classes it takes twenty times longer.
    logits = activations[-1].transpose(1, 2).contiguous()
    g = torch.softmax(logits, dim=1)
    g.scatter_add_(1, labels[:, None, :], torch.full_like(g[:, :1, :], -1.0))
    g.div_(inputs.shape[1])
    g = g.transpose(1, 2)

    for number in reversed(range(layer_count)):
        weight, bias = params[2 * number], params[2 * number + 1]
        a = activations[number]
        lower = None
        if number > 0:
            # ReLU's backward pass, through the weights before their update: keep
            # the gradient where the activation was positive.
            lower = torch.bmm(g, weight.transpose(1, 2))
            torch.ops.aten.threshold_backward.grad_input(lower, a, 0.0, grad_input=lower)
        if bias is not None:
            _update_bias(bias, velocities[2 * number + 1], g.sum(dim=1), config, learning_rate)
        _update_weight(weight, velocities[2 * number], a, g, config, learning_rate)
        g = lower
