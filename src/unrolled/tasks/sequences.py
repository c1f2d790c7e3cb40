"""Sequence classification, language modelling and sequence to sequence on the shipped data.

The four pipelines of ``examples/`` as functions, with the examples' splits, models and
hyper-parameters (so the measured numbers in the README hold for them), one seed each:

- :func:`japanese_vowels`: which of 9 speakers said /ae/ (BiRNN, many-to-one);
- :func:`spoken_digits`: which digit was spoken, from 13 MFCC a frame (BiRNN, many-to-one);
- :func:`kjv_chars`: a character model of the Gospel of John (RNN, truncated BPTT),
  scored in bits per character on held-out verses;
- :func:`reverse`: write a sequence of symbols backwards (Seq2Seq, greedy decoding).

Each takes ``seed`` (weights and minibatch order; the data splits are fixed), ``epochs``
(None: the task's own number) and ``progress``, plus ``limit`` (train on a subset, for
quick checks; the measured numbers use all), and returns a small result dataclass:
the trained ``model``, its ``metrics`` (name -> float), the training ``history`` and
``report()``, the text ``unrolled train --task`` prints. :func:`run_task` runs one by
its command-line name; :func:`sample_saved` is ``unrolled sample``.

The character model is a :class:`unrolled.models.CharRNN`: an ``RNN`` (softmax output,
input = output = one symbol) whose saved config carries its alphabet, so a file written
by ``unrolled.save`` is all ``unrolled sample`` needs.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from .. import io
from ..blocks import recurrent_network
from ..datasets import load_japanese_vowels, load_kjv, load_spoken_digits, pad_sequences, stratified_split
from ..divergences import CrossEntropy, LastStep, PooledMean
from ..generate import one_hot, teacher_forcing
from ..models import RNN, BiRNN, CharRNN, Seq2Seq
from ..optim import Adam
from ..train import fit

__all__ = ["TASKS", "run_task", "TaskResult", "ClassificationResult", "LanguageModelResult", "Seq2SeqResult",
           "japanese_vowels", "spoken_digits", "kjv_chars", "reverse", "predict_classes",
           "reverse_data", "reverse_decode", "REVERSE_EOS", "REVERSE_START", "sample_saved"]


# ---------------------------------------------------------------------- results
@dataclass
class TaskResult:
    """What every task returns.

    task : its command-line name; model : the trained model (best weights restored where
    the task stops early); metrics : name -> value (see each task); history : fit's
    ``History``; description : the model and read-out in words; seed : the seed;
    seconds : wall time of the whole task (data, training, scoring).
    """

    task: str
    model: object
    metrics: dict
    history: object
    description: str
    seed: int
    seconds: float

    def _training_line(self):
        h = self.history
        line = f"{self.task}: {self.description}, seed {self.seed}: {h.epochs} epochs in {h.seconds:.1f} s"
        if h.val_loss:
            line += f"; weights of epoch {h.best_epoch + 1} kept (best on validation)"
        return line

    def report(self):
        """The text ``unrolled train --task`` prints (without the saving lines)."""
        lines = [self._training_line()]
        lines += [f"{k:<24} {v:.4f}" for k, v in self.metrics.items()]
        return "\n".join(lines)


@dataclass
class ClassificationResult(TaskResult):
    """Many-to-one classification. metrics: ``accuracy`` (test), ``val_accuracy``.

    readout : "pooled" (softmax outputs averaged over valid steps) or "last" (the last
    valid step); labels, predictions : (N_test,) true and predicted classes.
    """

    readout: str
    labels: np.ndarray
    predictions: np.ndarray
    n_val: int

    @property
    def confusion(self):
        """(C, C) counts, rows true class, columns predicted class."""
        C = int(max(self.labels.max(), self.predictions.max())) + 1
        cm = np.zeros((C, C), dtype=np.int64)
        np.add.at(cm, (self.labels, self.predictions), 1)
        return cm

    def report(self):
        return "\n".join([
            self._training_line(),
            f"validation accuracy  {self.metrics['val_accuracy']:.4f}  ({self.n_val} sequences)",
            f"test accuracy        {self.metrics['accuracy']:.4f}  ({len(self.labels)} sequences)"])


@dataclass
class LanguageModelResult(TaskResult):
    """Character model. metrics: ``bpc`` (held-out bits per character), ``unigram_bpc``
    (train frequencies, add-one, same characters), ``train_bpc`` (last epoch's mean loss).

    n_chars : held-out characters scored; n_verses : held-out verses; n_train_chars,
    n_train_verses : the training stream; sample : "And " and 200 characters generated
    after it (a verse's start, "\\nAnd ", read first; temperature 0.7, ``seed``).
    """

    n_chars: int
    n_verses: int
    n_train_chars: int
    n_train_verses: int
    sample: str

    def report(self):
        m = self.metrics
        return "\n".join([
            self._training_line(),
            f"held-out bits/char     {m['bpc']:.4f}  ({self.n_verses} verses, {self.n_chars} characters)",
            f"unigram bits/char      {m['unigram_bpc']:.4f}  (train frequencies, add-one)",
            f"train bits/char        {m['train_bpc']:.4f}  (last epoch)",
            "sample (temperature 0.7): " + self.sample.replace("\n", " / ")])


@dataclass
class Seq2SeqResult(TaskResult):
    """Sequence reversal. metrics: ``exact_match`` (test), ``train_exact_match`` (first
    500 training sequences). examples : (source, decoded) of the first test sequences."""

    n_test: int
    examples: list = field(default_factory=list)

    def report(self):
        m = self.metrics
        lines = [self._training_line(),
                 f"test exact match       {m['exact_match']:.4f}  ({self.n_test} unseen sequences)",
                 f"train exact match      {m['train_exact_match']:.4f}  (first 500 training sequences)"]
        for src, out in self.examples:
            ok = "right" if tuple(out) == tuple(src[::-1]) else "wrong"
            lines.append(f"  {' '.join(map(str, src))}  ->  {' '.join(map(str, out))}  ({ok})")
        return "\n".join(lines)


# ---------------------------------------------------------------- classification
def predict_classes(model, x, lengths, readout="pooled"):
    """Class of each sequence: argmax of the softmax output at the last valid step
    (``readout="last"``) or averaged over the valid steps (``"pooled"``). (N,) int64."""
    out = model.predict(x, lengths=lengths)
    if readout == "last":
        scores = out[np.arange(len(x)), lengths - 1]
    elif readout == "pooled":
        mask = (np.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
        scores = (out * mask).sum(1) / lengths[:, None]
    else:
        raise ValueError(f"readout must be 'pooled' or 'last', got {readout!r}")
    return scores.argmax(-1)


def _standardised(x, fit_idx, groups):
    """Padded (x, lengths) of each index list in ``groups``, standardised with the frames of fit_idx."""
    frames = np.concatenate([x[i] for i in fit_idx])
    mu, sd = frames.mean(0), frames.std(0)
    return [pad_sequences([(x[i] - mu) / sd for i in idx]) for idx in groups]


def _check_limit(limit, what="training sequences"):
    """``limit`` itself: None or a positive int; ValueError naming ``what`` it counts otherwise."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive number of {what} or None, got {limit!r}")
    return limit


def _subset(n, limit):
    """Evenly spaced indices of at most ``limit`` of n items (all for None)."""
    if _check_limit(limit) is None:
        return slice(None)
    return np.arange(0, n, max(1, n // limit))[:limit]


def _classify(task, n_in, n_classes, data, *, seed, readout, cell, epochs, lr, batch, patience,
              limit, progress, t0):
    (xf, lf, yf), (xv, lv, yv), (xt, lt, yt) = data
    sel = _subset(len(yf), limit)
    cell = _check_cell(cell)
    description = f"BiRNN 2x32 {cell}"
    model = BiRNN(n_in, n_classes, hidden=(32,), output="softmax", cell=cell, seed=seed)
    div = LastStep(CrossEntropy()) if readout == "last" else PooledMean(CrossEntropy())
    history = fit(model, xf[sel], yf[sel], lengths=lf[sel], divergence=div, optimizer=Adam(lr), epochs=epochs,
                  batch_size=batch, validation=(xv, yv, lv), patience=patience, clip=5.0, seed=seed,
                  progress=progress)
    val_acc = float(np.mean(predict_classes(model, xv, lv, readout) == yv))
    pred = predict_classes(model, xt, lt, readout)
    metrics = {"accuracy": float(np.mean(pred == yt)), "val_accuracy": val_acc}
    name = "LastStep" if readout == "last" else "PooledMean"
    return ClassificationResult(task, model, metrics, history, f"{description}, {name}(CrossEntropy)", seed,
                                time.perf_counter() - t0, readout, yt, pred, len(yv))


def _check_cell(cell):
    """``cell`` itself ("tanh", "lstm" or "gru"; None means "tanh"); ValueError otherwise."""
    cell = "tanh" if cell is None else cell
    if cell not in ("tanh", "lstm", "gru"):
        raise ValueError(f"cell must be 'tanh', 'lstm' or 'gru', got {cell!r}")
    return cell


def japanese_vowels(seed=0, *, epochs=None, readout="pooled", cell="tanh", limit=None, progress=False):
    """Japanese vowels: which of 9 speakers uttered /ae/, 12 LPC cepstra a frame.

    The archive's split (270 train / 370 test); a stratified 20% of train (seed 0) is
    the validation split for early stopping (patience 10) and chose the read-out once
    (PooledMean over LastStep, on seed 0: ``examples/japanese_vowels.py``). Inputs
    standardised with the 216 fitting sequences. BiRNN(12, 9, hidden=(32,), softmax),
    Adam(0.005), batch 16, clip 5, ``epochs`` (default 60). ``cell``: the BiRNN's layers,
    ``"tanh"`` (default), ``"lstm"`` or ``"gru"`` (all else the same). ``limit``: fit on
    that many of the 216 (evenly spaced). Returns a :class:`ClassificationResult`; measured test
    accuracy, seeds 0/1/2: 0.9595 / 0.9568 / 0.9622.
    """
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_japanese_vowels()
    fit_idx, val_idx = stratified_split(y_tr, 0.2, seed=0)
    x_all = list(x_tr) + list(x_te)
    test_idx = np.arange(len(x_tr), len(x_all))
    (xf, lf), (xv, lv), (xt, lt) = _standardised(x_all, fit_idx, (fit_idx, val_idx, test_idx))
    data = (xf, lf, y_tr[fit_idx]), (xv, lv, y_tr[val_idx]), (xt, lt, y_te)
    return _classify("japanese-vowels", 12, 9, data, seed=seed, readout=readout, cell=cell,
                     epochs=60 if epochs is None else epochs, lr=0.005, batch=16, patience=10, limit=limit,
                     progress=progress, t0=t0)


def spoken_digits(seed=0, *, epochs=None, cell="tanh", limit=None, progress=False):
    """Spoken digits (FSDD): which digit 0-9, 13 MFCC a frame, 6-92 frames.

    Stratified 80/20 split (seed 0): 2400 train, 600 test; a stratified 10% of the
    train (seed 0) for early stopping (patience 5). Inputs standardised with the 2160
    fitting sequences. BiRNN(13, 10, hidden=(32,), softmax) read out by
    PooledMean(CrossEntropy) (not re-chosen here), Adam(0.005), batch 32, clip 5,
    ``epochs`` (default 25). ``cell``: ``"tanh"`` (default), ``"lstm"`` or ``"gru"``.
    ``limit``: fit on that many of the 2160 (evenly spaced).
    Returns a :class:`ClassificationResult` (``confusion`` for the matrix); measured test
    accuracy, seeds 0/1/2: 0.9467 / 0.9533 / 0.9650.
    """
    t0 = time.perf_counter()
    x, y = load_spoken_digits()
    train_idx, test_idx = stratified_split(y, 0.2, seed=0)
    fit_pos, val_pos = stratified_split(y[train_idx], 0.1, seed=0)
    fit_idx, val_idx = train_idx[fit_pos], train_idx[val_pos]
    (xf, lf), (xv, lv), (xt, lt) = _standardised(x, fit_idx, (fit_idx, val_idx, test_idx))
    data = (xf, lf, y[fit_idx]), (xv, lv, y[val_idx]), (xt, lt, y[test_idx])
    return _classify("spoken-digits", 13, 10, data, seed=seed, readout="pooled", cell=cell,
                     epochs=25 if epochs is None else epochs, lr=0.005, batch=32, patience=5, limit=limit,
                     progress=progress, t0=t0)


# ------------------------------------------------------------------ characters
KJV_BOOK, KJV_HIDDEN, KJV_ROWS, KJV_BPTT = 43, 128, 32, 50
#: hidden units of the gated character models with the parameters of the tanh RNN of 128
#: (33,345): an LSTM of 59 has 33,518, a GRU of 70 has 33,315
KJV_GATED_HIDDEN = {"lstm": 59, "gru": 70}


def kjv_chars(seed=0, *, epochs=None, cell="tanh", limit=None, progress=False):
    """Character-level language model of the King James Gospel of John (book 43).

    Verses each followed by "\\n"; the alphabet (65 symbols) is the whole book's. 10% of
    the verses (88) held out at random (numpy seed 0, whatever ``seed``); the other 791,
    in order, are the training stream, cut into 32 parallel rows and trained by
    truncated BPTT (windows of 50, state carried). CharRNN(hidden=(128,)), CrossEntropy,
    Adam(0.003), clip 5, ``epochs`` (default 15). ``cell="lstm"`` or ``"gru"``: gated
    layers of about the same number of parameters instead (:data:`KJV_GATED_HIDDEN`), all
    else the same. ``limit``: train on the first that many training verses.

    Score: each held-out verse is read from the learned initial state, starting from
    "\\n", predicting its characters and closing "\\n"; bits per character = total nats
    / ln 2 / characters. Returns a :class:`LanguageModelResult`; measured held-out bpc,
    seeds 0/1/2: 2.1616 / 2.1641 / 2.1764; unigram 4.369.
    """
    t0 = time.perf_counter()
    verses = [text for _, text in load_kjv(KJV_BOOK)]
    alphabet = "".join(sorted(set("".join(verses)) | {"\n"}))
    idx = {c: i for i, c in enumerate(alphabet)}
    V = len(alphabet)
    rng = np.random.default_rng(0)
    held = np.zeros(len(verses), bool)
    held[rng.choice(len(verses), size=round(0.1 * len(verses)), replace=False)] = True
    train_verses = [v for v, h in zip(verses, held) if not h]
    if _check_limit(limit, "training verses") is not None:
        train_verses = train_verses[:limit]
    stream = np.array([idx[c] for c in "".join(v + "\n" for v in train_verses)], dtype=np.int64)
    L = (len(stream) - 1) // KJV_ROWS
    if L < 1:
        raise ValueError(f"{len(stream)} training characters do not fill {KJV_ROWS} rows: raise limit")
    x = one_hot(stream[:KJV_ROWS * L].reshape(KJV_ROWS, L), V)
    d = stream[1:KJV_ROWS * L + 1].reshape(KJV_ROWS, L)

    seqs = [np.array([idx[c] for c in "\n" + v + "\n"]) for v, h in zip(verses, held) if h]
    xs, lh = pad_sequences([one_hot(s[:-1], V) for s in seqs])
    ds, _ = pad_sequences([s[1:] for s in seqs], dtype=np.int64)
    n_chars = int(lh.sum())
    mask = np.arange(ds.shape[1])[None, :] < lh[:, None]
    counts = np.bincount(stream, minlength=V) + 1.0
    unigram_bpc = float(-np.log(counts / counts.sum())[ds[mask]].sum() / math.log(2) / n_chars)

    cell = _check_cell(cell)
    H = KJV_GATED_HIDDEN.get(cell, KJV_HIDDEN)
    model = CharRNN(alphabet, hidden=(H,), cell=None if cell == "tanh" else cell, seed=seed)
    history = fit(model, x, d, divergence=CrossEntropy(), optimizer=Adam(0.003),
                  epochs=15 if epochs is None else epochs, batch_size=KJV_ROWS, bptt=KJV_BPTT, clip=5.0,
                  seed=seed, progress=progress)
    y = model.predict(xs, lengths=lh)
    value, _ = CrossEntropy()(y, ds, lengths=lh)          # sum of nats over valid steps / N
    metrics = {"bpc": float(value * len(seqs) / math.log(2) / n_chars), "unigram_bpc": unigram_bpc,
               "train_bpc": float(history.loss[-1] / L / math.log(2))}
    sample = "And " + model.sample("\nAnd ", 200, temperature=0.7, seed=seed)
    return LanguageModelResult("kjv-chars", model, metrics, history,
                               f"{'RNN' if cell == 'tanh' else cell.upper()} {H} {cell}, softmax over {V} "
                               f"characters, TBPTT {KJV_BPTT}", seed,
                               time.perf_counter() - t0, n_chars, len(seqs), len(stream),
                               len(train_verses), sample)


# ------------------------------------------------------------------ seq2seq
#: the reverse task's symbols: 0-9, then <eos> (source and target) and <start> (decoder input)
REVERSE_EOS, REVERSE_START = 10, 11
REVERSE_TRAIN, REVERSE_TEST, REVERSE_HIDDEN = 6000, 500, 128


def reverse_data():
    """(train, test): 6000 and 500 distinct tuples of 3-8 symbols 0-9 (numpy seed 1234),
    no test sequence in the training set."""
    rng = np.random.default_rng(1234)
    seen, seqs = set(), []
    while len(seqs) < REVERSE_TRAIN + REVERSE_TEST:
        s = tuple(int(v) for v in rng.integers(0, 10, size=rng.integers(3, 9)))
        if s not in seen:
            seen.add(s)
            seqs.append(s)
    return seqs[:REVERSE_TRAIN], seqs[REVERSE_TRAIN:]


def _reverse_arrays(seqs):
    """x (N, T, 11) one-hot s + <eos>, d (N, T) reversed s + <eos>, lengths (N,)."""
    src = [one_hot(np.array(s + (REVERSE_EOS,)), 11) for s in seqs]
    tgt = [np.array(s[::-1] + (REVERSE_EOS,)) for s in seqs]
    x, lengths = pad_sequences(src)
    d, _ = pad_sequences(tgt, dtype=np.int64)
    return x, d, lengths


def reverse_decode(model, seqs, steps=None, *, greedy=True, temperature=1.0, seed=None):
    """Decode each sequence of symbols 0-9 with a reverse-task ``Seq2Seq``: a list of
    tuples, each cut before its first <eos> (``steps`` decoder steps at most; default 9
    or the longest sequence + 1). Greedy (the task's scoring) unless ``greedy=False``."""
    seqs = [tuple(int(v) for v in s) for s in seqs]
    if not seqs or any(not s or min(s) < 0 or max(s) > 9 for s in seqs):
        raise ValueError(f"expected non-empty sequences of symbols 0-9, got {seqs!r:.200}")
    if model.n_in != 11 or model.decoder.n_in != 12 or model.n_out != 11:
        raise ValueError(f"not a model of the reverse task (source 11 symbols, decoder 12 in, 11 out): "
                         f"n_in={model.n_in}, decoder n_in={model.decoder.n_in}, n_out={model.n_out}")
    x, _, lengths = _reverse_arrays(seqs)
    steps = max(9, max(len(s) for s in seqs) + 1) if steps is None else steps
    out = model.translate(x, steps, start=REVERSE_START, lengths=lengths, greedy=greedy,
                          temperature=temperature, seed=seed)
    result = []
    for row in out:
        row = [int(v) for v in row]
        result.append(tuple(row[:row.index(REVERSE_EOS)] if REVERSE_EOS in row else row))
    return result


def _exact_match(model, x, d, lengths):
    out = model.translate(x, 9, start=REVERSE_START, lengths=lengths)
    ok = [list(out[n, :lengths[n]]) == list(d[n, :lengths[n]]) for n in range(len(x))]
    return float(np.mean(ok))


def reverse(seed=0, *, epochs=None, limit=None, progress=False):
    """Delayed sequence to sequence: read s_1 .. s_L <eos> (symbols 0-9, L in 3..8), write
    s_L .. s_1 <eos>.

    6000 training and 500 unseen test sequences (:func:`reverse_data`). Seq2Seq: encoder
    ``recurrent_network(11, (128,))`` (tanh, learned h(-1)), decoder
    ``RNN(12, 11, hidden=(128,), softmax, learn_init=False)`` reading the previous target
    (teacher forcing, <start> first). CrossEntropy, Adam(0.005), clip 5, batch 64,
    ``epochs`` (default 20), no early stopping. ``limit``: train on the first that many.
    Score: greedy decoding, 9 steps, cut at the first <eos>; exact match of the whole
    output and its <eos>. Returns a :class:`Seq2SeqResult`; measured test exact match,
    seeds 0/1/2: 0.808 / 0.810 / 0.830.
    """
    t0 = time.perf_counter()
    train, test = reverse_data()
    x, d, lengths = _reverse_arrays(train)
    xt, dt, lt = _reverse_arrays(test)
    u = teacher_forcing(d, 12, REVERSE_START, lengths=lengths)
    if _check_limit(limit) is not None:
        x, d, lengths, u = x[:limit], d[:limit], lengths[:limit], u[:limit]
    H = REVERSE_HIDDEN
    model = Seq2Seq(recurrent_network(11, (H,), seed=seed),
                    RNN(12, 11, hidden=(H,), output="softmax", learn_init=False, seed=seed + 100))
    history = fit(model, x, d, lengths=lengths, inputs={"decoder_inputs": u}, divergence=CrossEntropy(),
                  optimizer=Adam(0.005), epochs=20 if epochs is None else epochs, batch_size=64, clip=5.0,
                  seed=seed, progress=progress)
    metrics = {"exact_match": _exact_match(model, xt, dt, lt),
               "train_exact_match": _exact_match(model, x[:500], d[:500], lengths[:500])}
    examples = list(zip(test[:3], reverse_decode(model, test[:3])))
    return Seq2SeqResult("reverse", model, metrics, history,
                         f"Seq2Seq, RNN {H} tanh encoder + decoder, greedy", seed, time.perf_counter() - t0,
                         len(test), examples)


# ------------------------------------------------------------------ by name
#: command-line name -> task function
TASKS = {"japanese-vowels": japanese_vowels, "spoken-digits": spoken_digits, "kjv-chars": kjv_chars,
         "reverse": reverse}


def run_task(name, seed=0, *, epochs=None, progress=False, **options):
    """Run the task called ``name`` (a key of :data:`TASKS`); returns its result."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name](seed, epochs=epochs, progress=progress, **options)


def sample_saved(path, *, prime=None, steps=None, temperature=None, greedy=False, seed=0):
    """What ``unrolled sample`` prints for the model saved at ``path``.

    A :class:`~unrolled.models.CharRNN` reads a verse break and ``prime`` and generates
    ``steps`` characters (default 200) at ``temperature`` (default 1.0) or ``greedy``:
    ``prime`` and the characters. A reverse-task ``Seq2Seq`` decodes the symbols 0-9 in
    ``prime`` (separated by spaces or commas), greedily unless ``temperature`` is given:
    the reversed symbols, separated by spaces. ValueError for any other model.
    """
    model = io.load(path)
    if isinstance(model, CharRNN):
        text = prime or ""
        steps = 200 if steps is None else steps
        temperature = 1.0 if temperature is None else temperature
        return text + model.sample("\n" + text, steps, temperature=temperature, greedy=greedy, seed=seed)
    if isinstance(model, Seq2Seq):
        tokens = [t for t in re.split(r"[\s,]+", (prime or "").strip()) if t]
        if not tokens or not all(t.isdigit() and len(t) == 1 for t in tokens):
            raise ValueError(f"a sequence-to-sequence model decodes a sequence: give symbols 0-9 separated by "
                             f"spaces, e.g. --prime \"3 1 4\" (got {prime!r})")
        out = reverse_decode(model, [[int(t) for t in tokens]], steps, greedy=greedy or temperature is None,
                             temperature=1.0 if temperature is None else temperature, seed=seed)[0]
        return " ".join(map(str, out))
    raise ValueError(f"{path} holds a {type(model).__name__}, not a character model "
                     "('unrolled train --task kjv-chars') or a reverser ('unrolled train --task reverse')")
