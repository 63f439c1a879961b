"""Compiled CPU loops for the parts of an MLP training step that are not large products.

On the CPU, a step of the 784-256-10 MLP spends most of its time in two products
of the first layer. Everything after the last hidden layer took about twenty
small PyTorch operations, each with its own dispatch and its own pass over
memory: ReLU, the 10-wide output layer, softmax cross-entropy, its gradient, the
output layer's update and the gradient that flows back. `output_layer_step` does
all of that in five compiled passes over each model's minibatch. `nesterov_update` updates
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


def _part(function):
    """Return `function` compiled by Numba to be inlined into the loops that call it.

    A compiled loop that called another one as a function ran different machine
    code when freshly compiled than when loaded from the disk cache, and rounded
    differently, so the first run after installing differed from later ones.
    Inlined, each loop is one function, compiled the same way both times.
    """
    return njit(fastmath=FAST_MATH, nogil=True, inline="always")(function)


# Rows, or classes, that the output loops take together. Each value loaded then
# feeds four products instead of one. On a 2-core Xeon with AVX-512, a step of
# 128 rows, 256 hidden units and 10 classes took 39 to 44 us instead of 49 to 56.
BLOCK = 4


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
    g = np.empty((rows, classes), dtype=z.dtype)
    weight_gradient = np.empty((classes, width), dtype=z.dtype)
    lower = np.empty(width, dtype=z.dtype)
    for m in range(models):
        a = z[m]
        _relu(a)
        _logits(a, weight[m], bias[m], g)
        _softmax_gradient(g, labels[m])
        _weight_gradient(a, g, weight_gradient)
        _lower_gradient(a, weight[m], g, lower)
        for c in range(classes):
            w, v, dw = weight[m, c], weight_velocity[m, c], weight_gradient[c]
            for h in range(width):
                full = dw[h] + decay * w[h]
                v[h] = mu * v[h] + full
                w[h] -= lr * (full + mu * v[h])
            full = g[:, c].sum() + decay * bias[m, c]
            bias_velocity[m, c] = mu * bias_velocity[m, c] + full
            bias[m, c] -= lr * (full + mu * bias_velocity[m, c])


@_part
def _relu(a):
    """Apply ReLU to the rows of a (R, H) in place."""
    zero = np.float32(0)
    for r in range(a.shape[0]):
        row = a[r]
        # A product with the mask, because LLVM leaves a conditional store
        # unvectorized here (six times slower). NaN stays NaN, and -inf turns
        # into NaN rather than 0, which only a diverged model reaches.
        for h in range(row.shape[0]):
            row[h] *= row[h] > zero


@_part
def _logits(a, weight, bias, out):
    """Set out (R, C) to a @ weight.T + bias, for a (R, H) and weight (C, H)."""
    rows, width = a.shape
    zero = np.float32(0)
    blocked = rows - rows % BLOCK
    for r in range(0, blocked, BLOCK):
        a0, a1, a2, a3 = a[r], a[r + 1], a[r + 2], a[r + 3]
        for c in range(weight.shape[0]):
            w = weight[c]
            s0 = s1 = s2 = s3 = zero
            for h in range(width):
                s0 += a0[h] * w[h]
                s1 += a1[h] * w[h]
                s2 += a2[h] * w[h]
                s3 += a3[h] * w[h]
            out[r, c] = s0 + bias[c]
            out[r + 1, c] = s1 + bias[c]
            out[r + 2, c] = s2 + bias[c]
            out[r + 3, c] = s3 + bias[c]
    for r in range(blocked, rows):
        row = a[r]
        for c in range(weight.shape[0]):
            w = weight[c]
            s = zero
            for h in range(width):
                s += row[h] * w[h]
            out[r, c] = s + bias[c]


@_part
def _softmax_gradient(g, labels):
    """Turn logits g (R, C) in place into the gradient of the mean cross-entropy."""
    rows, classes = g.shape
    scale = np.float32(1.0) / np.float32(rows)
    for r in range(rows):
        row = g[r]
        top = row.max()
        total = np.float32(0)
        for c in range(classes):
            row[c] = math.exp(row[c] - top)
            total += row[c]
        factor = scale / total
        for c in range(classes):
            row[c] *= factor
        row[labels[r]] -= scale


@_part
def _weight_gradient(a, g, out):
    """Set out (C, H) to g.T @ a, for a (R, H) and g (R, C)."""
    rows = a.shape[0]
    out[:] = 0
    blocked = rows - rows % BLOCK
    for r in range(0, blocked, BLOCK):
        a0, a1, a2, a3 = a[r], a[r + 1], a[r + 2], a[r + 3]
        for c in range(out.shape[0]):
            g0, g1, g2, g3 = g[r, c], g[r + 1, c], g[r + 2, c], g[r + 3, c]
            d = out[c]
            for h in range(d.shape[0]):
                d[h] += g0 * a0[h] + g1 * a1[h] + g2 * a2[h] + g3 * a3[h]
    for r in range(blocked, rows):
        row = a[r]
        for c in range(out.shape[0]):
            gc, d = g[r, c], out[c]
            for h in range(d.shape[0]):
                d[h] += gc * row[h]


@_part
def _lower_gradient(a, weight, g, lower):
    """Replace each row of a (R, H) with (g @ weight)[row] where a > 0, else 0.

    That is ReLU's backward pass of the gradient g (R, C) through weight (C, H).
    lower is an (H,) scratch buffer.
    """
    rows, width = a.shape
    classes = weight.shape[0]
    zero = np.float32(0)
    blocked = classes - classes % BLOCK
    for r in range(rows):
        row, q = a[r], g[r]
        lower[:] = 0
        for c in range(0, blocked, BLOCK):
            w0, w1, w2, w3 = weight[c], weight[c + 1], weight[c + 2], weight[c + 3]
            g0, g1, g2, g3 = q[c], q[c + 1], q[c + 2], q[c + 3]
            for h in range(width):
                lower[h] += g0 * w0[h] + g1 * w1[h] + g2 * w2[h] + g3 * w3[h]
        for c in range(blocked, classes):
            gc, w = q[c], weight[c]
            for h in range(width):
                lower[h] += gc * w[h]
        for h in range(width):
            row[h] = lower[h] * (row[h] > zero)


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
