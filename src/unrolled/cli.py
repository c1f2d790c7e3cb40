"""The ``unrolled`` command line.

``unrolled train`` with no arguments is the main job: train the default model on the
yearly sunspot series shipped in the package, print its one-step ARV on the classic
split beside persistence and a linear AR(12), save the model and plot the forecasts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _hidden(text):
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 8 or 16,8, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


#: --model name -> (label, constructor(hidden, taps, seed)) for one-step sunspot forecasting
MODELS = {
    "rnn": ("RNN", lambda h, k, s: _models().RNN(1, 1, hidden=h, seed=s)),
    "elman": ("Elman", lambda h, k, s: _models().Elman(1, 1, hidden=h, seed=s)),
    "jordan": ("Jordan", lambda h, k, s: _models().Jordan(1, 1, hidden=h, seed=s)),
    "tdnn": ("TDNN", lambda h, k, s: _models().TDNN(1, 1, width=k - 1, hidden=h, seed=s)),
    "narx": ("NARX", lambda h, k, s: _models().NARX(0, 1, input_delays=[], output_delays=k, hidden=h,
                                                    feedback="open", seed=s)),
}


def _models():
    from . import models

    return models


def build_parser():
    parser = argparse.ArgumentParser(
        prog="unrolled",
        description="Recurrent networks trained by backpropagation through time.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a model on data shipped in the package (default: sunspots)",
        description="Train a recurrent network on the yearly sunspot series (1700-1979), "
                    "fit on 1700-1920, and print the one-step average relative variance (ARV) "
                    "on 1921-1955 and 1956-1979 beside persistence and a least-squares AR(12).")
    train.add_argument("--model", choices=sorted(MODELS), default="rnn", help="the model to train (default: rnn)")
    train.add_argument("--hidden", type=_hidden, default=(16,), help="hidden layer sizes, e.g. 16 or 16,8 (default: 16)")
    train.add_argument("--taps", type=_positive_int, default=8,
                       help="past years a NARX feeds back or a TDNN reads (default: 8)")
    train.add_argument("--epochs", type=_positive_int, default=2000,
                       help="most training epochs; early stopping on 1901-1920 ends sooner (default: 2000)")
    train.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--out", type=Path, default=None,
                       help="where to save the trained model (default: sunspots-MODEL.npz)")
    train.add_argument("--plot", type=Path, default=None,
                       help="where to write the forecast plot, PNG (default: sunspots-MODEL.png)")
    train.add_argument("--no-plot", action="store_true", help="write no plot")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=_train)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"unrolled {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _train(args):
    from . import io
    from .tasks import sunspot_table, train_sunspots

    label, make = MODELS[args.model]
    out = args.out or Path(f"sunspots-{args.model}.npz")
    plot = args.plot or Path(f"sunspots-{args.model}.png")
    model = make(args.hidden, args.taps, args.seed)
    result = train_sunspots(model, epochs=args.epochs, lr=args.lr, seed=args.seed,
                            progress=not args.no_progress)
    h = result.history
    taps = f" taps={args.taps}" if args.model in ("narx", "tdnn") else ""
    print(f"\n{label} hidden={list(args.hidden)}{taps} trained {h.epochs} epochs in {h.seconds:.1f}s; "
          f"weights of epoch {h.best_epoch + 1} kept (best on 1901-1920)")
    print(sunspot_table(result, name=label))
    io.save(result.model, out)
    print(f"model saved to {out}")
    if not args.no_plot:
        plot_forecast(result, plot, title=f"Yearly sunspots: one-step forecasts, {label} {list(args.hidden)}")
        print(f"plot written to {plot}")
    return 0


def plot_forecast(result, path, title):
    """A PNG of the series and the model's one-step forecasts, test years shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .tasks import SUNSPOT_SPLIT

    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    ax.plot(result.years, result.truth, color="black", lw=1.2, label="observed")
    ax.plot(result.years, result.forecasts["model"], color="tab:red", lw=1.0, label="model, one step ahead")
    ax.plot(result.years, result.forecasts["AR(12)"], color="tab:blue", lw=0.8, ls="--", label="AR(12)")
    for part in ("test1", "test2"):
        lo, hi = SUNSPOT_SPLIT[part]
        ax.axvspan(lo, hi, color="0.9", zorder=0)
        row = result.table["model"][part]
        ax.text((lo + hi) / 2, ax.get_ylim()[1] * 0.95, f"ARV {row:.3f}", ha="center", va="top", fontsize=8)
    ax.set_xlabel("year")
    ax.set_ylabel("yearly mean sunspot number")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _atomic_savefig(fig, Path(path))
    plt.close(fig)


def _atomic_savefig(fig, path):
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp made it 0600; give it a new file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
