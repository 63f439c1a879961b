"""One training step of a batched MLP with hand-written backward pass and SGD.

Autograd works, but on the CPU it leaves a third of the time outside the matrix
products: fresh gradient tensors, a separate weight-decay pass, ReLU masks on
transposed gradients. Here each weight gradient is accumulated by its matrix
product straight into the momentum buffer, and the update takes three
elementwise passes (see `_update_weight`). The result equals
torch.optim.SGD(momentum, nesterov=True, weight_decay) with dampening 0 up to
rounding; tests compare it with a plain torch.optim loop.

On the CPU, two parts run as compiled loops (compute/cpu_kernels.py): the
output layer with its loss and update, and the update of each weight matrix
from its gradient, in one pass instead of three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from compute.config import TrialConfig
from compute.sgd import sgd_step

# TODO: on digits (64-256-10) the engine reaches 40 to 60% of the peak, because
# the compiled output layer runs far below it: about 46 GFLOP/s on both a Xeon
# core (peak 215) and a Zen 4 core (peak 110). On the Xeon, a model trains in
# 12.0 ms at 21 models per batch, and the output layer takes 4.2 ms of that.

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


def _linear(
    a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return a @ weight + bias per model, as a transposed view for a narrow output.

    `out`, used only for a wide output, is a contiguous tensor of the result's shape.
    """
    if _is_narrow(weight):
        if bias is None:
            return torch.bmm(weight.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)
        out = torch.baddbmm(bias[:, :, None], weight.transpose(1, 2), a.transpose(1, 2))
        return out.transpose(1, 2)
    if bias is None:
        return torch.bmm(a, weight, out=out)
    return torch.baddbmm(bias[:, None, :], a, weight, out=out)


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
    arrays: WeightArrays | None = None,
) -> None:
    """Apply Nesterov SGD with weight decay to `weight`, whose loss gradient is a^T g.

    Given `arrays` (CPU only), the product writes a^T g to their gradient buffer
    and one compiled pass updates the weight and its velocity. Otherwise, with
    G = a^T g + d W (d the weight decay), torch.optim.SGD computes
        v' = mu v + G,    W' = W - lr (G + mu v') = W - lr (1 + mu) v' + lr mu v.
    Four in-place lines give the same without materializing G:
        W  += lr mu v                                  (W now contains W + lr mu v)
        v  += d / (mu (1 - d lr)) W
        v   = mu (1 - d lr) v + a^T g                  (in the matrix product)
        W  -= lr (1 + mu) v
    The second and third lines expand to mu v + d (W + lr mu v) - d lr mu v = v'.
    Each line but the product is one pass over two tensors.
    """
    mu, decay, lr = config.momentum, config.weight_decay, learning_rate
    if mu == 0:
        # Plain SGD: W' = (1 - lr d) W - lr a^T g, all inside the product.
        _accumulate_gradient(weight, a, g, beta=1.0 - lr * decay, alpha=-lr)
        return
    if arrays is not None:
        from compute.cpu_kernels import nesterov_update

        torch.bmm(a.transpose(1, 2), g, out=arrays.gradient_tensor)
        nesterov_update(
            arrays.weight, arrays.velocity, arrays.gradient,
            np.float32(lr), np.float32(mu), np.float32(decay),
        )
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


@dataclass
class WeightArrays:
    """NumPy views of one weight matrix, its velocity and its gradient buffer."""

    weight: np.ndarray
    velocity: np.ndarray
    gradient: np.ndarray
    gradient_tensor: torch.Tensor


@dataclass
class CompiledLoops:
    """Buffers and NumPy views that let `mlp_sgd_step` run its compiled CPU loops.

    The views share memory with the training state, so the loops update it in
    place. They are made once per batch, like one output buffer per hidden layer
    that every step reuses.
    """

    # Per entry of params: the update's arrays for a contiguous weight matrix.
    weights: list[WeightArrays | None]
    # The output layer's weight, bias and their velocities, class axis first, or
    # None where the output layer runs in PyTorch.
    output: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None
    # Per hidden layer: a flat buffer for its output, or None for a narrow one.
    hidden: list[torch.Tensor | None]


