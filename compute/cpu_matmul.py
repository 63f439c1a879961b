"""Choose which library computes float32 matrix products on the CPU.

PyTorch's x86 builds send float32 products to MKL. On AMD CPUs MKL runs its AVX2
kernels even where the cores execute full-width AVX-512 (Zen 5). oneDNN, which
PyTorch also ships, uses AVX-512 there and is twice as fast. On a 2-core AMD
EPYC (family 26) with PyTorch 2.13, 2048 x 2048 products on both cores ran at
226 GFLOP/s with MKL and 443 GFLOP/s with oneDNN (`benchmarks/trials.py`).

PyTorch 2.13 sends float32 products to oneDNN only when they may be computed in
bfloat16 (`torch.backends.mkldnn.matmul.fp32_precision = "bf16"`). That setting
allows oneDNN to round the inputs to bfloat16 but does not force it (oneDNN's
"floating-point math mode" guide), and on the Zen 5 machine above oneDNN kept
float32. Whether it rounds depends on its kernels for each CPU, so the engine
checks: oneDNN is used only where a probe finds every product form of the
engine accurate to float32 rounding.

MKL ran at AVX2 speed on both AMD CPUs with AVX-512 measured here (Zen 4 and
Zen 5). On Zen 4, whose AVX-512 units are half width, square products on one
core ran only 8% faster with oneDNN, under the 1.25x that `auto` requires of a
timing. The engine's mnist5k batches still trained 14% faster with it (6.9
against 6.0 models/s). So `auto` also takes oneDNN on any AMD CPU with AVX-512
where oneDNN is exact and not slower. That choice rests on the CPU's features
rather than on a close timing, and repeats from one run to the next.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from compute.config import CPU_MATMUL_CHOICES, ConfigError

logger = logging.getLogger(__name__)

# `auto` takes oneDNN only when it is at least this much faster, so that
# timing noise does not switch libraries on a machine where both are alike.
MIN_SPEEDUP = 1.25
# The value of PyTorch's setting under which float32 products go to oneDNN.
ONEDNN_PRECISION = "bf16"
# On an AMD CPU with AVX-512, `auto` takes oneDNN unless a timing finds it
# slower than this share of MKL's speed. The margin keeps timing noise out of
# the choice: Zen 4 measured 1.07 to 1.09.
MIN_SPEEDUP_AVX512 = 0.95
# Largest relative error that counts as float32 rounding. Float32 products of
# these sizes stay below 1e-6, and bfloat16 inputs alone cause about 4e-3.
FLOAT32_TOLERANCE = 1e-5


def _precision_setting():
    """Return PyTorch's oneDNN matmul settings object, or None if it has none."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(torch.backends.mkldnn, "matmul", None)


@contextmanager
def products_on(library: str) -> Iterator[None]:
    """Compute CPU float32 products with `library` in the block, then restore the setting.

    `library` "default" leaves the setting as it is, as `use_products_of` does.
    """
    setting = _precision_setting()
    previous = None if setting is None else setting.fp32_precision
    use_products_of(library)
    try:
        yield
    finally:
        if setting is not None:
            setting.fp32_precision = previous


def use_products_of(library: str) -> None:
    """Compute this process's CPU float32 products with oneDNN from now on, if `library` is it."""
    setting = _precision_setting()
    if library == "onednn" and setting is not None:
        setting.fp32_precision = ONEDNN_PRECISION


def onednn_active() -> bool:
    """Return whether CPU float32 products go to oneDNN in this process now."""
    setting = _precision_setting()
    return setting is not None and setting.fp32_precision == ONEDNN_PRECISION


def _relative_error(product: torch.Tensor, exact: torch.Tensor, scale: torch.Tensor) -> float:
    return float(((product.double() - exact).abs() / scale).max())


