"""``unrolled train``: the sunspot benchmark end to end, its numbers checked independently."""

import os
import re

import numpy as np
import pytest

import unrolled
from unrolled.cli import main
from unrolled.datasets import load_sunspots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARTS = {"fit": None, "test1": (1921, 1955), "test2": (1956, 1979)}
ROW = re.compile(r"^(RNN|NARX|persistence|AR\(12\))\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


def parse_table(out):
    """{row name: (fit, test1, test2)} from the printed ARV table."""
    lines = out.splitlines()
    header = [i for i, line in enumerate(lines) if line.startswith("one-step ARV")]
    assert len(header) == 1, out
    assert lines[header[0]].split()[2:] == ["1700-1920", "(fit)", "1921-1955", "1956-1979"]
    rows = {}
    for line in lines[header[0] + 1: header[0] + 4]:
        m = ROW.match(line)
        assert m, f"not a table row: {line!r}"
        rows[m.group(1)] = tuple(float(v) for v in m.group(2, 3, 4))
    assert set(rows) == {"RNN", "persistence", "AR(12)"}
    return rows


def expected_arvs(predict):
    """ARV = MSE / var(1700-1979) of one-step forecasts ``predict(i)`` of values[i].

    Scored on every target year of each part that has a forecast (not None).
    """
    years, values = load_sunspots()
    keep = years <= 1979
    years, values = years[keep], values[keep]
    variance = np.mean((values - values.mean()) ** 2)
    out = []
    for lo, hi in ((1700, 1920), (1921, 1955), (1956, 1979)):
        errors = []
        for i in np.flatnonzero((years >= lo) & (years <= hi)):
            p = predict(i, values)
            if p is not None:
                errors.append((p - values[i]) ** 2)
        out.append(np.mean(errors) / variance)
    return tuple(out)


def persistence(i, values):
    return values[i - 1] if i >= 1 else None


def ar12_predictor():
    """Least-squares AR(12) with intercept, fitted on the targets of 1712-1920."""
    years, values = load_sunspots()
    order = 12
    targets = [i for i in range(len(years)) if years[i] <= 1920 and i >= order]
    assert years[targets[0]] == 1712 and years[targets[-1]] == 1920
    X = np.array([[values[i - lag] for lag in range(1, order + 1)] + [1.0] for i in targets])
    coef = np.linalg.lstsq(X, values[targets], rcond=None)[0]

    def predict(i, values):
        if i < order:
            return None
        return float(np.dot(coef[:order], values[i - np.arange(1, order + 1)]) + coef[order])

    return predict


def test_train_prints_arv_table_saves_model_and_plot(tmp_path, capsys):
    import unrolled

    out_path, plot_path = tmp_path / "m.npz", tmp_path / "p.png"
    code = main(["train", "--training", "adam", "--model", "rnn", "--epochs", "30", "--no-progress", "--out", str(out_path),
                 "--plot", str(plot_path)])
    assert code == 0
    out = capsys.readouterr().out
    m = re.search(r"RNN hidden=\[(\d+(?:, \d+)*)\] trained 30 epochs", out)
    assert m, out
    hidden = tuple(int(h) for h in m.group(1).split(", "))     # the default layer sizes
    rows = parse_table(out)

    # Printed with 4 decimals: agree to half a unit in the last place.
    tol = 0.5e-4 + 1e-9
    np.testing.assert_allclose(rows["persistence"], expected_arvs(persistence), rtol=0, atol=tol)
    np.testing.assert_allclose(rows["AR(12)"], expected_arvs(ar12_predictor()), rtol=0, atol=tol)
    # The classic values (Weigend et al. split): persistence 0.2903 / 0.4268 / 0.9647,
    # AR(12) 0.1319 / 0.1296 / 0.3679.
    np.testing.assert_allclose(rows["persistence"], (0.2903, 0.4268, 0.9647), atol=tol)
    np.testing.assert_allclose(rows["AR(12)"], (0.1319, 0.1296, 0.3679), atol=tol)

    # The model file loads, and the loaded network's forecasts give the RNN row.
    assert out_path.is_file() and str(out_path) in out
    model = unrolled.load(out_path)
    assert isinstance(model, unrolled.RNN) and model.hidden == hidden
    untrained = unrolled.RNN(1, 1, hidden=hidden, seed=0)
    assert any(not np.array_equal(model.params[k], untrained.params[k]) for k in model.params)
    years, values = load_sunspots()
    values = values[years <= 1979]
    fit_values = values[:221]               # the network reads the series z-scored on 1700-1920
    mean, scale = fit_values.mean(), fit_values.std()
    z = ((values - mean) / scale)[None, :-1, None].astype(model.dtype)
    forecast = model.predict(z)[0, :, 0].astype(np.float64) * scale + mean   # element i -> year i+1
    rnn = expected_arvs(lambda i, v: forecast[i - 1] if i >= 1 else None)
    np.testing.assert_allclose(rows["RNN"], rnn, rtol=0, atol=tol)
    # Measured after 30 epochs (default hidden=(16,)): RNN 0.1241 / 0.1323 / 0.5742, ahead of
    # persistence in every part.
    assert all(r < p for r, p in zip(rows["RNN"], rows["persistence"]))

    # The plot is a PNG.
    assert plot_path.is_file() and str(plot_path) in out
    data = plot_path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_train_no_plot_writes_no_plot(tmp_path, capsys):
    plot_path = tmp_path / "p.png"
    code = main(["train", "--training", "adam", "--model", "rnn", "--epochs", "1", "--no-progress", "--no-plot", "--hidden", "3,2",
                 "--out", str(tmp_path / "m.npz"), "--plot", str(plot_path)])
    assert code == 0
    assert not plot_path.exists() and (tmp_path / "m.npz").is_file()
    out = capsys.readouterr().out
    assert "RNN hidden=[3, 2] trained 1 epochs" in out
    assert all(np.isfinite(v) for row in parse_table(out).values() for v in row)


def test_plot_file_gets_the_usual_permissions(tmp_path, capsys):
    code = main(["train", "--training", "adam", "--model", "rnn", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "m.npz"),
                 "--plot", str(tmp_path / "p.png")])
    assert code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_train_help_exits_zero_and_lists_epochs(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--epochs" in out and "--hidden" in out and "--no-plot" in out


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "expected a positive integer, got 0"),
    (["train", "--epochs", "-3"], "expected a positive integer, got -3"),
    (["train", "--hidden", "8,0"], "layer sizes must be positive"),
    (["train", "--model", "lstm"], "invalid choice"),
])
def test_bad_arguments_exit_with_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_no_command_prints_help():
    assert main([]) == 0


