"""The model registry: class names <-> classes, and a block <-> its config.

A class decorated with :func:`register_model` can be saved and loaded by name
(:mod:`unrolled.io`) and can sit inside another block's config (``Bidirectional``,
``Stack``, ``Seq2Seq`` describe their children with :func:`block_config`). Each class
registers where it is defined; loading a file never imports anything it names, it only
looks the name up here.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = ["register_model", "registered_class", "registered_name", "block_config", "block_from_config",
           "check_config"]

_REGISTRY: dict[str, type] = {}
# Classes of modules that ``import unrolled`` does not import at once (the estimators import
# scikit-learn): looking one of these names up imports its module, from this fixed table.
_DEFERRED = {name: "unrolled.estimators" for name in ("SequenceRegressor", "SequenceClassifier", "SequenceScaler")}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` savable and loadable by name.

    Stores ``cls`` under ``cls.__name__``.  Registering a second, different
    class under a name already taken raises ValueError (re-registering a
    class of the same module and qualified name, as on reload, replaces it).

    Parameters
    ----------
    cls : type
        A class with ``get_config()``, a ``from_config(config)`` classmethod and ``params``.

    Returns
    -------
    type
        ``cls`` unchanged.
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


def registered_name(obj: object, action: str) -> str:
    """The name ``obj``'s class is registered under; ValueError (saying that it cannot
    ``action`` it) if that class is not the one registered.

    Parameters
    ----------
    obj : object
        An instance of a registered class.
    action : str
        What the caller was about to do (``"save"``), for the message.

    Returns
    -------
    str
    """
    cls = type(obj)
    if _REGISTRY.get(cls.__name__) is not cls:
        raise ValueError(f"cannot {action} a {cls.__module__}.{cls.__qualname__}: its class is not "
                         "registered; decorate it with @unrolled.register_model")
    return cls.__name__


def registered_class(name: str, where: str = "") -> type:
    """The class registered as ``name``; ValueError listing the registered names if none.

    Parameters
    ----------
    name : str
        A registered class name.
    where : str
        Starts the error message (e.g. a file's path).

    Returns
    -------
    type
    """
    if name not in _REGISTRY and name in _DEFERRED:
        importlib.import_module(_DEFERRED[name])
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"{where}unknown model class {name!r}; registered: {sorted(_REGISTRY)}. "
                         "Import the module that defines it (decorated with @register_model) first.")
    return cls


def block_config(block: Any) -> dict:
    """A child block, as a parent saves it in its config.

    Parameters
    ----------
    block : object
        An instance of a registered class.

    Returns
    -------
    dict
        ``{"class": name, "config": block.get_config()}``.
    """
    return {"class": registered_name(block, "describe in a config"), "config": block.get_config()}


def block_from_config(spec: dict) -> Any:
    """The block that :func:`block_config` described (its class looked up in the registry).

    Parameters
    ----------
    spec : dict
        ``{"class": name, "config": dict}``.

    Returns
    -------
    object
        ``registered_class(name).from_config(config)``.
    """
    if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
        raise ValueError(f"expected a block spec {{'class': name, 'config': dict}}, got {spec!r:.200}")
    return registered_class(spec["class"]).from_config(spec["config"])


def _is_block_spec(obj) -> bool:
    return (isinstance(obj, dict) and set(obj) == {"class", "config"}
            and isinstance(obj["class"], str) and isinstance(obj["config"], dict))


def _constructor_keys(cls):
    """``(accepted, required)`` config keys of ``cls``, or None where they cannot be known.

    They are known where ``from_config`` is one of unrolled's own: those pass the config
    to the constructor by keyword (``cls(**config)``, or key by key for the composites and
    ``Network``), so the constructor's signature names the keys. A class that brings its
    own ``from_config`` may map keys as it likes; its errors are caught by the caller.
    ``accepted`` is None when the constructor takes ``**kwargs``.
    """
    declared = getattr(cls, "config_keys", None)
    if declared is not None:                 # a class whose config is not its constructor's arguments
        return set(declared), set(declared)
    func = getattr(getattr(cls, "from_config", None), "__func__", None)
    if not (getattr(func, "__module__", None) or "").split(".")[0] == "unrolled":
        return None
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    params = sig.parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    required = {p.name for p in params if p.kind in named and p.default is inspect.Parameter.empty}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None, required
    accepted = {p.name for p in params if p.kind in named or p.kind is inspect.Parameter.VAR_POSITIONAL}
    return accepted, required


def check_config(cls: type, config: dict, where: str = "", at: str = "config") -> None:
    """ValueError unless ``config`` fits ``cls``: a dict whose keys its constructor takes,
    with every required one, and likewise for every child block spec
    (``{"class": name, "config": dict}``) inside it, whose class must be registered.
    Nothing is built.

    Parameters
    ----------
    cls : type
        The class the config is for.
    config : dict
        Its config.
    where : str
        Starts the error message (e.g. a file's path).
    at : str
        Names the config in the message (a child's is e.g.
        ``config['forward_net']['config']``).
    """
    name = getattr(cls, "__name__", repr(cls))
    if not isinstance(config, dict):
        raise ValueError(f"{where}{at} (a {name} config) must be a dict, got {type(config).__name__}")
    keys = _constructor_keys(cls)
    if keys is not None:
        accepted, required = keys
        if accepted is not None:
            unknown = sorted(set(config) - accepted)
            if unknown:
                raise ValueError(f"{where}{at} (a {name} config) has keys {unknown} that {name}() does "
                                 f"not take; it takes {sorted(accepted)}")
        missing = sorted(required - set(config))
        if missing:
            raise ValueError(f"{where}{at} (a {name} config) lacks the keys {missing} that {name}() requires")
    stack = [(v, f"{at}[{k!r}]") for k, v in config.items()]
    while stack:  # child block specs, at any depth (Stack's list, Bidirectional's nets, ...)
        obj, here = stack.pop()
        if _is_block_spec(obj):
            check_config(registered_class(obj["class"], f"{where}{here}: "), obj["config"], where,
                         f"{here}['config']")
        elif isinstance(obj, dict):
            stack.extend((v, f"{here}[{k!r}]") for k, v in obj.items())
        elif isinstance(obj, list):
            stack.extend((v, f"{here}[{i}]") for i, v in enumerate(obj))