def _probe_error() -> float:
    """Return the largest relative error of oneDNN's products over the engine's forms.

    The forms are those of the trainer and the models: bmm and baddbmm with
    plain and transposed operands, baddbmm accumulating into its output, and addmm.
    Each error is relative to the product of the operands' magnitudes.
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(3, 37, 300, generator=generator)
    b = torch.randn(3, 300, 11, generator=generator)
    bias = torch.randn(3, 1, 11, generator=generator)
    exact = torch.bmm(a.double(), b.double())
    scale = torch.bmm(a.double().abs(), b.double().abs())

    errors = []
    with products_on("onednn"):
        errors.append(_relative_error(torch.bmm(a, b), exact, scale))
        transposed = torch.bmm(b.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)
        errors.append(_relative_error(transposed, exact, scale))
        with_bias = torch.baddbmm(bias, a, b)
        errors.append(_relative_error(with_bias, exact + bias.double(), scale + 1.0))
        accumulated = bias.expand(3, 37, 11).clone()
        torch.baddbmm(accumulated, a, b, beta=0.5, alpha=-2.0, out=accumulated)
        expected = 0.5 * bias.double() - 2.0 * exact
        errors.append(_relative_error(accumulated, expected, 2.0 * scale + 1.0))
        flat = torch.addmm(bias[0, 0], a[0], b[0])
        errors.append(_relative_error(flat, exact[0] + bias[0, 0].double(), scale[0] + 1.0))
    return max(errors)


def _rate(library: str, size: int = 512, repeats: int = 5) -> float:
    """Return the best of `repeats` timings of one size^3 product, in FLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    with products_on(library):
        a @ b
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def _cpu_vendor() -> str | None:
    """Return the CPU's vendor string from /proc/cpuinfo, or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        return None
    return None


def mkl_vectors_narrower() -> bool:
    """Return whether this is an AMD CPU with AVX-512, where MKL runs at AVX2 speed."""
    capability = torch.backends.cpu.get_cpu_capability()
    return capability.startswith("AVX512") and _cpu_vendor() == "AuthenticAMD"


@functools.cache
def measure() -> dict:
    """Probe oneDNN's accuracy and both libraries' single-thread speed, once per process."""
    if _precision_setting() is None:
        return {"onednn_available": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        error = _probe_error()
        rates = {library: _rate(library) for library in ("default", "onednn")}
    except (RuntimeError, ValueError) as failure:
        # A PyTorch version whose setting rejects the value cannot send products to oneDNN.
        logger.info("float32 products cannot go to oneDNN in this PyTorch: %s", failure)
        return {"onednn_available": False}
    finally:
        torch.set_num_threads(threads)
    return {
        "onednn_available": True,
        "onednn_relative_error": error,
        "onednn_exact": error <= FLOAT32_TOLERANCE,
        "default_gflops": rates["default"] / 1e9,
        "onednn_gflops": rates["onednn"] / 1e9,
        "mkl_vectors_narrower": mkl_vectors_narrower(),
    }


def describe(library: str) -> str:
    """Return a library's name for logs: "oneDNN" or "PyTorch's default library"."""
    return "oneDNN" if library == "onednn" else "PyTorch's default library"


def check_choice(choice: str) -> None:
    """Raise ConfigError unless `choice` is "auto", "onednn" or "default"."""
    if choice not in CPU_MATMUL_CHOICES:
        raise ConfigError(
            f"cpu_matmul must be one of {', '.join(CPU_MATMUL_CHOICES)}, found {choice!r}"
        )


def choose_library(choice: str) -> str:
    """Return "onednn" or "default" for a requested choice of "auto", "onednn" or "default".

    Raises ConfigError when oneDNN is requested but would not compute in float32 here.
    """
    check_choice(choice)
    if choice == "default":
        return "default"
    found = measure()
    if not found["onednn_available"]:
        if choice == "onednn":
            raise ConfigError(
                "cpu_matmul 'onednn' requested but this PyTorch build cannot send float32 "
                "products to oneDNN; use --cpu-matmul auto"
            )
        return "default"
    if not found["onednn_exact"]:
        message = (
            f"oneDNN's float32 products have relative error "
            f"{found['onednn_relative_error']:.1e} on this CPU (float32 keeps "
            f"{FLOAT32_TOLERANCE:.0e}), so it would round to bfloat16"
        )
        if choice == "onednn":
            raise ConfigError(f"{message}; use --cpu-matmul default or auto")
        logger.info("%s; products use PyTorch's default library", message)
        return "default"
    if choice == "onednn":
        logger.info(
            "oneDNN's float32 products: relative error %.1e against float64 (float32 keeps "
            "%.0e); using onednn", found["onednn_relative_error"], FLOAT32_TOLERANCE,
        )
        return "onednn"
    library = auto_library(found)
    logger.info(
        "float32 products on one core: PyTorch's default library %.0f GFLOP/s, oneDNN "
        "%.0f GFLOP/s%s; using %s",
        found["default_gflops"], found["onednn_gflops"],
        ", AVX-512 that MKL does not use" if found["mkl_vectors_narrower"] else "", library,
    )
    return library


def auto_library(found: dict) -> str:
    """Return the library that `auto` takes, given `measure()`'s findings for an exact oneDNN."""
    speedup = found["onednn_gflops"] / found["default_gflops"]
    if speedup >= MIN_SPEEDUP:
        return "onednn"
    if found["mkl_vectors_narrower"] and speedup >= MIN_SPEEDUP_AVX512:
        return "onednn"
    return "default"
