"""Argument validators shared by the whole package: arrays, lengths, sizes, delays, seeds.

Each returns the value in the form the caller works with, or raises ``TypeError`` /
``ValueError`` naming what was expected and what came. Nothing here knows a model.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers

import numpy as np

__all__ = ["as_float_array", "check_lengths", "check_dtype", "positive_int", "check_hidden", "check_delay",
           "check_seed", "seed_for_config", "first_nonfinite", "parameter_budget", "check_parameter_budget"]

# While a file is loaded: the most numbers one network built from its config may hold.
_BUDGET = contextvars.ContextVar("unrolled_parameter_budget", default=None)


@contextlib.contextmanager
def parameter_budget(n, where):
    """``with parameter_budget(n, where):`` a network built inside may hold at most ``n``
    numbers (weights, biases, initial states and fixed matrices), else ValueError
    starting with ``where``: how ``load`` refuses a config that asks for more memory than
    its file could ever fill, before the memory is taken."""
    token = _BUDGET.set((int(n), where))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def check_parameter_budget(n):
    """ValueError if ``n`` numbers exceed the budget in force (none: any ``n``)."""
    budget = _BUDGET.get()
    if budget is not None and n > budget[0]:
        raise ValueError(f"{budget[1]}the config asks for a network of {n} numbers, more than the "
                         f"{budget[0]} this file can hold")


def as_float_array(value, dtype, name):
    """``value`` as an array of ``dtype``; TypeError for anything not real numbers."""
    if type(value) is np.ndarray and value.dtype == dtype:
        return value
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        if "inhomogeneous" in str(exc):
            raise TypeError(f"{name} must be an array of real numbers, got nested sequences of different "
                            "lengths (a ragged list)") from None
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers (float or int), got dtype {arr.dtype}")
    with np.errstate(over="ignore"):   # a value beyond the dtype's range becomes inf, which the callers refuse by place
        return arr.astype(dtype, copy=False)


def check_lengths(lengths, N, T):
    """``lengths`` as (N,) int64 in [0, T]; all T when None."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    arr = np.asarray(lengths)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        elif np.issubdtype(arr.dtype, np.floating):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))].ravel()[0]
            raise TypeError(f"lengths must be whole numbers of steps, got {bad!r}")
        else:
            raise TypeError(f"lengths must be integers, got dtype {arr.dtype}")
    if arr.shape != (N,):
        raise ValueError(f"expected lengths of shape ({N},), one per sequence, got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.int64)


def check_dtype(dtype):
    """``dtype`` as ``numpy.float32`` or ``numpy.float64``; TypeError for any other."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt.type


def positive_int(value, name):
    """``value`` as an int >= 1; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_delay(value, name, *, low):
    """``value`` as an int >= ``low``; TypeError / ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_hidden(hidden):
    """``hidden`` as a tuple of positive ints (an int is one layer)."""
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be an int or a sequence of ints, got {hidden!r}") from None
    if not hidden or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be one or more positive layer sizes, got {hidden!r}")
    return tuple(int(h) for h in hidden)


def check_seed(seed, name="seed"):
    """``seed`` if ``numpy.random.default_rng`` takes it as a seed: None, an int >= 0, a
    ``numpy.random.Generator`` or ``SeedSequence``; TypeError / ValueError otherwise."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None, an int >= 0 or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be >= 0, got {seed}")
    return int(seed)


def first_nonfinite(arr, name, lengths=None):
    """None if ``arr`` holds only finite values (at the valid steps, with ``lengths``: arr is
    (N, T, ...) then), else a message naming the first one: sequence, step, feature."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fc":
        return None
    bad = ~np.isfinite(arr)
    if lengths is not None and arr.ndim >= 2:
        valid = np.arange(arr.shape[1])[None, :] < np.asarray(lengths)[:, None]           # (N, T)
        bad &= valid.reshape(valid.shape + (1,) * (arr.ndim - 2))
    if not bad.any():
        return None
    where = np.unravel_index(np.argmax(bad), arr.shape)
    parts = ["sequence", "step", "feature"][:arr.ndim] + [f"axis {i}" for i in range(3, arr.ndim)]
    at = ", ".join(f"{part} {int(i)}" for part, i in zip(parts, where))
    return f"{name} holds {arr[where]} at {at} ({int(bad.sum())} non-finite value(s) in all)"


def check_finite_inputs(lengths=None, dtype=None, **arrays):
    """ValueError naming the first NaN or infinity of any of ``arrays`` (name -> (N, T, ...)
    input, None skipped) at its valid steps, or with ``dtype`` (the model's) the first
    value beyond its range, which would become infinity: what ``predict`` refuses rather
    than answer NaN."""
    narrow = None if dtype is None or np.dtype(dtype).kind != "f" else np.dtype(dtype)
    for name, arr in arrays.items():
        if arr is None:
            continue
        try:
            arr = np.asarray(arr)
            steps = lengths if (lengths is not None and np.ndim(lengths) == 1 and arr.ndim >= 2
                                and len(arr) == len(lengths)) else None
            cast = narrow is not None and arr.dtype.kind == "f" and arr.dtype.itemsize > narrow.itemsize
            with np.errstate(over="ignore", invalid="ignore"):      # (checked as the pass will read it)
                message = first_nonfinite(arr.astype(narrow) if cast else arr, name, steps)
            if message and cast and first_nonfinite(arr, name, steps) is None:
                message += (f" once cast to {narrow}, the model's dtype (its range ends at "
                            f"±{float(np.finfo(narrow).max):.2g})")
        except (ValueError, TypeError):          # ragged or malformed: forward names it
            continue
        if message:
            raise ValueError(f"{message}; predict reads finite inputs only (padded steps may hold anything)")


def seed_for_config(seed):
    """What a model's config records of the ``seed`` it was built with: the seed itself, or
    None for a ``numpy.random.Generator`` or ``SeedSequence`` (whose state a config cannot
    hold). TypeError / ValueError for what is no seed at all (``check_seed``)."""
    seed = check_seed(seed)
    return None if isinstance(seed, (np.random.Generator, np.random.SeedSequence)) else seed
