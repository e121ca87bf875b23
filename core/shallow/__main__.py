"""Command line for the shallow-net lab: train with the page's own code, list saved runs.

    python -m core.shallow --neurons 392 --dropout 0.8 --activation none --epochs 5 --json
    python -m core.shallow --neurons 78 --neurons 78 --dropout 0.5 --train-limit 5000
    python -m core.shallow --architecture cnn --filters 8 --kernel-size 3 --activation relu --dropout 0.2
    python -m core.shallow --list
    python -m core.shallow --history RUN_ID > history.csv

Progress goes to stderr (a live bar on a terminal, a line per epoch otherwise); with
`--json` one JSON object with the results is printed on stdout at the end, saying where the
job ran ("executor": "thread", or "ray" and the Ray "node" when `EXPLORER_RAY_ADDRESS` is
set). Ctrl-C stops training cleanly: the best weights so far are evaluated and saved. Bad
arguments exit with status 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from core.shallow.config import (
    ACTIVATIONS,
    ARCHITECTURES,
    CONV_BLOCKS,
    ENGINES,
    KERNEL_SIZES,
    LIMITS,
    OPTIMIZERS,
    TrainingConfig,
    check_affordable,
    format_duration,
)


class OneLineParser(argparse.ArgumentParser):
    """Reports bad arguments as one line, without the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def within_limits(name: str, kind: type):
    """An argparse type that reads a number and checks it against the configuration's rule, `LIMITS`."""

    def parse(text: str):
        value = kind(text)  # A ValueError here reads "invalid int value: 'ten'".
        try:
            LIMITS[name].check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).rstrip(".")) from None
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages.
    return parse


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainingConfig()
    parser = OneLineParser(prog="python -m core.shallow", description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", choices=list(ARCHITECTURES), default=defaults.architecture)
    parser.add_argument(
        "--neurons",
        type=within_limits("hidden_units", int),
        action="append",
        help="neurons of a hidden layer; repeat for 2-3 layers (default 392)",
    )
    parser.add_argument(
        "--filters",
        type=within_limits("filters", int),
        default=defaults.filters,
        help=f"the CNN's filters per convolution (default {defaults.filters})",
    )
    parser.add_argument(
        "--kernel-size",
        type=int,
        choices=KERNEL_SIZES,
        default=defaults.kernel_size,
        help=f"the CNN's kernel side (default {defaults.kernel_size})",
    )
    parser.add_argument(
        "--conv-blocks",
        type=int,
        choices=CONV_BLOCKS,
        default=defaults.conv_blocks,
        help="the CNN's convolution blocks (default 1)",
    )
    parser.add_argument("--dropout", type=within_limits("dropout", float), default=defaults.dropout)
    parser.add_argument("--activation", choices=list(ACTIVATIONS), default=defaults.activation)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=defaults.optimizer)
    parser.add_argument("--learning-rate", type=within_limits("learning_rate", float), default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=within_limits("batch_size", int), default=defaults.batch_size)
    parser.add_argument("--epochs", type=within_limits("epochs", int), default=5)
    parser.add_argument("--patience", type=within_limits("patience", int), default=defaults.patience)
    parser.add_argument(
        "--train-limit",
        type=within_limits("train_limit", int),
        default=None,
        help="train on a random subset of this many images",
    )
    parser.add_argument(
        "--validation-split", type=within_limits("validation_split", float), default=defaults.validation_split
    )
    parser.add_argument("--seed", type=within_limits("seed", int), default=defaults.seed)
    parser.add_argument("--mixed-precision", action="store_true", help="bf16/fp16 hidden layers (Keras engine)")
    parser.add_argument("--engine", choices=list(ENGINES), default=defaults.engine)
    parser.add_argument("--db", help="saved-runs database (default $EXPLORER_DATA_DIR/runs.sqlite)")
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--list", action="store_true", help="list saved runs and exit")
    parser.add_argument("--history", type=int, metavar="RUN_ID", help="print a run's history as CSV and exit")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(
        architecture=args.architecture,
        hidden_units=tuple(args.neurons or [392]),
        filters=args.filters,
        kernel_size=args.kernel_size,
        conv_blocks=args.conv_blocks,
        activation=args.activation,
        dropout=args.dropout,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.patience,
        train_limit=args.train_limit,
        validation_split=args.validation_split,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        engine=args.engine,
    )


def list_runs(store, as_json: bool) -> None:
    runs = store.list_runs()
    if as_json:
        for run in runs:
            print(
                json.dumps(
                    {
                        "run_id": run.run_id,
                        "status": run.status,
                        "label": run.label,
                        "params": run.params,
                        "epochs_run": run.epochs_run,
                        "test_accuracy": run.test_accuracy,
                        "test_loss": run.test_loss,
                        "device": run.device,
                        "created_at": run.created_at,
                    }
                )
            )
        return
    if not runs:
        print(f"No saved runs in {store.path}.")
        return
    print(f"{'id':>4}  {'status':<11} {'test acc':>8}  {'epochs':>6}  {'params':>10}  label")
    for run in runs:
        accuracy = f"{run.test_accuracy:.2%}" if run.test_accuracy is not None else "-"
        print(f"{run.run_id:>4}  {run.status:<11} {accuracy:>8}  {run.epochs_run:>6}  {run.params:>10,}  {run.label}")


