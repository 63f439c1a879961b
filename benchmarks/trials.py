"""Trial engine against a plain one-model-at-a-time PyTorch loop, side by side.

For each case (dataset, architecture, epochs) this measures, in one run:
- the fp32 matrix-product peak of the machine: one single-threaded process per
  usable core, each multiplying square matrices of 512, 1024 and 2048 rows,
  rates summed. It is taken with each library that computes float32 products
  on the machine: PyTorch's default (MKL on x86), and oneDNN where it stays float32
  (compute/cpu_matmul.py). The peak is the largest rate of any size and library;
- the trial engine (`compute.engine.run_trials`, default execution), timed from
  the call, which forks and sets up its worker processes, to its return;
- a plain loop as research scripts write it: one process with PyTorch's default
  threads, an nn.Module, a shuffling DataLoader over the subset, torch.optim.SGD.
  Its speed moves by a fifth between rounds, so it runs several rounds and the
  fastest counts. On the CPU a second plain loop uses oneDNN, for reference.
It prints models per second, achieved training FLOP/s and its fraction of the peak,
where a model's FLOPs are the matrix products of training it and of evaluating it
on every train and test example. The ratio "engine / plain loop" divides by the
plain loop on PyTorch's default library, the way research scripts run.
`--json FILE` also writes every figure to FILE.

    .venv/bin/python benchmarks/trials.py                 # both cases
    .venv/bin/python benchmarks/trials.py --case mnist5k  # one case
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compute.config import TrialConfig
from compute.cpu_matmul import measure, products_on, use_products_of
from compute.datasets import load_dataset
from compute.engine import Execution, run_trials
from compute.models import build_model, pixel_statistics, prepare_inputs
from compute.rundir import RunDir
from compute.subsets import draw_subset
from compute.trainer import initial_params, learning_rate_at
from compute.workers import start_worker_server, usable_cores, worker_context

CASES = {
    # name: (config, engine trials, plain-loop models per round). Each side runs for
    # 4 to 30 s, so one slow second on a shared machine moves a ratio little.
    "mnist5k": (TrialConfig(dataset="mnist5k", hidden=(256,), epochs=10), 384, 6),
    "digits": (TrialConfig(dataset="digits", hidden=(256,), epochs=10), 1024, 24),
}
PLAIN_ROUNDS = 3


PEAK_SIZES = (512, 1024, 2048)


def _matmul_rates(seconds: float, library: str, queue) -> None:
    torch.set_num_threads(1)
    use_products_of(library)
    rates = {}
    for size in PEAK_SIZES:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            a @ b
            count += 1
        rates[size] = 2 * size**3 * count / (time.perf_counter() - started)
    queue.put(rates)


def matmul_peak(library: str, seconds: float = 2.0) -> dict[int, float]:
    """Return, per matrix size, the summed fp32 FLOP/s of one single-threaded process per core.

    The processes multiply square matrices of each size in PEAK_SIZES in step,
    because the fastest size differs between CPUs and libraries.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_matmul_rates, args=(seconds, library, queue))
        for _ in range(usable_cores())
    ]
    for process in processes:
        process.start()
    rates = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return {size: sum(rate[size] for rate in rates) for size in PEAK_SIZES}


def cuda_tf32_peak(size: int = 8192, repeats: int = 50) -> float:
    torch.backends.cuda.matmul.allow_tf32 = True
    a = torch.randn(size, size, device="cuda")
    b = torch.randn(size, size, device="cuda")
    a @ b
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def model_flops(config: TrialConfig, dataset) -> float:
    """Return the matrix-product FLOPs of training and evaluating one trial's model."""
    model = build_model(config, dataset.image_shape, dataset.num_classes)
    m = config.subset_size(dataset.n_train)
    return (
        m * config.epochs * model.training_flops_per_example()
        + (dataset.n_train + dataset.n_test) * model.inference_flops_per_example()
    )


