"""History: what a training run recorded, per iteration and per epoch."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field


@dataclass
class History:
    """The record of a ``fit``: ``iterations`` holds the loss of every step; ``epochs`` holds one dict
    per epoch (``epoch, loss, val_loss, <metric>, val_<metric>, lr, seconds``). ``history[key]`` gives one
    column over epochs, Keras style."""

    iterations: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> list:
        if not self.epochs or key not in self.epochs[-1]:
            raise KeyError(f"History has no column {key!r}; columns are {self.columns}")
        return [e.get(key) for e in self.epochs]

    @property
    def history(self) -> dict:
        return {k: self[k] for k in self.columns}

    @property
    def columns(self) -> list:
        cols: list = []
        for e in self.epochs:
            cols += [k for k in e if k not in cols]
        return cols

    def to_dict(self) -> dict:
        return {"iterations": self.iterations, "epochs": self.epochs, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(list(d.get("iterations", [])), list(d.get("epochs", [])), dict(d.get("params", {})))

    def to_json(self, path: str | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, allow_nan=True)
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_csv(self, path: str | None = None) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns)
        writer.writeheader()
        for e in self.epochs:
            writer.writerow(e)
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def load(cls, path: str) -> History:
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items())
        return f"History({len(self.epochs)} epochs, {len(self.iterations)} iterations; last: {shown})"


def atomic_write_text(path: str, text: str) -> None:
    """Write a text file so that a crash leaves either the old file or the new one, never half; the
    file gets the user's umask like any other (``cr.io.atomic_write``)."""
    from ..io.safetensors import atomic_write

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