@pytest.mark.parametrize("name", ["narx", "tdnn"])
def test_train_each_family_model_from_the_command_line(tmp_path, capsys, name):
    code = main(["train", "--training", "adam", "--model", name, "--taps", "4", "--hidden", "4", "--epochs", "20",
                 "--no-progress", "--no-plot", "--out", str(tmp_path / "m.npz")])
    assert code == 0
    out = capsys.readouterr().out
    label = {"narx": "NARX", "tdnn": "TDNN"}[name]
    row = next(line for line in out.splitlines() if line.startswith(label + " ") and "hidden" not in line)
    fit_arv, test1, test2 = (float(v) for v in row.split()[1:])
    assert 0.0 < fit_arv < 1.0 and 0.0 < test1 < 1.5     # a trained forecaster, not noise
    model = unrolled.load(tmp_path / "m.npz")
    assert type(model).__name__ == label and model.params["b[h1]"].shape == (4,)


def test_forecast_and_impulse_from_a_saved_model(tmp_path, capsys):
    path = tmp_path / "tdnn.npz"
    assert main(["train", "--training", "adam", "--model", "tdnn", "--taps", "5", "--hidden", "4", "--epochs", "10",
                 "--no-progress", "--no-plot", "--out", str(path)]) == 0
    capsys.readouterr()
    assert main(["forecast", str(path), "--horizon", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("2009", "2010", "2011"))]
    assert [r[0] for r in rows] == ["2009", "2010", "2011"]
    # the first forecast is the model's one-step forecast from the whole series
    from unrolled.tasks.series import one_step_forecasts

    years, values = load_sunspots()
    fit_end = int(np.searchsorted(years, 1920, side="right"))
    mean, scale = values[:fit_end].mean(), values[:fit_end].std()
    model = unrolled.load(path)
    z = np.concatenate([(values - mean) / scale, [0.0]])
    expected = one_step_forecasts(model, z)[-1] * scale + mean
    assert float(rows[0][1]) == pytest.approx(expected, rel=1e-3)

    plot = tmp_path / "impulse.png"
    assert main(["impulse", str(path), "--steps", "12", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    # a TDNN of width 4 answers at t = 0 .. 4 and never after: finite response
    assert "last step with |dy| > 1e-6: 4" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_on_stocks_reports_the_random_walk(tmp_path, capsys):
    assert main(["train", "--training", "adam", "--data", "stocks", "--column", "MSFT", "--hidden", "4", "--taps", "2",
                 "--epochs", "5", "--no-progress", "--no-plot", "--out", str(tmp_path / "s.npz")]) == 0
    out = capsys.readouterr().out
    walk = next(line for line in out.splitlines() if line.startswith("random walk")).split()
    # the random walk forecasts a zero return: its MSE ratio is mean(r^2) / var(r on the fit part)
    from unrolled.tasks.series import stock_returns

    _, r, _ = stock_returns("MSFT", ("AAPL", "IBM"))
    r = r[1:]                           # the first day has no day before to read the other tickers on
    fit_end, val_end = int(len(r) * 0.70), int(len(r) * 0.85)
    var = np.var(r[:fit_end])
    assert float(walk[2]) == pytest.approx(np.mean(r[1:fit_end] ** 2) / var, abs=1e-4)
    assert float(walk[4]) == pytest.approx(np.mean(r[val_end:] ** 2) / var, abs=1e-4)
    assert unrolled.load(tmp_path / "s.npz").exog_names_ == ["AAPL", "IBM"]      # the other two tickers


def test_train_on_a_csv_file(tmp_path, capsys):
    t = np.arange(300)
    path = tmp_path / "wave.csv"
    path.write_text("step,value\n" + "\n".join(f"{i},{np.sin(0.3 * i):.6f}" for i in t) + "\n")
    assert main(["train", "--training", "adam", "--data", str(path), "--model", "rnn", "--hidden", "8", "--epochs", "300",
                 "--no-progress", "--no-plot", "--out", str(tmp_path / "w.npz")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("RNN ") and "hidden" not in line).split()
    assert float(row[3]) < 0.01          # a sine is easy: test MSE under 1% of its variance
    assert main(["train", "--training", "adam", "--data", str(tmp_path / "missing.csv")]) == 2


def test_the_parser_names_what_the_tasks_define():
    from unrolled import cli
    from unrolled.tasks.sequences import TASKS
    from unrolled.tasks.series import FORECASTERS

    assert tuple(FORECASTERS) == cli.MODELS
    assert list(cli.TASK_HELP) == list(TASKS)


def test_importing_the_package_or_the_parser_loads_no_task_and_no_matplotlib():
    import subprocess
    import sys

    code = ("import sys, unrolled, unrolled.cli; unrolled.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'unrolled.tasks'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_the_main_job_averages_five_bayesian_narx_nets_ahead_of_ar12(tmp_path, capsys):
    """``unrolled train`` as the README's first command runs it: an ensemble of five NARX
    nets (5 units, 6 taps, linear path) trained by Levenberg-Marquardt with Bayesian
    regularisation on 1700-1920. The file holds the ensemble, whose forecasts give the row."""
    import unrolled
    from unrolled.tasks.series import _mask, arv, one_step_forecasts, sunspot_series

    out_path = tmp_path / "m.npz"
    assert main(["train", "--no-progress", "--no-plot", "--out", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "NARX hidden=[5] taps=6 + linear path, an ensemble of 5 nets" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("one-step ARV"))
    rows = {ROW.match(line).group(1): tuple(float(v) for v in ROW.match(line).group(2, 3, 4))
            for line in lines[at + 1: at + 4]}
    narx, ar12 = rows["NARX"], rows["AR(12)"]
    assert narx[1] < ar12[1] and narx[2] < ar12[2]            # ahead of AR(12) on both test periods
    model = unrolled.load(out_path)
    assert isinstance(model, unrolled.Ensemble) and len(model) == 5
    assert all(m.get_config()["linear"] and list(m.output_delays) == list(range(1, 7)) for m in model.members)
    years, values, z, (mean, scale), _ = sunspot_series()
    f = np.concatenate([[np.nan], one_step_forecasts(model, z) * scale + mean])
    for part, printed in zip(("fit", "test1", "test2"), narx):
        m = _mask(years, part) & ~np.isnan(f)
        assert arv(f[m], values[m], float(np.var(values))) == pytest.approx(printed, abs=0.5e-4 + 1e-9)


@pytest.mark.parametrize("argv", [["--task", "japanese-vowels"], ["--model", "narx", "--epochs", "1"]])
def test_an_out_path_in_a_missing_folder_is_refused_before_training(tmp_path, capsys, argv):
    out = tmp_path / "nodir" / "m.npz"
    assert main(["train", *argv, "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert f"cannot save to --out '{out}': its folder '{out.parent}' does not exist" in captured.err
    assert captured.out == ""                          # nothing trained, nothing reported
    assert os.listdir(tmp_path) == []
