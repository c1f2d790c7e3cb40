"""The engine: one column of layers and delayed links, unrolled over time, and BPTT through it."""

from .network import ForwardCache, Layer, Link, Network, set_default_backend

__all__ = ["Layer", "Link", "Network", "ForwardCache", "set_default_backend"]
