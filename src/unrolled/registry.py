"""The model registry: class names <-> classes, and a block <-> its config.

A class decorated with :func:`register_model` can be saved and loaded by name
(:mod:`unrolled.io`) and can sit inside another block's config (``Bidirectional``,
``Stack``, ``Seq2Seq`` describe their children with :func:`block_config`). Each class
registers where it is defined; loading a file never imports anything it names, it only
looks the name up here.
"""

from __future__ import annotations

__all__ = ["register_model", "registered_class", "registered_name", "block_config", "block_from_config"]

_REGISTRY: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` savable and loadable by name.

    Stores ``cls`` under ``cls.__name__``.  Registering a second, different
    class under a name already taken raises ValueError (re-registering a
    class of the same module and qualified name, as on reload, replaces it).
    Returns ``cls`` unchanged.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_model expects a class, got {type(cls).__name__}")
    if not callable(getattr(cls, "from_config", None)):
        raise TypeError(f"{cls.__name__} must define a from_config(config) classmethod to be registered")
    name = cls.__name__
    old = _REGISTRY.get(name)
    if old is not None and old is not cls:
        if (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(
                f"model class name {name!r} is already registered for "
                f"{old.__module__}.{old.__qualname__}; cannot register "
                f"{cls.__module__}.{cls.__qualname__} under the same name"
            )
    _REGISTRY[name] = cls
    return cls


def registered_name(obj, action: str) -> str:
    """The name ``obj``'s class is registered under; ValueError (saying that it cannot
    ``action`` it) if that class is not the one registered."""
    cls = type(obj)
    if _REGISTRY.get(cls.__name__) is not cls:
        raise ValueError(f"cannot {action} a {cls.__module__}.{cls.__qualname__}: its class is not "
                         "registered; decorate it with @unrolled.register_model")
    return cls.__name__


def registered_class(name: str, where: str = "") -> type:
    """The class registered as ``name``; ValueError listing the registered names if none
    (``where``, e.g. a file's path, starts the message)."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"{where}unknown model class {name!r}; registered: {sorted(_REGISTRY)}. "
                         "Import the module that defines it (decorated with @register_model) first.")
    return cls


def block_config(block):
    """``{"class": name, "config": block.get_config()}``: a child, as a parent saves it."""
    return {"class": registered_name(block, "describe in a config"), "config": block.get_config()}


def block_from_config(spec):
    """The block that :func:`block_config` described (its class looked up in the registry)."""
    if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
        raise ValueError(f"expected a block spec {{'class': name, 'config': dict}}, got {spec!r:.200}")
    return registered_class(spec["class"]).from_config(spec["config"])
