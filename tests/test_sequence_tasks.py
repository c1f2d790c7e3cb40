"""The sequence tasks (``unrolled.tasks.sequences``) and ``unrolled train --task`` / ``unrolled sample``.

Each task runs on a reduced setting (few epochs, a subset of the training data); its
metrics are recomputed here from the returned model on data prepared independently
from the raw loaders, so a wrong split, read-out or score would show.
"""

import functools
import math
import re

import numpy as np
import pytest

import unrolled
from unrolled import CharRNN
from unrolled.tasks import sequences
from unrolled.cli import main
from unrolled.datasets import load_japanese_vowels, load_kjv, load_spoken_digits, stratified_split
from unrolled.generate import one_hot
from unrolled.tasks.sequences import (japanese_vowels, kjv_chars, reverse, reverse_data, reverse_decode,
                                      spoken_digits)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------- helpers written from the task definitions
def vowels_test_set():
    """The archive's 370 test utterances, standardised with the frames of the fitting 80% of train."""
    x_tr, y_tr, x_te, y_te = load_japanese_vowels()
    fit_idx, val_idx = stratified_split(y_tr, 0.2, seed=0)
    assert len(fit_idx) == 216 and len(val_idx) == 54
    frames = np.vstack([x_tr[i] for i in fit_idx])
    mu, sd = frames.mean(axis=0), frames.std(axis=0)
    return [(s - mu) / sd for s in x_te], y_te


def pooled_class(model, seq):
    """The class of one sequence alone: argmax of its softmax outputs averaged over its steps."""
    out = model.predict(seq[None].astype(model.dtype))[0]
    return int(np.argmax(out.astype(np.float64).mean(axis=0)))


def john():
    """(verses, held-out mask) of the Gospel of John: 10% of the 879 verses, numpy seed 0."""
    verses = [text for _, text in load_kjv(43)]
    held = np.zeros(len(verses), bool)
    held[np.random.default_rng(0).choice(len(verses), size=88, replace=False)] = True
    return verses, held


def held_out_bits(model, verses, held):
    """Total bits of the held-out verses, each read alone from "\\n", and the characters scored."""
    nats, n = 0.0, 0
    for verse in (v for v, h in zip(verses, held) if h):
        text = "\n" + verse + "\n"
        idx = np.array([model.alphabet.index(c) for c in text])
        p = model.predict(one_hot(idx[:-1], len(model.alphabet), model.dtype)[None])[0].astype(np.float64)
        nats -= np.log(p[np.arange(len(idx) - 1), idx[1:]]).sum()
        n += len(idx) - 1
    return nats / math.log(2), n


# ------------------------------------------------------------------------------------ the tasks
def test_japanese_vowels_accuracy_is_that_of_its_model():
    result = japanese_vowels(0, epochs=3)
    assert result.history.epochs == 3 and result.task == "japanese-vowels" and result.readout == "pooled"
    assert isinstance(result.model, unrolled.BiRNN) and (result.model.n_in, result.model.n_out) == (12, 9)
    x_te, y_te = vowels_test_set()
    pred = np.array([pooled_class(result.model, s) for s in x_te])     # each utterance alone, no padding
    np.testing.assert_array_equal(result.labels, y_te)
    np.testing.assert_array_equal(result.predictions, pred)
    assert result.metrics["accuracy"] == np.mean(pred == y_te)
    # 3 epochs of Adam on 9 speakers already separate most of them (measured: 0.9486)
    assert 0.8 < result.metrics["accuracy"] < 1.0
    assert 0.0 <= result.metrics["val_accuracy"] <= 1.0
    cm = result.confusion
    assert cm.shape == (9, 9) and cm.sum() == 370 and np.trace(cm) == np.sum(pred == y_te)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_te, minlength=9))


def test_japanese_vowels_last_step_readout_and_limit():
    result = japanese_vowels(1, epochs=2, readout="last", limit=40)
    x_te, y_te = vowels_test_set()
    pred = [int(np.argmax(result.model.predict(s[None].astype(np.float32))[0, -1])) for s in x_te]
    np.testing.assert_array_equal(result.predictions, pred)
    assert result.metrics["accuracy"] == np.mean(np.array(pred) == y_te)
    assert "LastStep" in result.description
    with pytest.raises(ValueError, match="readout"):
        sequences.predict_classes(result.model, np.zeros((1, 3, 12)), np.array([3]), readout="first")


def test_the_same_seed_gives_the_same_model():
    a, b = japanese_vowels(2, epochs=1, limit=30), japanese_vowels(2, epochs=1, limit=30)
    c = japanese_vowels(3, epochs=1, limit=30)
    assert all(np.array_equal(a.model.params[k], b.model.params[k]) for k in a.model.params)
    assert not all(np.array_equal(a.model.params[k], c.model.params[k]) for k in a.model.params)


