"""Compiled CPU loops for the parts of an MLP training step that are not large products.

On the CPU, a step of the 784-256-10 MLP spends most of its time in two products
of the first layer. Everything after the last hidden layer took about twenty
small PyTorch operations, each with its own dispatch and its own pass over
memory: ReLU, the 10-wide output layer, softmax cross-entropy, its gradient, the
output layer's update and the gradient that flows back. `output_layer_step` does
all of that in one pass over each row of the hidden layer. `nesterov_update` updates
a weight matrix and its velocity from its gradient in one pass, where PyTorch's
in-place operations took three.

Numba compiles each loop on its first call and caches the machine code on disk,
so later processes load it in a fraction of a second. The loops allow
reassociation of sums, so results equal PyTorch's up to rounding; NaN and
infinity propagate as they do in PyTorch, which divergence checks rely on.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Reassociation lets the compiler vectorize dot products. The flags "nnan" and
# "ninf" are left out, because a diverging model must still produce NaN or infinity.
FAST_MATH = {"reassoc", "contract", "nsz", "arcp"}


def _compiled(function):
    """Return `function` compiled by Numba, with its machine code cached on disk if possible.

    Numba caches beside the module or in the user's cache folder. Where neither
    is writable (a read-only install and no home folder), it raises RuntimeError,
    and the loop is compiled anew in each process instead.
    """
    try:
        return njit(cache=True, fastmath=FAST_MATH, nogil=True)(function)
    except RuntimeError:
        return njit(cache=False, fastmath=FAST_MATH, nogil=True)(function)


@_compiled
def output_layer_step(z, weight, bias, weight_velocity, bias_velocity, labels, lr, mu, decay):
    """Train the output layer of B models on one minibatch, all arrays in place.

    z (B, R, H) contains the last hidden layer before its ReLU. weight (B, C, H) and
    bias (B, C) are the output layer, stored with the class axis first, and the
    velocities have the same shapes. labels (B, R) are class indices. The loss is
    each model's mean cross-entropy over its R rows.

    The weight and bias take one step of SGD with Nesterov momentum mu and weight
    decay, as torch.optim.SGD(nesterov=True) with dampening 0. On return, z contains
    the gradient of the loss with respect to itself, computed with the weights
    before their step, for the layers below.
    """
    models, rows, width = z.shape
    classes = weight.shape[1]
    scale = np.float32(1.0) / np.float32(rows)
    zero = np.float32(0)
    weight_gradient = np.empty((classes, width), dtype=z.dtype)
    bias_gradient = np.empty(classes, dtype=z.dtype)
    g = np.empty(classes, dtype=z.dtype)
    lower = np.empty(width, dtype=z.dtype)
    for m in range(models):
        weight_gradient[:] = 0
        bias_gradient[:] = 0
        for r in range(rows):
            a = z[m, r]
            # ReLU as a product with the mask, because LLVM leaves a conditional
            # store unvectorized here (six times slower). NaN stays NaN, and -inf
            # turns into NaN rather than 0, which only a diverged model reaches.
            for h in range(width):
                a[h] *= a[h] > zero
            top = -np.inf
            for c in range(classes):
                s = bias[m, c]
                w = weight[m, c]
                for h in range(width):
                    s += a[h] * w[h]
                g[c] = s
                top = max(top, s)
            total = np.float32(0)
            for c in range(classes):
                g[c] = math.exp(g[c] - top)
                total += g[c]
            for c in range(classes):
                g[c] = g[c] / total * scale
            g[labels[m, r]] -= scale
            lower[:] = 0
            for c in range(classes):
                w = weight[m, c]
                dw = weight_gradient[c]
                bias_gradient[c] += g[c]
                for h in range(width):
                    dw[h] += g[c] * a[h]
                    lower[h] += g[c] * w[h]
            # ReLU's backward pass: keep the gradient where the activation was positive.
            for h in range(width):
                a[h] = lower[h] * (a[h] > zero)
        for c in range(classes):
            w, v, dw = weight[m, c], weight_velocity[m, c], weight_gradient[c]
            for h in range(width):
                full = dw[h] + decay * w[h]
                v[h] = mu * v[h] + full
                w[h] -= lr * (full + mu * v[h])
            full = bias_gradient[c] + decay * bias[m, c]
            bias_velocity[m, c] = mu * bias_velocity[m, c] + full
            bias[m, c] -= lr * (full + mu * bias_velocity[m, c])


@_compiled
def nesterov_update(weight, velocity, gradient, lr, mu, decay):
    """Apply one step of SGD with Nesterov momentum and weight decay, in place.

    All three arrays are contiguous and of one shape, and `gradient` is the loss
    gradient of `weight`. Equals torch.optim.SGD(nesterov=True) with dampening 0.
    """
    w = weight.reshape(-1)
    v = velocity.reshape(-1)
    g = gradient.reshape(-1)
    for i in range(w.size):
        full = g[i] + decay * w[i]
        v[i] = mu * v[i] + full
        w[i] -= lr * (full + mu * v[i])


def _compile() -> None:
    """Compile each loop for float32 arrays, or load it from numba's disk cache.

    Runs on import, so that the fork server of the CPU workers compiles once and
    every worker it forks starts with the machine code in memory.
    """
    f32 = np.float32
    z = np.zeros((1, 1, 2), dtype=f32)
    weight = np.zeros((1, 2, 2), dtype=f32)
    bias = np.zeros((1, 2), dtype=f32)
    labels = np.zeros((1, 1), dtype=np.int64)
    output_layer_step(z, weight, bias, weight.copy(), bias.copy(), labels, f32(0), f32(0), f32(0))
    nesterov_update(weight, weight.copy(), weight.copy(), f32(0), f32(0), f32(0))


_compile()
