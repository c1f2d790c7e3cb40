"""Which code runs a pass: the compiled kernels (``"fast"``) or the NumPy reference (``"numpy"``).

``"fast"`` needs numba, and NumPy's own OpenBLAS for its products (``kernels.blas``);
``"numpy"`` runs the readable loops of ``engine.reference``. The default, ``"auto"``, is
``"fast"`` where both are there, else ``"numpy"``; ``UNROLLED_BACKEND`` sets it at import,
:func:`set_default_backend` later, and a network's own ``backend`` overrides it.

The compiled module (``kernels.compiled``) is imported only when a fast pass first asks
for it: importing numba costs some 0.3 s that a NumPy-only user never pays.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings

from .kernels import blas

__all__ = ["BACKENDS", "check_backend", "set_default_backend", "default_backend", "numba_installed",
           "compiled_kernels", "kernels_for"]

BACKENDS = ("fast", "numpy")


@functools.lru_cache(maxsize=None)
def numba_installed():
    """Whether numba can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):      # e.g. sys.modules["numba"] = None: import blocked
        return False


def check_backend(name, auto=False):
    """``name`` if it is a backend (or ``"auto"``, with ``auto``); ValueError otherwise, and
    for ``"fast"`` without numba."""
    if name not in BACKENDS + (("auto",) if auto else ()):
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "fast" and not numba_installed():
        raise ValueError("backend 'fast' compiles the time loops with numba, which is not installed"
                         "\n- help: pip install numba, or use backend='numpy' (the same results, slower)")
    return name


_default = check_backend(os.environ.get("UNROLLED_BACKEND") or "auto", auto=True)
_compiled = None        # the imported ``kernels.compiled``, once a fast pass asked for it


def default_backend():
    """The backend of networks without their own: ``"auto"``, ``"fast"`` or ``"numpy"``."""
    return _default


def set_default_backend(name):
    """Set how networks without their own ``backend`` run their time loops; returns the old one.

    ``"fast"``: each recurrence's time loop (forward and BPTT) is one compiled function
    (numba; compiled once and cached on disk). ``"numpy"``: the readable step-by-step
    NumPy loops, the reference the fast one is tested against. ``"auto"`` (the default):
    ``"fast"`` when numba is installed and NumPy's OpenBLAS could be bound (see
    ``unrolled.engine.kernels``), else ``"numpy"``. The environment variable
    ``UNROLLED_BACKEND`` sets it at import.
    """
    global _default
    old, _default = _default, check_backend(name, auto=True)
    return old


def compiled_kernels():
    """The compiled module, imported on first use; None (the default falls back to
    ``"numpy"``, with a warning) where numba is installed but fails to import."""
    global _compiled, _default
    if _compiled is None:
        try:
            from .kernels import compiled
        except Exception as exc:  # numba installed but unusable (e.g. built for another NumPy)
            warnings.warn(f"numba failed to import ({exc}); unrolled runs its NumPy loops "
                          f"(backend='numpy')", RuntimeWarning, stacklevel=3)
            _default = "numpy"
            return None
        _compiled = compiled
    return _compiled


def kernels_for(backend):
    """The compiled module that a pass with ``backend`` (a network's own, or None: the
    default) runs on, or None where it runs the NumPy reference."""
    name = backend or _default
    if name == "numpy" or (name == "auto" and not numba_installed()):
        return None
    kernels = compiled_kernels()
    if name == "auto" and kernels is not None and not blas.BLAS:
        return None
    return kernels