def test_spoken_digits_split_and_accuracy():
    result = spoken_digits(0, epochs=1, limit=150)
    x, y = load_spoken_digits()
    train_idx, test_idx = stratified_split(y, 0.2, seed=0)
    np.testing.assert_array_equal(result.labels, y[test_idx])
    assert len(test_idx) == 600 and result.n_val == 240
    cm = result.confusion
    assert cm.shape == (10, 10)
    np.testing.assert_array_equal(cm.sum(axis=1), np.full(10, 60))              # stratified: 60 of each digit
    assert result.metrics["accuracy"] == np.trace(cm) / 600 == np.mean(result.predictions == result.labels)
    # recompute a few predictions from the model, each recording alone, standardised on the fitting part
    fit_pos, _ = stratified_split(y[train_idx], 0.1, seed=0)
    frames = np.vstack([x[i] for i in train_idx[fit_pos]])
    mu, sd = frames.mean(axis=0), frames.std(axis=0)
    for k in range(0, 600, 60):
        assert pooled_class(result.model, (x[test_idx[k]] - mu) / sd) == result.predictions[k]


def test_kjv_chars_bits_per_character_from_minus_log_p(tmp_path):
    result = kjv_chars(0, epochs=1, limit=60)
    model = result.model
    verses, held = john()
    assert isinstance(model, CharRNN) and isinstance(model, unrolled.RNN)
    assert model.alphabet == "".join(sorted(set("".join(verses)) | {"\n"})) and len(model.alphabet) == 65
    bits, n = held_out_bits(model, verses, held)
    assert (result.n_chars, result.n_verses) == (n, 88) == (9656, 88)
    assert result.metrics["bpc"] == pytest.approx(bits / n, rel=1e-5)
    # unigram: add-one frequencies of the training stream (the first 60 training verses, each + "\n")
    stream = "".join(v + "\n" for v in [v for v, h in zip(verses, held) if not h][:60])
    assert result.n_train_chars == len(stream) and result.n_train_verses == 60
    counts = {c: stream.count(c) + 1 for c in model.alphabet}
    total = sum(counts.values())
    held_text = "".join(v + "\n" for v, h in zip(verses, held) if h)
    unigram = -sum(math.log2(counts[c] / total) for c in held_text) / len(held_text)
    assert result.metrics["unigram_bpc"] == pytest.approx(unigram, rel=1e-9)
    assert result.sample.startswith("And ") and len(result.sample) == 204
    assert set(result.sample) <= set(model.alphabet)

    # the file carries the alphabet: the loaded model is the same character model
    path = tmp_path / "chars.npz"
    unrolled.save(model, path)
    loaded = unrolled.load(path)
    assert type(loaded) is CharRNN and loaded.alphabet == model.alphabet and loaded.hidden == (128,)
    assert loaded.sample("\nAnd ", 50, seed=4) == model.sample("\nAnd ", 50, seed=4)


def test_char_rnn_is_the_rnn_of_its_alphabet():
    char = CharRNN("ab\nc", hidden=(5,), seed=3)
    rnn = unrolled.RNN(4, 4, hidden=(5,), output="softmax", seed=3)
    assert sorted(char.params) == sorted(rnn.params)
    assert all(np.array_equal(char.params[k], rnn.params[k]) for k in rnn.params)
    assert CharRNN.from_config(char.get_config()).get_config() == char.get_config()
    np.testing.assert_array_equal(char.encode("cab"), [3, 0, 1])
    assert char.decode([2, 3]) == "\nc"
    with pytest.raises(ValueError, match="not in the model's alphabet: 'xz'"):
        char.encode("axz")
    with pytest.raises(ValueError, match="repeat"):
        CharRNN("aba")
    with pytest.raises(TypeError, match="non-empty str"):
        CharRNN("")


def test_reverse_exact_match_and_decoding():
    train, test = reverse_data()
    assert len(train) == 6000 and len(test) == 500 and not set(train) & set(test)
    assert all(3 <= len(s) <= 8 and set(s) <= set(range(10)) for s in train + test)
    result = reverse(0, epochs=1, limit=640)
    decoded = reverse_decode(result.model, test)
    expected = np.mean([out == s[::-1] for out, s in zip(decoded, test)])
    assert result.metrics["exact_match"] == expected
    decoded_train = reverse_decode(result.model, train[:500])
    assert result.metrics["train_exact_match"] == np.mean([o == s[::-1] for o, s in zip(decoded_train, train)])
    assert result.examples == list(zip(test[:3], decoded[:3]))
    # greedy decoding of one sequence alone is the same as in the batch
    assert reverse_decode(result.model, [test[7]]) == [decoded[7]]