def engine_rate(config: TrialConfig, dataset, trials: int, device: str) -> dict:
    config = TrialConfig(**{**config.to_dict(), "trials": trials,
                            "hidden": config.hidden, "channels": config.channels})
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        stats = run_trials(config, dataset, RunDir(folder), Execution(device=device))
        seconds = time.perf_counter() - started
    return {"models": trials, "seconds": seconds, "models_per_second": trials / seconds,
            "workers": stats["workers"], "models_per_batch": stats["models_per_batch"],
            "library": stats["cpu_matmul"]}


def plain_rate(
    config: TrialConfig, dataset, models: int, device: str, library: str = "default",
    rounds: int = PLAIN_ROUNDS,
) -> dict:
    """Return the fastest of `rounds` rounds of `_plain_round`, with every round's rate."""
    rates = []
    with products_on(library):
        for round_number in range(rounds):
            rates.append(_plain_round(config, dataset, models, device, first=round_number * models))
    best = max(rates)
    return {"models": models, "seconds": models / best, "models_per_second": best,
            "round_rates": rates, "threads": torch.get_num_threads(), "library": library}


def _plain_round(config: TrialConfig, dataset, models: int, device: str, first: int) -> float:
    """Train models one at a time as a typical research script does; return models/s."""
    mean, std = pixel_statistics(dataset.x_train)
    x_train = prepare_inputs(dataset.x_train, config.model, mean, std)
    x_test = prepare_inputs(dataset.x_test, config.model, mean, std)
    y_train = torch.from_numpy(dataset.y_train)
    y_test = torch.from_numpy(dataset.y_test)
    model = build_model(config, dataset.image_shape, dataset.num_classes)
    m = config.subset_size(dataset.n_train)

    started = time.perf_counter()
    for trial in range(first, first + models):
        subset = torch.from_numpy(draw_subset(config.seed, trial, dataset.n_train, m))
        module = model.plain_module(initial_params(model, config, [trial]), 0).to(device)
        loader = DataLoader(
            TensorDataset(x_train[subset], y_train[subset]),
            batch_size=config.batch_size, shuffle=True,
        )
        optimizer = torch.optim.SGD(
            module.parameters(), lr=config.learning_rate, momentum=config.momentum,
            nesterov=True, weight_decay=config.weight_decay,
        )
        total, step = len(loader) * config.epochs, 0
        for _ in range(config.epochs):
            for inputs, labels in loader:
                inputs, labels = inputs.to(device), labels.to(device)
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate_at(config, step, total)
                optimizer.zero_grad()
                F.cross_entropy(module(inputs), labels).backward()
                optimizer.step()
                step += 1
        with torch.no_grad():
            (module(x_train.to(device)).argmax(1) == y_train.to(device)).cpu()
            (module(x_test.to(device)).argmax(1) == y_test.to(device)).cpu()
    return models / (time.perf_counter() - started)


def run_case(name: str, device: str, peak: float, onednn: bool) -> dict:
    config, trials, plain_models = CASES[name]
    dataset = load_dataset(config.dataset)
    flops = model_flops(config, dataset)
    if device == "cuda":
        trials *= 16
    engine = engine_rate(config, dataset, trials, device)
    plain = plain_rate(config, dataset, plain_models, device)
    rows = {"engine": engine, "plain": plain}
    if onednn:
        rows["plain, oneDNN"] = plain_rate(config, dataset, plain_models, device, "onednn")
    for result in rows.values():
        result["flops_per_second"] = flops * result["models_per_second"]
        result["fraction_of_peak"] = result["flops_per_second"] / peak
    model = build_model(config, dataset.image_shape, dataset.num_classes)
    shape = "-".join(map(str, model.widths)) if config.model == "mlp" else str(config.channels)
    return {
        "case": name,
        "model": f"{config.model} {shape}",
        "epochs": config.epochs,
        "gflop_per_model": flops / 1e9,
        **rows,
        "speedup": engine["models_per_second"] / plain["models_per_second"],
    }