def show_progress(job, stream) -> None:
    """Draws progress until the job ends: a bar on a terminal, a line per epoch otherwise."""
    tty = stream.isatty()
    reported_epochs = 0
    while True:
        progress = job.snapshot()
        if tty and progress.status == "running" and progress.batches_per_epoch:
            filled = int(30 * progress.batch / progress.batches_per_epoch)
            eta = format_duration(progress.eta_seconds) if progress.eta_seconds is not None else "?"
            loss = f"{progress.train_loss:.4f}" if progress.train_loss is not None else "-"
            stream.write(
                f"\repoch {progress.epoch}/{progress.epochs} [{'#' * filled}{'.' * (30 - filled)}] "
                f"loss {loss}  {progress.samples_per_second or 0:,.0f} img/s  ETA {eta}   "
            )
            stream.flush()
        for row in progress.history[reported_epochs:]:
            stream.write(
                ("\n" if tty else "") + f"epoch {row['epoch']}: loss {row['loss']:.4f} acc {row['accuracy']:.4f} "
                f"val_loss {row['val_loss']:.4f} val_acc {row['val_accuracy']:.4f} ({row['seconds']:.1f} s)\n"
            )
            reported_epochs += 1
        if progress.done:
            stream.write(("\n" if tty else "") + progress.message + "\n")
            stream.flush()
            return
        time.sleep(0.2 if tty else 0.5)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data:
        os.environ["FASHION_MNIST_DIR"] = args.data
    from core.shallow.runs import RunStore

    try:
        store = RunStore(args.db)
        if args.list:
            list_runs(store, args.json)
            return 0
        if args.history is not None:
            sys.stdout.write(store.history_csv(args.history))
            return 0
        config = config_from_args(args)
        check_affordable(config)
        from core.data import find_dataset_dir

        find_dataset_dir()
        from core.shallow.jobs import configured_executor

        executor = configured_executor()
    except (ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from core.shallow.calibration import calibrated
    from core.shallow.jobs import JobQueue

    # Timed on a few real batches of the engine that will train, in this process (Keras is
    # imported for training anyway); the JSON puts it beside the measured seconds per epoch.
    timing = calibrated(config)
    estimated = timing.seconds_per_epoch(config)
    print(f"Estimated {format_duration(estimated)} per epoch ({timing.engine} engine, timed here)", file=sys.stderr)
    queue = JobQueue(store=store, executor=executor)
    try:
        return train(queue, config, store, args.json, estimated)
    finally:
        queue.close()


def train(queue, config: TrainingConfig, store, as_json: bool, estimated: float) -> int:
    """Trains one job on the queue's executor, showing progress; prints the results."""
    from core.shallow.config import count_params

    job = queue.submit(config)
    previous = signal.getsignal(signal.SIGINT)

    def stop(signum, frame):
        print("\nStopping after this batch (Ctrl-C again to abort)...", file=sys.stderr)
        job.request_stop()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, stop)
    try:
        show_progress(job, sys.stderr)
        progress = job.wait()
    finally:  # A caller that goes on (a test, a notebook) gets its own Ctrl-C back.
        signal.signal(signal.SIGINT, previous)
    if progress.status == "failed":
        print(f"error: {progress.error}", file=sys.stderr)
        return 1
    if progress.run_id is None:  # Stopped before its first batch: nothing was trained or saved.
        print(f"{progress.message}.", file=sys.stderr)
        return 1
    run = store.get_run(progress.run_id)
    result = {
        "run_id": run.run_id,
        "status": run.status,
        "label": run.label,
        "config": config.to_dict(),
        "params": count_params(config),
        "epochs_run": run.epochs_run,
        "best_epoch": run.best_epoch,
        "test_accuracy": run.test_accuracy,
        "test_loss": run.test_loss,
        "test_precision": run.test_precision,
        "test_recall": run.test_recall,
        "seconds_per_epoch": run.seconds_per_epoch,
        "estimated_seconds_per_epoch": estimated,
        "duration_s": run.duration_s,
        "device": run.device,
        "engine": run.engine,
        "model_path": run.model_path,
        "db": str(store.path),
        "executor": progress.executor,
        "node": progress.node,
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(
            f"run {run.run_id}: test accuracy {run.test_accuracy:.2%}, loss {run.test_loss:.4f}, "
            f"precision {run.test_precision:.2%}, recall {run.test_recall:.2%} ({run.status}; saved in {store.path})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