def test_reverse_exact_match_counts_only_whole_outputs_with_their_eos():
    class Stub:
        """translate returns these rows whatever the input."""

        def __init__(self, rows):
            self.rows = np.array(rows)

        def translate(self, x, steps, *, start, lengths):
            assert steps == 9 and start == sequences.REVERSE_START
            return self.rows

    x, d, lengths = sequences._reverse_arrays([(1, 2, 3), (4, 5, 6), (7, 8, 9), (1, 1, 1)])
    rows = [[3, 2, 1, 10, 5, 5, 5, 5, 5],      # right, junk after <eos> ignored
            [6, 5, 4, 4, 10, 0, 0, 0, 0],      # <eos> late: wrong
            [9, 8, 7, 0, 0, 0, 0, 0, 0],       # no <eos>: wrong
            [1, 1, 1, 10, 10, 10, 10, 10, 10]]  # right
    assert sequences._exact_match(Stub(rows), x, d, lengths) == 0.5


def test_run_task_by_name():
    assert set(sequences.TASKS) == {"japanese-vowels", "spoken-digits", "kjv-chars", "reverse"}
    with pytest.raises(ValueError, match="unknown task 'tiny'"):
        sequences.run_task("tiny")
    with pytest.raises(ValueError, match="limit"):
        japanese_vowels(0, epochs=1, limit=0)


# ---------------------------------------------------------------------------------- command line
def printed(name, out):
    m = re.search(rf"^{name}\s+([0-9.]+)", out, re.M)
    assert m, out
    return float(m.group(1))


def test_cli_train_task_prints_the_accuracy_of_the_saved_model(tmp_path, capsys):
    out_path = tmp_path / "jv.npz"
    assert main(["train", "--task", "japanese-vowels", "--epochs", "3", "--no-progress",
                 "--out", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "japanese-vowels: BiRNN 2x32 tanh, PooledMean(CrossEntropy), seed 0: 3 epochs" in out
    assert f"model saved to {out_path}" in out
    model = unrolled.load(out_path)
    x_te, y_te = vowels_test_set()
    accuracy = np.mean([pooled_class(model, s) == y for s, y in zip(x_te, y_te)])
    assert printed("test accuracy", out) == round(accuracy, 4)
    assert not list(tmp_path.glob("*.png"))


def test_cli_task_epochs_default_is_the_tasks_own(monkeypatch, tmp_path, capsys):
    seen = {}

    def spy(seed, *, epochs, progress):
        seen.update(seed=seed, epochs=epochs, progress=progress)
        return japanese_vowels(seed, epochs=1, limit=20)

    monkeypatch.setitem(sequences.TASKS, "japanese-vowels", spy)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "japanese-vowels", "--seed", "5", "--no-progress"]) == 0
    assert seen == {"seed": 5, "epochs": None, "progress": False}
    assert (tmp_path / "japanese-vowels.npz").is_file()              # default --out: TASK.npz
    assert "seed 5: 1 epochs" in capsys.readouterr().out