def compiled_loops(
    params: list[torch.Tensor | None],
    velocities: list[torch.Tensor | None],
    rows: int,
) -> CompiledLoops | None:
    """Return the state that turns on the compiled CPU loops of `mlp_sgd_step`.

    `rows` is the largest number of minibatch rows per model. Returns None where
    the loops do not apply: off the CPU, or for weights other than float32.
    """
    first = params[0]
    if first.device.type != "cpu" or first.dtype != torch.float32:
        return None
    weights: list[WeightArrays | None] = []
    for number, param in enumerate(params):
        if number % 2 == 1 or param is None or not param.is_contiguous():
            weights.append(None)
            continue
        gradient = torch.empty_like(param)
        weights.append(WeightArrays(
            param.numpy(), velocities[number].numpy(), gradient.numpy(), gradient
        ))
    output = None
    if _compiled_output_layer(params):
        output = (
            params[-2].transpose(1, 2).numpy(), params[-1].numpy(),
            velocities[-2].transpose(1, 2).numpy(), velocities[-1].numpy(),
        )
    hidden = [
        None if _is_narrow(weight) else weight.new_empty(len(weight) * rows * weight.shape[2])
        for weight in params[0:-2:2]
    ]
    return CompiledLoops(weights, output, hidden)


def _compiled_output_layer(params: list[torch.Tensor | None]) -> bool:
    """Return whether the output layer can run as a compiled loop.

    The loop needs a hidden layer below the output layer, and the output
    weights stored class axis first, as `training_layout` stores narrow layers.
    """
    weight = params[-2]
    return len(params) >= 4 and _is_narrow(weight) and weight.transpose(1, 2).is_contiguous()


def _softmax_gradient(logits_view: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return the gradient of the mean cross-entropy with respect to the logits.

    Softmax over the class axis of a (B, classes, batch) tensor is fast. Over a
    last axis of ten classes it takes twenty times longer.
    """
    logits = logits_view.transpose(1, 2).contiguous()
    g = torch.softmax(logits, dim=1)
    g.scatter_add_(1, labels[:, None, :], torch.full_like(g[:, :1, :], -1.0))
    g.div_(labels.shape[1])
    return g.transpose(1, 2)


@torch.no_grad()
def mlp_sgd_step(
    params: list[torch.Tensor | None],
    velocities: list[torch.Tensor | None],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: TrialConfig,
    learning_rate: float,
    loops: CompiledLoops | None = None,
) -> None:
    """Update every model's [W1, b1, W2, b2, ...] in place on its own minibatch.

    `inputs` is (B, batch, D) and `labels` (B, batch); the loss of each model is
    its mean cross-entropy over its minibatch. `params` are in `training_layout`
    and `velocities` are zeros_like them at the start. A bias may be None when
    its layer's weights carry it (see `fold_first_bias`). `loops`, from
    `compiled_loops`, turns on the compiled CPU loops. Without it, every
    operation stays in PyTorch, as on a GPU.
    """
    layer_count = len(params) // 2
    hidden_count = layer_count - 1
    models, rows = labels.shape
    output_compiled = loops is not None and loops.output is not None
    activations = [inputs]
    for number in range(hidden_count if output_compiled else layer_count):
        weight = params[2 * number]
        out = None
        if loops is not None and number < hidden_count and loops.hidden[number] is not None:
            size = models * rows * weight.shape[2]
            out = loops.hidden[number][:size].view(models, rows, weight.shape[2])
        z = _linear(activations[-1], weight, params[2 * number + 1], out)
        if number < hidden_count:
            z = z.contiguous()
            if not (output_compiled and number == hidden_count - 1):
                torch.relu_(z)
        activations.append(z)

    if output_compiled:
        from compute.cpu_kernels import output_layer_step

        # The loop applies the last hidden layer's ReLU, trains the output
        # layer, and leaves in z the gradient with respect to z itself.
        z = activations[-1]
        output_layer_step(
            z.numpy(), *loops.output, labels.numpy(),
            np.float32(learning_rate), np.float32(config.momentum),
            np.float32(config.weight_decay),
        )
        g, top = z, hidden_count - 1
    else:
        g, top = _softmax_gradient(activations[-1], labels), hidden_count

    for number in reversed(range(top + 1)):
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
        _update_weight(
            weight, velocities[2 * number], a, g, config, learning_rate,
            loops.weights[2 * number] if loops is not None else None,
        )
        g = lower