def _spin() -> None:
    while True:
        pass


def contention(name: str, device: str) -> dict:
    """Return models/s of engine and plain loop, alone and beside one busy process."""
    config, trials, plain_models = CASES[name]
    dataset = load_dataset(config.dataset)
    rates = {}
    for busy in (False, True):
        spinner = None
        if busy:
            spinner = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
            spinner.start()
        try:
            rates[("engine", busy)] = engine_rate(config, dataset, trials, device)
            rates[("plain", busy)] = plain_rate(config, dataset, plain_models, device, rounds=1)
        finally:
            if spinner is not None:
                spinner.terminate()
                spinner.join()
    return {
        kind: {
            "alone": rates[(kind, False)]["models_per_second"],
            "busy": rates[(kind, True)]["models_per_second"],
            "slowdown": rates[(kind, False)]["models_per_second"]
            / rates[(kind, True)]["models_per_second"],
        }
        for kind in ("engine", "plain")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--contention", action="store_true",
                        help="instead, compare speeds alone and beside one busy process")
    args = parser.parse_args()
    # As `longtail estimate` does at its start: the engine's fork server imports torch
    # while this process works, so neither the engine's time nor the plain loop's
    # includes importing torch. Forking and setting up the workers is timed.
    start_worker_server(args.device)
    if args.device == "cpu":
        # Wait until the server has imported torch: a first process forks only then.
        process = worker_context().Process(target=int)
        process.start()
        process.join()

    if args.contention:
        for name in args.case or list(CASES):
            for kind, row in contention(name, args.device).items():
                print(f"{name} {kind:6s}: {row['alone']:6.2f} models/s alone, "
                      f"{row['busy']:6.2f} beside a busy process ({row['slowdown']:.1f}x slower)")
        return

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}")
    peaks, onednn = {}, False
    if args.device == "cuda":
        peaks["TF32"] = cuda_tf32_peak()
        print(f"TF32 matmul peak of {torch.cuda.get_device_name()}: "
              f"{peaks['TF32'] / 1e9:.1f} GFLOP/s")
    else:
        probe = measure()
        onednn = probe["onednn_available"] and probe["onednn_exact"]
        for library in ("default", "onednn") if onednn else ("default",):
            by_size = matmul_peak(library)
            peaks[library] = max(by_size.values())
            sizes = ", ".join(f"{size}: {rate / 1e9:.0f}" for size, rate in by_size.items())
            print(f"fp32 matmul peak, {usable_cores()} single-threaded processes, "
                  f"{library} library: {peaks[library] / 1e9:.1f} GFLOP/s (by size {sizes})")
    peak = max(peaks.values())
    print(f"shares of peak below are of {peak / 1e9:.1f} GFLOP/s")

    results = []
    for name in args.case or list(CASES):
        result = run_case(name, args.device, peak, onednn)
        results.append(result)
        print(f"\n{name}: {result['model']}, {result['epochs']} epochs, "
              f"{result['gflop_per_model']:.2f} GFLOP per model")
        for kind in ("engine", "plain", "plain, oneDNN"):
            if kind not in result:
                continue
            row = result[kind]
            note = f" ({row['library']} library)" if "library" in row else ""
            if "round_rates" in row:
                rounds = ", ".join(f"{rate:.2f}" for rate in row["round_rates"])
                note = f", fastest of rounds {rounds}{note}"
            print(f"  {kind:13s} {row['models']:5d} models in {row['seconds']:7.1f} s: "
                  f"{row['models_per_second']:7.2f} models/s, "
                  f"{row['flops_per_second'] / 1e9:6.1f} GFLOP/s, "
                  f"{100 * row['fraction_of_peak']:5.1f}% of peak{note}")
        print(f"  engine / plain loop: {result['speedup']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(
            {"peak_flops": peak, "peaks": peaks, "results": results}, indent=2
        ))


if __name__ == "__main__":
    main()