def test_cli_spoken_digits_writes_the_confusion_matrix(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sequences.TASKS, "spoken-digits", functools.partial(spoken_digits, limit=60))
    plot = tmp_path / "cm.png"
    assert main(["train", "--task", "spoken-digits", "--epochs", "1", "--no-progress", "--out",
                 str(tmp_path / "d.npz"), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert plot.read_bytes()[:8] == PNG_SIGNATURE and f"confusion matrix written to {plot}" in out
    assert 0.0 <= printed("test accuracy", out) <= 1.0
    assert isinstance(unrolled.load(tmp_path / "d.npz"), unrolled.BiRNN)


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    """A character model saved by ``unrolled train --task kjv-chars`` (1 epoch on 60 verses)."""
    path = tmp_path_factory.mktemp("kjv") / "kjv-chars.npz"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sequences.TASKS, "kjv-chars", functools.partial(kjv_chars, limit=60))
        assert main(["train", "--task", "kjv-chars", "--epochs", "1", "--no-progress", "--out", str(path)]) == 0
    return path


def sample(capsys, *args):
    assert main(["sample", *map(str, args)]) == 0
    return capsys.readouterr().out


def test_cli_sample_is_reproducible_under_a_seed(char_model, capsys):
    capsys.readouterr()
    a = sample(capsys, char_model, "--seed", 1, "--steps", 120)
    b = sample(capsys, char_model, "--seed", 1, "--steps", 120)
    c = sample(capsys, char_model, "--seed", 2, "--steps", 120)
    assert a == b and a != c
    assert len(a) == 121 and a.endswith("\n")                          # 120 characters and print's newline
    model = unrolled.load(char_model)
    assert a[:-1] == model.sample("\n", 120, seed=1)                    # read from a verse break
    primed = sample(capsys, char_model, "--prime", "And ", "--temperature", "0.5", "--steps", 30)
    assert primed[:-1] == "And " + model.sample("\nAnd ", 30, temperature=0.5, seed=0)
    greedy = {sample(capsys, char_model, "--greedy", "--seed", s, "--steps", 40) for s in (0, 1)}
    assert greedy == {model.sample("\n", 40, greedy=True) + "\n"}


def test_cli_sample_errors(char_model, tmp_path, capsys):
    assert main(["sample", str(char_model), "--prime", "Jesus wept{"]) == 2
    assert "not in the model's alphabet: '{'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(char_model), "--temperature", "0"])
    assert exc.value.code == 2
    unrolled.save(unrolled.RNN(2, 2, hidden=(3,), seed=0), tmp_path / "rnn.npz")
    assert main(["sample", str(tmp_path / "rnn.npz")]) == 2
    assert "not a character model" in capsys.readouterr().err


def test_cli_train_reverse_then_decode(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sequences.TASKS, "reverse", functools.partial(reverse, limit=128))
    path = tmp_path / "rev.npz"
    assert main(["train", "--task", "reverse", "--epochs", "1", "--no-progress", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert 0.0 <= printed("test exact match", out) <= 1.0
    model = unrolled.load(path)
    assert isinstance(model, unrolled.Seq2Seq)
    decoded = sample(capsys, path, "--prime", "3 1 4 1 5")
    assert decoded == " ".join(map(str, reverse_decode(model, [(3, 1, 4, 1, 5)])[0])) + "\n"
    assert main(["sample", str(path), "--prime", "3 12"]) == 2
    assert "symbols 0-9" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--data", "stocks"], ["--model", "rnn"], ["--hidden", "8"], ["--lr", "0.1"]])
def test_cli_task_refuses_the_series_options(extra, tmp_path, capsys):
    assert main(["train", "--task", "japanese-vowels", *extra, "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert f"it takes no {extra[0]}" in err
    assert not (tmp_path / "m.npz").exists()


def test_cli_plot_only_where_the_task_has_one(tmp_path, capsys):
    assert main(["train", "--task", "reverse", "--plot", str(tmp_path / "p.png")]) == 2
    assert "writes no plot" in capsys.readouterr().err


def test_cli_help_lists_the_tasks_and_sample(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for task in ("japanese-vowels", "spoken-digits", "kjv-chars", "reverse"):
        assert re.search(rf"^  {task}\s+\S", out, re.M), out
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    out = capsys.readouterr().out
    assert all(opt in out for opt in ("--steps", "--prime", "--temperature", "--greedy", "--seed"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "sample" in capsys.readouterr().out


def test_cli_task_cell_reaches_the_task_and_a_gated_char_model_saves_whole(monkeypatch, tmp_path, capsys):
    seen = {}

    def spy(seed, *, epochs, progress, cell):
        seen.update(cell=cell)
        return kjv_chars(seed, epochs=1, limit=20, cell=cell)

    monkeypatch.setitem(sequences.TASKS, "kjv-chars", spy)
    out_path = tmp_path / "chars.npz"
    assert main(["train", "--task", "kjv-chars", "--cell", "gru", "--no-progress", "--out", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert seen == {"cell": "gru"} and "GRU 70 gru, softmax over 65 characters" in out
    model = unrolled.load(out_path)
    assert type(model) is CharRNN and model.get_config()["cell"] == "gru" and model.hidden == (70,)
    assert sum(p.size for p in model.params.values()) == 33315          # the tanh RNN's 33,345, about
    verses, held = john()
    bits, n = held_out_bits(model, verses, held)                        # the loaded GRU scores as trained
    assert n == 9656 and printed("held-out bits/char", out) == pytest.approx(bits / n, abs=6e-5)
    assert main(["train", "--task", "reverse", "--cell", "lstm"]) == 2
    assert "has no choice of layer" in capsys.readouterr().err
    assert main(["train", "--cell", "lstm"]) == 2
    assert "--cell chooses the layers of a sequence task" in capsys.readouterr().err


@pytest.mark.parametrize("cell, cls", [("lstm", "LSTM"), ("gru", "GRU")])
def test_a_gated_char_rnn_is_the_gated_model_of_its_alphabet(cell, cls):
    char = CharRNN("ab\nc", hidden=(5,), cell=cell, seed=3)
    gated = getattr(unrolled, cls)(4, 4, hidden=(5,), output="softmax", seed=3)
    assert sorted(char.params) == sorted(gated.params)
    assert all(np.array_equal(char.params[k], gated.params[k]) for k in gated.params)
    assert CharRNN.from_config(char.get_config()).get_config() == char.get_config()
    x = np.eye(4)[None, [0, 1, 3, 2]]
    np.testing.assert_allclose(char.predict(x), gated.predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match="fixes its own activation"):
        CharRNN("ab", cell=cell, activation="relu")
    with pytest.raises(ValueError, match="cell must be None, 'lstm' or 'gru'"):
        CharRNN("ab", cell="rnn")
