"""Compiled loops (Numba), the binding to NumPy's BLAS, the engine's threads."""
