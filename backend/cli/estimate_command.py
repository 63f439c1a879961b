"""`longtail estimate`: run the trials of a run and write its estimates."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from backend.cli.dataset_options import add_dataset_options, dataset_spec
from compute.config import CPU_MATMUL_CHOICES, ConfigError, TrialConfig

logger = logging.getLogger(__name__)
DEFAULTS = TrialConfig()
# TrialConfig settings and the options that set them, for error messages.
OPTIONS = {
    "model": "--model",
    "hidden": "--hidden",
    "channels": "--channels",
    "trials": "--trials",
    "subset_ratio": "--subset-ratio",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "momentum": "--momentum",
    "weight_decay": "--weight-decay",
    "shard_size": "--shard-size",
}


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 512,256, found {text!r}"
        ) from None
    if any(width <= 0 for width in widths):
        raise argparse.ArgumentTypeError(f"widths must be positive, found {text!r}")
    return widths


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, found {value}; leave the option out for the default"
        )
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="train models on random subsets and estimate memorization and influence",
        description="Train one model per trial on a random subset of the training set, "
        "then estimate memorization, influence and consistency scores. Rerunning the "
        "same command on an interrupted run resumes it.",
    )
    add_dataset_options(parser, default=DEFAULTS.dataset)
    parser.add_argument("--model", choices=["mlp", "cnn"], default=DEFAULTS.model,
                        help="model architecture (default: %(default)s)")
    parser.add_argument("--hidden", type=_widths, default=DEFAULTS.hidden,
                        help="MLP hidden widths, comma-separated (default: 256)")
    parser.add_argument("--channels", type=_widths, default=DEFAULTS.channels,
                        help="CNN channels per convolution, comma-separated (default: 16,32)")
    parser.add_argument("--trials", type=int, default=DEFAULTS.trials,
                        help="number of trials, one model each (default: %(default)s)")
    parser.add_argument("--subset-ratio", type=float, default=DEFAULTS.subset_ratio,
                        help="fraction of training examples in each subset (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                        help="passes over each subset (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                        help="examples per minibatch (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.learning_rate,
                        help="peak SGD learning rate, decayed linearly to 0 (default: %(default)s)")
    parser.add_argument("--momentum", type=float, default=DEFAULTS.momentum,
                        help="Nesterov momentum of SGD, in [0, 1) (default: %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay,
                        help="L2 weight decay of SGD (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed,
                        help="seed of subsets, initial weights and minibatch order "
                        "(default: %(default)s)")
    parser.add_argument("--shard-size", type=int, default=DEFAULTS.shard_size,
                        help="trials per shard file (default: %(default)s)")
    parser.add_argument("--out", required=True, help="run directory to create, to resume, or to extend with a larger --trials")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--workers", type=_positive_int, default=None,
                        help="CPU worker processes, one thread each (default: usable cores)")
    parser.add_argument("--models-per-batch", type=_positive_int, default=None,
                        help="models trained together (default: what fits in memory)")
    parser.add_argument("--cpu-matmul", choices=CPU_MATMUL_CHOICES, default="auto",
                        help="library of float32 matrix products on the CPU: oneDNN, "
                        "PyTorch's default (MKL on x86), or auto, which takes oneDNN where "
                        "a start-up check finds it keeps float32 accuracy and is faster. "
                        "A resumed run keeps its stored library under auto "
                        "(default: %(default)s)")
    parser.add_argument("--db", default=None, metavar="URL",
                        help="after estimating, load the run into this database "
                        "(sqlite:///PATH or postgresql+psycopg://...; default: do not load)")
    parser.add_argument("--replace", action="store_true",
                        help="with --db, replace a stored run of the same name")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from compute.interrupts import deferred_interrupts
    from compute.workers import start_worker_server

    # Ctrl-C during the imports of torch or scipy could be swallowed, or abort the
    # process, so it takes effect once they and the dataset are loaded.
    with deferred_interrupts():
        # The workers' fork server imports torch while this process does the same.
        start_worker_server(args.device, args.workers)

        # Imported here so that `longtail --help` and the other commands start
        # without torch.
        from backend.cli.load_command import load_into_database
        from backend.cli.progress import start_progress
        from compute.datasets import load_dataset
        from compute.engine import Execution
        from compute.estimate import estimate

        config = config_from_args(args)
        _warn_unused_widths(args)
        if args.db is not None:
            _check_database(args)
        logger.info("loading dataset %s", config.dataset)
        dataset = load_dataset(config.dataset)
    logger.info(
        "dataset %s: %d train and %d test examples, %d classes, fingerprint %s",
        dataset.name, dataset.n_train, dataset.n_test, dataset.num_classes,
        dataset.fingerprint()[:12],
    )
    execution = Execution(
        device=args.device, workers=args.workers, models_per_batch=args.models_per_batch,
        cpu_matmul=args.cpu_matmul,
    )

    progress = start_progress("trials", config.trials, "model")
    try:
        with progress.redirect_logs():
            run_dir = estimate(
                config, dataset, args.out, execution, lambda done, total: progress.update(done)
            )
    finally:
        progress.close()

    summary = run_dir.read_manifest()["summary"]
    print(
        f"run {args.out}: {summary['trials']} trials, mean model test accuracy "
        f"{summary['model_test_accuracy_mean']:.4f} (std {summary['model_test_accuracy_std']:.4f})"
    )
    if args.db is not None:
        from backend.store.load import RunExistsError

        try:
            load_into_database(args.out, args.db, replace=args.replace)
        except RunExistsError as error:
            # The load's own advice names --name, which estimate does not take.
            raise RunExistsError(
                f"the estimates are in {args.out}, but a run of that name is already in "
                f"{args.db}; pass --replace to replace it, or run 'longtail load {args.out} "
                f"--db {args.db} --name NAME' to store it under another name"
            ) from error
    return 0


def _check_database(args: argparse.Namespace) -> None:
    """Check --db and the run's name there before training, which can take hours."""
    from backend.cli.load_command import check_name_free
    from backend.store.load import check_run_name

    name = check_run_name(Path(args.out).resolve().name)
    check_name_free(
        args.db, None if args.replace else name,
        "pass --replace to replace it, or another --out directory, whose name is the "
        "run's name",
    )


def _warn_unused_widths(args: argparse.Namespace) -> None:
    """Log a warning when a width option is given for the model that does not use it."""
    if args.model == "mlp" and args.channels != DEFAULTS.channels:
        logger.warning("--channels is ignored: it sets the CNN's convolutions, and "
                       "--model mlp takes its widths from --hidden")
    if args.model == "cnn" and args.hidden != DEFAULTS.hidden:
        logger.warning("--hidden is ignored: it sets the MLP's widths, and --model cnn "
                       "takes its widths from --channels")


def config_from_args(args: argparse.Namespace) -> TrialConfig:
    """Build the run's config, naming command-line options in its errors."""
    try:
        return TrialConfig(
            dataset=dataset_spec(args),
            model=args.model,
            hidden=args.hidden,
            channels=args.channels,
            trials=args.trials,
            subset_ratio=args.subset_ratio,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            seed=args.seed,
            shard_size=args.shard_size,
        )
    except ConfigError as error:
        names = "|".join(OPTIONS)
        message = re.sub(rf"\b({names})\b", lambda match: OPTIONS[match[1]], str(error))
        raise ConfigError(message) from None
