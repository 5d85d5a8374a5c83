"""The playground: a local web page where you build a network, train it and watch backprop live.

``chainrule playground`` (or :func:`serve`) starts it; :func:`create_app` is the ASGI app (Starlette),
and :class:`Session` is one tab's network, data and training, usable without a server:

>>> from chainrule.playground import Session
>>> s = Session({"dataset": "spiral", "layers": [8, 8], "activation": "tanh"})
>>> s.step(); s.epoch
1
"""

from .session import DEFAULTS, MAX_LAYERS, MAX_NEURONS, Session, TrainingStopped, check_settings


def create_app(**kwargs):
    """The playground's ASGI app (needs the ``chainrule[playground]`` extra); see :func:`app.create_app`."""
    from .app import create_app as _create

    return _create(**kwargs)


def serve(host: str = "127.0.0.1", port: int = 8765, **kwargs) -> None:
    """Run the playground on uvicorn until interrupted; see :func:`app.serve`."""
    from .app import serve as _serve

    _serve(host=host, port=port, **kwargs)
