"""The ``unrolled`` command line.

``unrolled train`` with no arguments is the main job: train a NARX on the yearly
sunspot series shipped in the package, print its one-step ARV on the classic split
beside persistence and a linear AR(12), save the model and plot the forecasts.
``unrolled forecast MODEL`` runs a saved model closed loop past the end of the data;
``unrolled impulse MODEL`` plots how long it remembers an impulse.

``unrolled train --task NAME`` runs one of the sequence tasks of
:mod:`unrolled.sequence_tasks` instead (speaker and digit classification, a character
model of the King James Gospel of John, sequence reversal), with the settings of the
example scripts; ``unrolled sample MODEL`` generates text with the saved character
model (or decodes a sequence with the saved reverser).
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


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _hidden(text):
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 8 or 16,8, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


#: --model name -> (label, constructor(n_in, hidden, taps, seed)) for one-step forecasting.
#: A NARX feeds the series back through ``taps`` output delays and reads the exogenous
#: inputs (if any) at delays 0 .. taps-1; the others read the series (and exogenous inputs).
MODELS = {
    "narx": ("NARX", lambda n, h, k, s: _models().NARX(
        n, 1, input_delays=(k - 1 if n else []), output_delays=k, hidden=h, feedback="open", seed=s)),
    "tdnn": ("TDNN", lambda n, h, k, s: _models().TDNN(n, 1, width=k - 1, hidden=h, seed=s)),
    "rnn": ("RNN", lambda n, h, k, s: _models().RNN(n, 1, hidden=h, seed=s)),
    "elman": ("Elman", lambda n, h, k, s: _models().Elman(n, 1, hidden=h, seed=s)),
    "jordan": ("Jordan", lambda n, h, k, s: _models().Jordan(n, 1, hidden=h, seed=s)),
}


def _models():
    from . import models

    return models


#: --task name -> what it does, for --help (the settings are those of examples/*.py)
TASK_HELP = {
    "japanese-vowels": "which of 9 speakers said /ae/ (12 LPC cepstra a frame; the archive's 270/370 split): "
                       "BiRNN 2x32, mean-pooled softmax, 60 epochs at most; prints test accuracy",
    "spoken-digits": "which digit 0-9 was spoken (13 MFCC a frame; stratified 80/20, 600 test): BiRNN 2x32, "
                     "mean-pooled softmax, 25 epochs at most; prints test accuracy and "
                     "writes the confusion matrix (--plot)",
    "kjv-chars": "character model of the King James Gospel of John (10% of verses held out): RNN 128, "
                 "truncated BPTT 50, 15 epochs; prints held-out bits per character and a sample "
                 "(then: unrolled sample MODEL)",
    "reverse": "sequence to sequence: write 3-8 symbols 0-9 backwards (6000 train, 500 unseen): Seq2Seq "
               "with RNN 128 encoder and decoder, 20 epochs; prints greedy exact match",
}

#: the options of the series forecasters, which a --task does not take
_SERIES_OPTIONS = ("data", "model", "column", "hidden", "taps", "lr")


def _data_args(parser, default="sunspots"):
    parser.add_argument("--data", default=default, metavar="{sunspots,stocks,PATH.csv}",
                        help="sunspots (yearly, the classic split; default), stocks (daily log returns "
                             "of --column, the other tickers as exogenous inputs), or a CSV file "
                             "(a numeric --column, split 70/15/15 in time)")
    parser.add_argument("--column", default=None,
                        help="stocks: the ticker to forecast (AAPL, IBM, MSFT; default IBM); "
                             "CSV: the column (default: the last numeric one)")


def _train_description():
    import textwrap

    fill = lambda text: textwrap.fill(text, width=78)
    tasks = "\n".join(textwrap.fill(text, width=78, initial_indent=f"  {name:<16} ", subsequent_indent=" " * 19)
                      for name, text in TASK_HELP.items())
    return "\n\n".join([
        fill("Train a network to forecast a series one step ahead. On the yearly sunspots (default) it fits on "
             "1700-1920 (1901-1920 only to stop early) and prints the average relative variance (ARV) on "
             "1921-1955 and 1956-1979 beside persistence and a least-squares AR(12)."),
        fill("With --task it trains a sequence task instead, with the split, model and settings of its script "
             "in examples/ (only --seed, --epochs, --out, --plot, --no-plot and --no-progress apply), prints "
             "its scores and saves the model to TASK.npz:"),
        tasks])


def build_parser():
    parser = argparse.ArgumentParser(
        prog="unrolled",
        description="Recurrent networks trained by backpropagation through time.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a model on data shipped in the package (default: NARX on sunspots)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=_train_description())
    train.add_argument("--task", choices=list(TASK_HELP), default=None,
                       help="train a sequence task instead of a forecaster (see above); "
                            "not with --data, --model, --column, --hidden, --taps or --lr")
    train.add_argument("--model", choices=list(MODELS), default=None, help="the model to train (default: narx)")
    _data_args(train, default=None)
    train.add_argument("--hidden", type=_hidden, default=None, help="hidden layer sizes, e.g. 16 or 16,8 (default: 16)")
    train.add_argument("--taps", type=_positive_int, default=None,
                       help="past steps a NARX feeds back or a TDNN reads (default: 8)")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help="most training epochs; early stopping on the validation part ends sooner (default: "
                            "2000 for series; a task's own: japanese-vowels 60, spoken-digits 25, kjv-chars 15, "
                            "reverse 20)")
    train.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 0.01)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--out", type=Path, default=None,
                       help="where to save the trained model (default: DATA-MODEL.npz, or TASK.npz)")
    train.add_argument("--plot", type=Path, default=None,
                       help="where to write the forecast plot, PNG (default: DATA-MODEL.png); with --task "
                            "spoken-digits the confusion matrix (default: spoken-digits-confusion.png)")
    train.add_argument("--no-plot", action="store_true", help="write no plot")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=_train)

    forecast = sub.add_parser(
        "forecast", help="forecast beyond the end of the data with a saved model, closed loop",
        description="Load a model saved by 'unrolled train', warm it up on the whole series and run "
                    "it closed loop (each forecast fed back) --horizon steps past the last value.")
    forecast.add_argument("model", type=Path, help="a model file written by 'unrolled train'")
    forecast.add_argument("--horizon", type=_positive_int, default=8, help="steps ahead (default: 8)")
    _data_args(forecast)
    forecast.set_defaults(func=_forecast)

    impulse = sub.add_parser(
        "impulse", help="plot how a saved model answers a unit impulse at t = 0",
        description="Run a saved model on an input that is 1 at t = 0 and 0 after (for a NARX "
                    "without inputs: a unit past output), and show how long its output and hidden "
                    "layers remember it: finite for a TDNN, lasting for recurrent nets.")
    impulse.add_argument("model", type=Path, help="a model file written by 'unrolled train'")
    impulse.add_argument("--steps", type=_positive_int, default=40, help="steps to follow (default: 40)")
    impulse.add_argument("--plot", type=Path, default=Path("impulse.png"),
                         help="where to write the plot, PNG (default: impulse.png)")
    impulse.set_defaults(func=_impulse)

    sample = sub.add_parser(
        "sample", help="generate text with a character model saved by 'unrolled train --task kjv-chars'",
        description="Load a character model saved by 'unrolled train --task kjv-chars' (its file holds "
                    "the alphabet) and print text it generates: it reads a verse break and --prime, then "
                    "each character is drawn from its softmax output (or taken as the most likely, "
                    "--greedy) and fed back. A model saved by 'unrolled train --task reverse' instead "
                    "decodes the symbols given as --prime, e.g. --prime \"3 1 4\", greedily unless "
                    "--temperature is given.")
    sample.add_argument("model", type=Path, help="a model file written by 'unrolled train --task kjv-chars' "
                                                 "(or --task reverse)")
    sample.add_argument("--steps", type=_positive_int, default=None,
                        help="characters to generate (default: 200); reverse: most decoder steps, cut at "
                             "<eos> (default: 9, or the sequence's length + 1)")
    sample.add_argument("--prime", default=None,
                        help="the start of the verse to continue (default: none, a new verse); reverse: "
                             "the symbols 0-9 to reverse, separated by spaces or commas")
    sample.add_argument("--temperature", type=_positive_float, default=None,
                        help="sample from p^(1/T), renormalised: below 1 surer, above 1 wilder "
                             "(default: 1.0, the model's own distribution)")
    sample.add_argument("--greedy", action="store_true", help="take the most likely character at every step")
    sample.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default: 0)")
    sample.set_defaults(func=_sample)
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


def _load_series(args):
    """(name, series, exogenous, kind) for --data / --column."""
    from .tasks import series_from_csv, stock_returns

    if args.data == "sunspots":
        if args.column is not None:
            raise ValueError("--column applies to stocks and CSV files, not to sunspots")
        return "sunspots", None, None, "sunspots"
    if args.data == "stocks":
        target = args.column or "IBM"
        others = tuple(t for t in ("AAPL", "IBM", "MSFT") if t != target)
        if target not in ("AAPL", "IBM", "MSFT"):
            raise ValueError(f"--column for stocks must be AAPL, IBM or MSFT, got {target!r}")
        _, returns, exogenous = stock_returns(target, others)
        return f"{target} daily log return (%)", returns, exogenous, "stocks"
    path = Path(args.data)
    if not path.is_file():
        raise ValueError(f"--data must be sunspots, stocks or an existing CSV file, got {args.data!r}")
    name, values = series_from_csv(path, args.column)
    return name, values, None, "csv"


def _train(args):
    if args.task is not None:
        return _train_task(args)
    args.data = "sunspots" if args.data is None else args.data
    args.model = "narx" if args.model is None else args.model
    args.hidden = (16,) if args.hidden is None else args.hidden
    args.taps = 8 if args.taps is None else args.taps
    args.lr = 0.01 if args.lr is None else args.lr
    args.epochs = 2000 if args.epochs is None else args.epochs
    return _train_series(args)


def _train_task(args):
    from . import io
    from .sequence_tasks import run_task

    given = [f"--{name}" for name in _SERIES_OPTIONS if getattr(args, name) is not None]
    if given:
        raise ValueError(f"--task {args.task} trains the task's own model on its own data: it takes no "
                         f"{', '.join(given)} (only --seed, --epochs, --out, --plot, --no-plot, --no-progress)")
    plots = args.task == "spoken-digits" and not args.no_plot
    if args.plot is not None and args.task != "spoken-digits":
        raise ValueError(f"--plot: --task {args.task} writes no plot (spoken-digits writes its confusion matrix)")
    out = args.out or Path(f"{args.task}.npz")
    plot = args.plot or Path(f"{args.task}-confusion.png")
    result = run_task(args.task, args.seed, epochs=args.epochs, progress=not args.no_progress)
    print("\n" + result.report())
    io.save(result.model, out)
    print(f"model saved to {out}")
    if plots:
        title = (f"spoken digits, test ({len(result.labels)}), BiRNN seed {args.seed}: "
                 f"accuracy {result.metrics['accuracy']:.3f}")
        plot_confusion(result.confusion, plot, title, what="digit")
        print(f"confusion matrix written to {plot}")
    return 0


def _train_series(args):
    from . import io
    from .tasks import series_table, sunspot_table, train_series, train_sunspots

    label, make = MODELS[args.model]
    name, series, exogenous, kind = _load_series(args)
    stem = kind if kind != "csv" else Path(args.data).stem
    out = args.out or Path(f"{stem}-{args.model}.npz")
    plot = args.plot or Path(f"{stem}-{args.model}.png")
    n_exo = 0 if exogenous is None else exogenous.shape[1]
    n_in = n_exo if args.model == "narx" else 1 + n_exo
    model = make(n_in, args.hidden, args.taps, args.seed)
    taps = f" taps={args.taps}" if args.model in ("narx", "tdnn") else ""
    if kind == "sunspots":
        result = train_sunspots(model, epochs=args.epochs, lr=args.lr, seed=args.seed,
                                progress=not args.no_progress)
        table, stop = sunspot_table(result, name=label), "1901-1920"
    else:
        result = train_series(model, series, exogenous, name=name, epochs=args.epochs, lr=args.lr,
                              seed=args.seed, progress=not args.no_progress, zero_baseline=kind == "stocks",
                              ar_order=5 if kind == "stocks" else 12)
        table, stop = series_table(result, name=label, hit_rate=kind == "stocks"), "the validation part"
    h = result.history
    print(f"\n{name}: {label} hidden={list(args.hidden)}{taps} trained {h.epochs} epochs in "
          f"{h.seconds:.1f}s; weights of epoch {h.best_epoch + 1} kept (best on {stop})")
    print(table)
    io.save(result.model, out)
    print(f"model saved to {out}")
    if not args.no_plot:
        title = f"{name}: one-step forecasts, {label} {list(args.hidden)}"
        if kind == "sunspots":
            plot_forecast(result, plot, title=title)
        else:
            plot_series(result, plot, title=title)
        print(f"plot written to {plot}")
    return 0


def _forecast(args):
    from . import datasets, io
    from .tasks import SUNSPOT_SPLIT, multi_step_forecasts

    model = io.load(args.model)
    name, series, exogenous, kind = _load_series(args)
    if exogenous is not None or (getattr(model, "n_in", 0) > 1):
        raise ValueError("forecasting past the data needs the future exogenous inputs, which are unknown; "
                         "use NARX.forecast(..., x_future=...) from Python")
    if kind == "sunspots":
        years, series = datasets.load_sunspots()
        fit_end = int(np.searchsorted(years, SUNSPOT_SPLIT["fit"][1], side="right"))
        labels = [str(int(years[-1]) + h) for h in range(1, args.horizon + 1)]
    else:
        fit_end = int(len(series) * 0.70)
        labels = [f"t+{h}" for h in range(1, args.horizon + 1)]
    mean, scale = series[:fit_end].mean(), series[:fit_end].std()
    z = (series - mean) / scale
    T = len(z)
    if hasattr(model, "closed_loop"):
        model = model.closed_loop()
    values = [multi_step_forecasts(model, z, np.array([T - 1 + h]), h)[0] * scale + mean
              for h in range(1, args.horizon + 1)]
    print(f"{name}: last value {series[-1]:.4g}; closed-loop forecasts of {type(model).__name__}")
    for label, v in zip(labels, values):
        print(f"{label:>8}  {v:10.4g}")
    return 0


def _impulse(args):
    from . import io
    from .analysis import impulse_response

    model = io.load(args.model)
    if model.n_in == 0:
        # an autonomous NARX: the impulse is a unit past output y(-1), fed back closed loop
        closed = model.closed_loop() if hasattr(model, "closed_loop") else model
        K = max(closed.output_delays)
        kick = np.zeros((1, K, model.n_out), dtype=model.dtype)
        kick[0, -1, 0] = 1.0
        base = closed.predict(None, state={"y": np.zeros_like(kick)}, steps=args.steps)[0]
        hit = closed.predict(None, state={"y": kick}, steps=args.steps)[0]
        response = {"y": hit - base}
        what = "a unit past output y(-1)"
    else:
        response = impulse_response(model, args.steps)
        what = "a unit input at t = 0"
    y = response["y"][:, 0]
    last = np.flatnonzero(np.abs(y) > 1e-6)
    print(f"{type(model).__name__}: output response to {what}")
    print("t      " + " ".join(f"{t:>8d}" for t in range(min(args.steps, 10))))
    print("dy(t)  " + " ".join(f"{v:>8.4f}" for v in y[:10]))
    print("last step with |dy| > 1e-6: " + (str(int(last[-1])) if len(last) else "none"))
    plot_impulse(response, args.plot, title=f"{type(model).__name__}: response to {what}")
    print(f"plot written to {args.plot}")
    return 0


def _sample(args):
    import re

    from . import io
    from .models import Seq2Seq
    from .sequence_tasks import CharRNN, reverse_decode

    model = io.load(args.model)
    if isinstance(model, CharRNN):
        text = args.prime or ""
        steps = 200 if args.steps is None else args.steps
        temperature = 1.0 if args.temperature is None else args.temperature
        out = model.sample("\n" + text, steps, temperature=temperature, greedy=args.greedy, seed=args.seed)
        print(text + out)
        return 0
    if isinstance(model, Seq2Seq):
        tokens = [t for t in re.split(r"[\s,]+", (args.prime or "").strip()) if t]
        if not tokens or not all(t.isdigit() and len(t) == 1 for t in tokens):
            raise ValueError(f"a sequence-to-sequence model decodes a sequence: give symbols 0-9 separated by "
                             f"spaces, e.g. --prime \"3 1 4\" (got {args.prime!r})")
        greedy = args.greedy or args.temperature is None
        out = reverse_decode(model, [[int(t) for t in tokens]], args.steps, greedy=greedy,
                             temperature=1.0 if args.temperature is None else args.temperature, seed=args.seed)[0]
        print(" ".join(map(str, out)))
        return 0
    raise ValueError(f"{args.model} holds a {type(model).__name__}, not a character model "
                     "('unrolled train --task kjv-chars') or a reverser ('unrolled train --task reverse')")


def plot_confusion(cm, path, title, what="class"):
    """A PNG of a confusion matrix ``cm`` (rows true ``what``, columns predicted), counts written in."""
    cm = np.asarray(cm)
    C = cm.shape[0]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
    ax.imshow(cm, cmap="Blues")
    for i in range(C):
        for j in range(C):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    ax.set_xlabel(f"predicted {what}")
    ax.set_ylabel(f"true {what}")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _atomic_savefig(fig, Path(path))
    plt.close(fig)


def plot_forecast(result, path, title):
    """A PNG of the series and the model's one-step forecasts, test years shaded."""
    from .tasks import SUNSPOT_SPLIT

    plt = _pyplot()
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
    _finish(plt, fig, ax, path, title, legend_loc="upper left")


