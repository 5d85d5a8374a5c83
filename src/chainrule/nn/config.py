"""Rebuilding modules from JSON-able configs: ``module.get_config()`` and ``from_config(config)``.

A config is ``{"class": "Linear", "args": {"in_features": 2, "out_features": 1, "bias": True}}``;
containers nest their children's configs. A checkpoint stores the config next to the weights, so
``cr.load_model`` can rebuild an architecture without the code that built it. Only classes registered
here can be rebuilt: a config can never name arbitrary code to run.
"""

from __future__ import annotations

from typing import Any

_REGISTRY: dict[str, type] = {}


def register_config(cls: type) -> type:
    """Class decorator: let :func:`from_config` rebuild ``cls`` from ``{"class": cls.__name__, ...}``.

    The class must define ``get_config()``; by default it is rebuilt as ``cls(**args)`` (a class may
    override this with a ``_from_config_args(args)`` classmethod).
    """
    _REGISTRY[cls.__name__] = cls
    return cls


def registered_classes() -> dict[str, type]:
    """The classes :func:`from_config` knows, by name."""
    return dict(_REGISTRY)


def make_config(module, **args: Any) -> dict:
    return {"class": type(module).__name__, "args": args}


def from_config(config: dict):
    """Build the module a config describes (fresh weights: load a state dict afterwards).

    >>> layer = cr.nn.from_config({"class": "Linear", "args": {"in_features": 2, "out_features": 1}})
    >>> layer.weight.shape
    chainrule.Size([1, 2])
    """
    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"from_config: expected a dict with keys 'class' and 'args', got {config!r:.200}")
    name = config["class"]
    cls = _REGISTRY.get(name)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"from_config: unknown module class {name!r}; known classes: {known}")
    args = config.get("args", {}) or {}
    if not isinstance(args, dict):
        raise ValueError(f"from_config: 'args' of {name} must be a dict, got {type(args).__name__}")
    build = getattr(cls, "_from_config_args", None)
    try:
        return build(args) if build is not None else cls(**args)
    except TypeError as e:
        raise ValueError(f"from_config: cannot build {name} from args {args!r:.200}: {e}") from None
