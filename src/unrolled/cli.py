"""The ``unrolled`` command line.

``unrolled train`` with no arguments is the main job: train a NARX on the yearly
sunspot series shipped in the package, print its one-step ARV on the classic split
beside persistence and a linear AR(12), save the model and plot the forecasts.
``unrolled forecast MODEL`` runs a saved model closed loop past the end of the data;
``unrolled impulse MODEL`` plots how long it remembers an impulse. ``--data FILE.csv``
trains on the user's own series instead: a header row, a date column (recognised and kept
to label forecasts and plots), ``--column`` the target, ``--exog A,B`` exogenous inputs
(none by default), ``--fill`` to interpolate bad cells (else each is an error naming its
line and column).

Every anticipated error (a bad file or argument, a model a command does not serve) is
one line on stderr, ``unrolled COMMAND: error: ...``, and exit status 2.

``unrolled train --task NAME`` runs one of the sequence tasks of
:mod:`unrolled.tasks.sequences` instead (speaker and digit classification, a character
model of the King James Gospel of John, sequence reversal), with the settings of the
example scripts; ``unrolled sample MODEL`` generates text with the saved character
model (or decodes a sequence with the saved reverser).

This module parses the arguments and dispatches: the work is in :mod:`unrolled.tasks`,
imported only when a command runs (so ``unrolled --help`` imports neither it nor
matplotlib).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


#: the --model choices: the keys of :data:`unrolled.tasks.series.FORECASTERS`
MODELS = ("narx", "tdnn", "rnn", "elman", "jordan")

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
_SERIES_OPTIONS = ("data", "model", "column", "exog", "fill", "date", "hidden", "taps", "lr", "training", "no_linear")


def _names(text):
    names = tuple(part.strip() for part in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names like A or A,B, got {text!r}")
    return names


def _data_args(parser, default="sunspots", exog=True):
    parser.add_argument("--data", default=default, metavar="{sunspots,stocks,PATH.csv}",
                        help="sunspots (yearly, the classic split; default), stocks (daily log returns "
                             "of --column, the other tickers as exogenous inputs), or a CSV file "
                             "(a header row; a date column, if any, labels forecasts and plots). A "
                             "CSV or stocks is split 70/15/15 in time: a Forecaster fits the first two "
                             "parts (Adam stops early on the second) and is scored on the third")
    parser.add_argument("--column", default=None,
                        help="stocks: the ticker to forecast (AAPL, IBM, MSFT; default IBM); "
                             "CSV: the column to forecast (default: the only numeric one, or the last)")
    if exog:
        parser.add_argument("--exog", type=_names, default=None, metavar="A,B",
                            help="CSV: columns read as exogenous inputs (default: none); stocks: the "
                                 "tickers (default: the other two)")
    parser.add_argument("--date", default=None, metavar="COLUMN",
                        help="CSV: the column of dates (default: the column all of whose cells are dates)")
    parser.add_argument("--fill", action="store_true",
                        help="CSV: interpolate empty, non-numeric, nan or inf cells of the columns used "
                             "linearly (default: such a cell is an error naming its line and column)")


def _train_description():
    import textwrap

    fill = lambda text: textwrap.fill(text, width=78)
    tasks = "\n".join(textwrap.fill(text, width=78, initial_indent=f"  {name:<16} ", subsequent_indent=" " * 19)
                      for name, text in TASK_HELP.items())
    return "\n\n".join([
        fill("Train a network to forecast a series one step ahead. By default five NARX nets are trained by "
             "Levenberg-Marquardt with Bayesian regularisation and averaged (--training adam: one net, Adam, "
             "early stopping). On the yearly sunspots (default) they fit on 1700-1920 (with adam, 1901-1920 "
             "only to stop early) and it prints the average relative variance (ARV) on 1921-1955 and "
             "1956-1979 beside persistence and a least-squares AR(12)."),
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
                            "not with --data, --model, --column, --exog, --fill, --hidden, --taps, --training, "
                            "--no-linear or --lr")
    train.add_argument("--model", choices=MODELS, default=None, help="the model to train (default: narx)")
    train.add_argument("--cell", choices=("tanh", "lstm", "gru"), default=None,
                       help="with --task japanese-vowels, spoken-digits or kjv-chars: the recurrent layers "
                            "(default tanh; kjv-chars: lstm 59 / gru 70 units, the tanh RNN's parameter count)")
    _data_args(train, default=None)
    train.add_argument("--training", choices=("bayesian", "adam"), default=None,
                       help="bayesian (default): Levenberg-Marquardt with Bayesian regularisation, no early "
                            "stopping needed; adam: Adam with early stopping on the validation part")
    train.add_argument("--hidden", type=_hidden, default=None,
                       help="hidden layer sizes, e.g. 16 or 16,8 (default: 5 with bayesian, 16 with adam)")
    train.add_argument("--taps", type=_positive_int, default=None,
                       help="past steps a NARX feeds back or a TDNN reads (default: 6 with bayesian, 8 with adam; "
                            "for dated series the season where that is longer: 12 monthly, 7 daily, ...)")
    train.add_argument("--no-linear", action="store_true",
                       help="no linear path from the taps to the output (a NARX or TDNN trained bayesian has one)")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help="most training epochs (default for series: 300 iterations with bayesian, 2000 epochs "
                            "with adam, where early stopping on the validation part ends sooner; a task's own: "
                            "japanese-vowels 60, spoken-digits 25, kjv-chars 15, reverse 20)")
    train.add_argument("--lr", type=float, default=None, help="Adam learning rate (with --training adam; default: 0.01)")
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
        description="Forecast --horizon steps past the end of the series with a model saved by 'unrolled "
                    "train' (or unrolled.save), closed loop (each forecast fed back). A saved Forecaster (what "
                    "'unrolled train' saves for a CSV file or stocks, and Forecaster.fit in Python) holds its "
                    "history, scaling and dates, so it needs nothing else: it prints the dated forecasts with "
                    "their band and writes them as a CSV and a PNG; --data FILE.csv extends its history by the "
                    "file's rows past its end (not refitted). A bare model (the sunspot job's, or one saved "
                    "from Python) is warmed up on the --data and --column it was trained on, which its file "
                    "does not record. Both serve one-step forecasters of series (NARX, TDNN, RNN, Elman, "
                    "Jordan, StateSpace) that read no exogenous input.")
    forecast.add_argument("model", type=Path, help="a model file written by 'unrolled train'")
    forecast.add_argument("--horizon", type=_positive_int, default=8, help="steps ahead (default: 8)")
    forecast.add_argument("--coverage", type=float, default=0.9,
                          help="a saved Forecaster: the probability of its band (default: 0.9)")
    forecast.add_argument("--csv", type=Path, default=None,
                          help="a saved Forecaster: where to write the dated forecasts (default: MODEL-forecast.csv)")
    forecast.add_argument("--plot", type=Path, default=None,
                          help="a saved Forecaster: where to write the plot (default: MODEL-forecast.png)")
    forecast.add_argument("--no-plot", action="store_true", help="write no plot")
    _data_args(forecast, exog=False)
    forecast.set_defaults(func=_forecast)

    impulse = sub.add_parser(
        "impulse", help="plot how a saved model answers a unit impulse at t = 0",
        description="Run a saved model on an input that is 1 at t = 0 and 0 after (for a NARX "
                    "without inputs: a unit past output), and show how long its output and hidden "
                    "layers remember it: finite for a TDNN, lasting for recurrent nets. It serves the "
                    "one-way networks (RNN, TDNN, NARX, Jordan, Elman, StateSpace, CharRNN), not a BiRNN "
                    "or a Seq2Seq.")
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
    """Run the command line; every anticipated error is one line on stderr and exit status 2."""
    import csv

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, FloatingPointError, csv.Error) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"unrolled {args.command}: error: {message}", file=sys.stderr)
        return 2


def _train(args):
    if args.task is not None:
        return _train_task(args)
    if args.cell is not None:
        raise ValueError("--cell chooses the layers of a sequence task: it needs --task japanese-vowels, "
                         "spoken-digits or kjv-chars (the forecasters' models are chosen with --model)")
    args.data = "sunspots" if args.data is None else args.data
    args.model = "narx" if args.model is None else args.model
    args.training = "bayesian" if args.training is None else args.training
    if args.lr is not None and args.training != "adam":
        raise ValueError(f"--lr is Adam's learning rate: it needs --training adam (this is --training {args.training})")
    args.lr = 0.01 if args.lr is None else args.lr
    return _train_series(args)


def _train_task(args):
    from . import io
    from .tasks.plots import plot_task
    from .tasks.sequences import run_task

    given = [f"--{name}" for name in _SERIES_OPTIONS if getattr(args, name) not in (None, False)]
    if given:
        raise ValueError(f"--task {args.task} trains the task's own model on its own data: it takes no "
                         f"{', '.join(given)} (only --seed, --epochs, --out, --plot, --no-plot, --no-progress)")
    plots = args.task == "spoken-digits" and not args.no_plot
    if args.plot is not None and args.task != "spoken-digits":
        raise ValueError(f"--plot: --task {args.task} writes no plot (spoken-digits writes its confusion matrix)")
    out = args.out or Path(f"{args.task}.npz")
    plot = args.plot or Path(f"{args.task}-confusion.png")
    _check_outputs(args)
    options = {}
    if args.cell is not None:
        if args.task == "reverse":
            raise ValueError("--cell: --task reverse has no choice of layer (its encoder and decoder are tanh RNNs)")
        options["cell"] = args.cell
    result = run_task(args.task, args.seed, epochs=args.epochs, progress=not args.no_progress, **options)
    print("\n" + result.report())
    io.save(result.model, out)
    print(f"model saved to {out}")
    if plots:
        _plot(plot_task, result, plot, what="confusion matrix")
    return 0


def _check_outputs(args):
    """--out and --plot, where given, checked before training: a mistyped folder refused now."""
    from .io import check_writable
    for option in ("out", "plot"):
        if getattr(args, option, None) is not None:
            check_writable(getattr(args, option), f"--{option}")


def _train_series(args):
    from . import io
    from .tasks.plots import plot_forecaster
    from .tasks.series import train_forecaster

    _check_outputs(args)
    run = train_forecaster(args.data, args.model, column=args.column, exog=args.exog, fill=args.fill, date=args.date,
                           hidden=args.hidden, taps=args.taps, training=args.training,
                           linear=False if args.no_linear else None, epochs=args.epochs, lr=args.lr,
                           seed=args.seed, progress=not args.no_progress)
    out = args.out or Path(f"{run.stem}.npz")
    plot = args.plot or Path(f"{run.stem}.png")
    print("\n" + run.report)
    io.save(run.model, out)
    print(f"model saved to {out}")
    if not args.no_plot:
        _plot(plot_forecaster, run, plot)
    return 0


def _forecast(args):
    from . import io
    from .forecasting import Forecaster
    from .tasks.series import extend_forecaster, forecast_forecaster, forecast_saved

    model = io.load(args.model)
    if not isinstance(model, Forecaster):
        print(forecast_saved(args.model, args.data, args.column, args.horizon, fill=args.fill, date=args.date))
        return 0
    if not 0 < args.coverage < 1:
        raise ValueError(f"--coverage must be strictly between 0 and 1, got {args.coverage}")
    notes = []
    if args.data != "sunspots" or args.column is not None or args.fill or args.date is not None:
        notes = extend_forecaster(model, args.data, args.column, args.fill, args.date)
    run = forecast_forecaster(model, args.horizon, args.coverage, args.csv or args.model.with_name(args.model.stem + "-forecast.csv"))
    print("\n".join([*notes, run.report]))
    if not args.no_plot:
        from .tasks.plots import plot_forecaster_forecast, plot_residuals

        plot = args.plot or args.model.with_name(args.model.stem + "-forecast.png")
        _plot(plot_forecaster_forecast, run, plot)
        _plot(plot_residuals, model, plot.with_name(plot.stem.removesuffix("-forecast") + "-residuals.png"),
              what="residual plot")
    return 0


def _plot(draw, what_to_draw, path, what="plot", **kw):
    """``draw(what_to_draw, path)``, or a line saying why no PNG was written: matplotlib is
    the optional extra ``unrolled[plot]``."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"no {what} written: matplotlib is not installed (pip install 'unrolled[plot]')")
        return
    draw(what_to_draw, path, **kw)
    print(f"{what} written to {path}")


def _impulse(args):
    from .tasks.plots import plot_impulse
    from .tasks.series import impulse_saved

    run = impulse_saved(args.model, args.steps)
    print(run.report)
    _plot(plot_impulse, run.response, args.plot, title=run.title)
    return 0


def _sample(args):
    from .tasks.sequences import sample_saved

    print(sample_saved(args.model, prime=args.prime, steps=args.steps, temperature=args.temperature,
                       greedy=args.greedy, seed=args.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