def plot_series(result, path, title):
    """A PNG of the test part of a series and the model's one-step forecasts."""
    plt = _pyplot()
    fit_end, val_end = result.bounds
    t = np.arange(len(result.truth))
    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    ax.plot(t[val_end:], result.truth[val_end:], color="black", lw=0.8, label="observed")
    ax.plot(t[val_end:], result.forecasts["model"][val_end:], color="tab:red", lw=0.8,
            label="model, one step ahead")
    ax.set_xlabel("step (test part)")
    _finish(plt, fig, ax, path, title, legend_loc="upper left")


def plot_impulse(response, path, title):
    """A PNG of each layer's response (the output's, and the norm of every other's) over time."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for name, r in response.items():
        if name == "y":
            ax.plot(r[:, 0], color="black", lw=1.5, marker=".", label="output y")
        else:
            ax.plot(np.linalg.norm(r, axis=1), lw=1.0, label=f"|{name}|")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel("t (impulse at t = 0)")
    ax.set_ylabel("response")
    _finish(plt, fig, ax, path, title)


def _finish(plt, fig, ax, path, title, legend_loc="best"):
    """Title, legend, layout, then write the PNG atomically and free the figure."""
    ax.set_title(title)
    ax.legend(loc=legend_loc, fontsize=8)
    fig.tight_layout()
    _atomic_savefig(fig, Path(path))
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
