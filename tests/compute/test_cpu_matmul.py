"""Choice of the library for CPU float32 products, and the accuracy it relies on."""

from __future__ import annotations

import pytest
import torch

from compute.config import ConfigError
from compute.cpu_matmul import (
    FLOAT32_TOLERANCE,
    auto_library,
    choose_library,
    measure,
    onednn_active,
    products_on,
)

EXACT = measure()["onednn_available"] and measure()["onednn_exact"]


def relative_error(product: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
    """Return max |product - a b| / (|a| |b|), both products per model in float64."""
    exact = torch.bmm(a.double(), b.double())
    scale = torch.bmm(a.double().abs(), b.double().abs())
    return float(((product.double() - exact).abs() / scale).max())


def test_tolerance_catches_bfloat16_inputs():
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(2, 64, 200, generator=generator)
    b = torch.randn(2, 200, 16, generator=generator)
    rounded = torch.bmm(a.bfloat16().float(), b.bfloat16().float())
    assert relative_error(rounded, a, b) > 10 * FLOAT32_TOLERANCE
    assert relative_error(torch.bmm(a, b), a, b) < FLOAT32_TOLERANCE / 10


@pytest.mark.skipif(not EXACT, reason="oneDNN does not compute float32 products exactly here")
@pytest.mark.parametrize(
    "models, rows, fan_in, fan_out",
    [(11, 128, 65, 256), (4, 128, 785, 256), (11, 128, 256, 10), (3, 97, 300, 7)],
    ids=["digits-first", "mnist-first", "narrow-output", "odd-sizes"],
)
def test_onednn_keeps_float32_on_engine_shapes(models, rows, fan_in, fan_out):
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(models, rows, fan_in, generator=generator)
    b = torch.randn(models, fan_in, fan_out, generator=generator)
    # Stored transposed, as the trainer stores a narrow layer's momentum buffer.
    start = torch.randn(models, fan_out, rows, generator=generator).transpose(1, 2)
    accumulated = start.clone(memory_format=torch.preserve_format)
    with products_on("onednn"):
        plain = torch.bmm(a, b)
        transposed = torch.bmm(b.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)
        torch.baddbmm(accumulated, a, b, beta=0.5, out=accumulated)
    assert relative_error(plain, a, b) < FLOAT32_TOLERANCE
    assert relative_error(transposed, a, b) < FLOAT32_TOLERANCE
    assert relative_error(accumulated - 0.5 * start, a, b) < FLOAT32_TOLERANCE


def test_products_on_restores_setting():
    assert not onednn_active()
    with pytest.raises(RuntimeError), products_on("onednn"):
        raise RuntimeError("inside the block")
    assert not onednn_active()
    with products_on("default"):
        assert not onednn_active()


@pytest.mark.skipif(not EXACT, reason="oneDNN does not compute float32 products exactly here")
def test_products_on_onednn_activates():
    with products_on("onednn"):
        assert onednn_active()


def test_choose_library_default_and_invalid():
    assert choose_library("default") == "default"
    assert choose_library("auto") in ("default", "onednn")
    with pytest.raises(ConfigError, match="auto, onednn, default, found 'blas'"):
        choose_library("blas")


@pytest.mark.parametrize(
    "default_gflops, onednn_gflops, narrower, expected",
    [
        (113.0, 233.0, True, "onednn"),   # Zen 5: MKL at half width
        (104.0, 113.0, True, "onednn"),   # Zen 4: faster, under 1.25x
        (104.0, 96.0, True, "default"),   # oneDNN measured slower
        (67.0, 68.0, False, "default"),   # Zen 2: no AVX-512, alike
        (100.0, 130.0, False, "onednn"),  # any CPU, 1.3x faster
    ],
    ids=["zen5", "zen4", "avx512-slower", "zen2", "faster-elsewhere"],
)
def test_auto_library_rule(default_gflops, onednn_gflops, narrower, expected):
    found = {"default_gflops": default_gflops, "onednn_gflops": onednn_gflops,
             "mkl_vectors_narrower": narrower}
    assert auto_library(found) == expected
