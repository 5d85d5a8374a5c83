"""Plots of training (matplotlib, drawn off-screen): curves, decision boundaries and their animation,
first-layer weights as images, conv filters, a PCA of hidden activations, per-layer diagnostics.

Every function takes an optional ``path`` (the figure is saved there, PNG or SVG by extension) and
returns the matplotlib ``Figure``. No pyplot state is used, so nothing opens a window.
"""

from __future__ import annotations

import os

import numpy as np

from .. import autograd
from ..tensor import Tensor
from ..train.callbacks import Callback
from ._format import percent


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1, constrained: bool = False, **kw):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("cr.viz plots need matplotlib: pip install 'chainrule[all]'") from None
    fig = Figure(figsize=(width, height), layout="constrained" if constrained else None)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _finish(fig, path):
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    if path is not None:
        path = os.fspath(path)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def _array(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x._data
    return np.asarray(x)


def _forward(model, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    was = model.training
    model.eval()
    outs = []
    try:
        with autograd.no_grad():
            for i in range(0, len(x), batch):
                outs.append(_array(model(Tensor._wrap(np.ascontiguousarray(x[i:i + batch])))))
    finally:
        model.train(was)
    return np.concatenate(outs) if outs else np.zeros((0,))


def _classes(out: np.ndarray) -> np.ndarray:
    """Predicted class from model outputs: argmax, or a threshold for a single output column
    (0.5 for probabilities, 0 for logits)."""
    if out.ndim == 1 or out.shape[-1] == 1:
        o = out.reshape(len(out))
        threshold = 0.5 if o.min(initial=0) >= 0 and o.max(initial=0) <= 1 else 0.0
        return (o > threshold).astype(int)
    return out.argmax(axis=-1)


def _labels(y) -> np.ndarray:
    y = _array(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        return y.argmax(axis=-1)
    return y.reshape(len(y)).round().astype(int)


# ---- training curves --------------------------------------------------------------------------------
def training_curves(history, path=None, smooth: int = 20):
    """Loss per iteration (with a moving average) and every per-epoch column, train vs validation.

    ``history`` is a ``cr.History`` (``iterations``, ``epochs``) or a dict of per-epoch lists
    (``{'loss': [...], 'val_loss': [...]}``)."""
    iterations, epochs = _history_parts(history)
    keys = [k for k in _epoch_columns(epochs) if not k.startswith("val_") and k not in ("epoch", "lr", "seconds")]
    ncols = 1 + max(1, len(keys))
    fig, axes = _figure(4.2 * ncols, 3.4, 1, ncols)
    ax = axes[0, 0]
    if iterations:
        it = np.arange(1, len(iterations) + 1)
        ax.plot(it, iterations, lw=0.6, alpha=0.5, label="per iteration")
        if len(iterations) >= 2 * smooth:
            kernel = np.ones(smooth) / smooth
            ax.plot(it[smooth - 1:], np.convolve(iterations, kernel, mode="valid"), lw=1.5,
                    label=f"mean of {smooth}")
        if min(iterations) > 0:
            ax.set_yscale("log")
        ax.legend()
    ax.set(title="loss per iteration", xlabel="iteration", ylabel="loss")
    xs = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
    for ax, key in zip(axes[0, 1:], keys or ["loss"]):
        for prefix, style, label in (("", "-o", "train"), ("val_", "--s", "validation")):
            col = [e.get(prefix + key) for e in epochs]
            if any(v is not None for v in col):
                ax.plot(xs, [np.nan if v is None else v for v in col], style, ms=3, label=label)
        _integer_ticks(ax)
        ax.set(title=f"{key} per epoch", xlabel="epoch", ylabel=key)
        if ax.lines:
            ax.legend()
    return _finish(fig, path)


def _history_parts(history) -> tuple:
    if hasattr(history, "epochs") and hasattr(history, "iterations"):
        return list(history.iterations), list(history.epochs)
    if isinstance(history, dict):
        if "epochs" in history and isinstance(history["epochs"], list) and history["epochs"] and \
                isinstance(history["epochs"][0], dict):
            return list(history.get("iterations", [])), list(history["epochs"])
        n = max((len(v) for v in history.values() if isinstance(v, list)), default=0)
        epochs = [{k: v[i] for k, v in history.items() if isinstance(v, list) and i < len(v)} for i in range(n)]
        return list(history.get("iterations", [])), epochs
    raise TypeError(f"training_curves: expected a History or a dict of lists, got {type(history).__name__}")


def _epoch_columns(epochs: list) -> list:
    cols: list = []
    for e in epochs:
        cols += [k for k in e if k not in cols]
    return cols


# ---- decision boundaries ----------------------------------------------------------------------------
def _grid(x: np.ndarray, resolution: int):
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.1 * (hi - lo) + 1e-6
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(gx, gy)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=1).astype(x.dtype if x.dtype.kind == "f" else np.float32)


def decision_regions(model, x, resolution: int = 120):
    """``(xx, yy, classes)``: the model's predicted class on a grid covering the 2-D inputs ``x``."""
    x = _array(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision_boundary: needs 2-D inputs of shape (N, 2), got {tuple(x.shape)}")
    xx, yy, pts = _grid(x, resolution)
    return xx, yy, _classes(_forward(model, pts)).reshape(xx.shape)


def _draw_regions(ax, xx, yy, regions, x, y, title):
    n_classes = int(max(regions.max(initial=0), y.max(initial=0))) + 1
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(xx, yy, regions, levels=levels, cmap="coolwarm" if n_classes == 2 else "tab10",
                alpha=0.35, vmin=-0.5, vmax=n_classes - 0.5)
    ax.contour(xx, yy, regions, levels=levels[1:-1], colors="k", linewidths=0.8)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm" if n_classes == 2 else "tab10", s=12,
               edgecolors="k", linewidths=0.3, vmin=-0.5, vmax=n_classes - 0.5)
    ax.set(title=title, xlabel="x1", ylabel="x2")


def decision_boundary(model, x, y, path=None, resolution: int = 120, title: str | None = None, ax=None,
                      split: str | None = None):
    """The regions a 2-D classifier assigns to each class, with the data on top. The title gives the
    accuracy on these points, naming the ``split`` they are (``"test"``, ``"training"``) when given."""
    xs, ys = _array(x), _labels(y)
    xx, yy, regions = decision_regions(model, xs, resolution)
    if ax is None:
        fig, axes = _figure(4.6, 4.2)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    acc = float((_classes(_forward(model, xs)) == ys).mean())
    where = f"{split} accuracy" if split else "accuracy on the points shown"
    _draw_regions(ax, xx, yy, regions, xs, ys, title or f"decision boundary ({where} {percent(acc)})")
    return _finish(fig, path)


class DecisionBoundaryRecorder(Callback):
    """A ``fit`` callback that keeps the predicted regions after every ``every`` epochs; ``save_gif``
    writes them as an animated GIF (one frame per recorded epoch)."""

    def __init__(self, x, y, every: int = 1, resolution: int = 80):
        self.x, self.y = _array(x), _labels(y)
        self.every, self.resolution = every, resolution
        self.frames: list = []  # (epoch, regions)
        self.model = None
        self.trainer = None

    def on_train_begin(self, trainer) -> None:
        self.model = getattr(trainer, "model", trainer)
        self.trainer = trainer
        self.record(0)

    def record(self, epoch: int) -> None:
        xx, yy, regions = decision_regions(self.model, self.x, self.resolution)
        self._grid = (xx, yy)
        self.frames.append((epoch, regions))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch % self.every == 0:
            self.record(epoch)

    def save_gif(self, path, fps: float = 4.0) -> str:
        return decision_boundary_gif(self, path, fps)


def decision_boundary_gif(recorder: DecisionBoundaryRecorder, path, fps: float = 4.0) -> str:
    """An animated GIF (Pillow) of the decision regions a recorder kept, epoch by epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    if not recorder.frames:
        raise ValueError("decision_boundary_gif: the recorder has no frames; pass it to fit(callbacks=[...])")
    xx, yy = recorder._grid
    images = []
    for epoch, regions in recorder.frames:
        fig, axes = _figure(4.0, 3.7)
        _draw_regions(axes[0, 0], xx, yy, regions, recorder.x, recorder.y, f"epoch {epoch}")
        fig.tight_layout()
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


# ---- weights as pictures ----------------------------------------------------------------------------
def _first(model, kind: str):
    """``(label, module)`` of the model's first ``kind`` layer: its attribute name (``fc1``), or
    ``Linear 1`` when it is only numbered inside a Sequential."""
    for name, m in model.named_modules():
        if type(m).__name__ == kind:
            return (name if name and not name.rsplit(".", 1)[-1].isdigit() else f"{kind} 1"), m
    return None, None


def _tile(fig, ax_grid, images, titles, cmap, label: str):
    """Images on one colour scale, symmetric around 0, with a colour bar (RGB images: grey is 0)."""
    for ax in ax_grid.ravel():
        ax.axis("off")
    lim = float(max((np.abs(img).max() for img in images), default=0.0)) or 1.0
    shown = None
    for ax, img, title in zip(ax_grid.ravel(), images, titles):
        if img.ndim == 3:  # RGB: scaled to [0, 1] around grey
            ax.imshow(np.clip(img / (2 * lim) + 0.5, 0, 1))
        else:
            shown = ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=8)
    if shown is not None:
        bar = fig.colorbar(shown, ax=list(ax_grid.ravel()), shrink=0.8, fraction=0.05)
        bar.set_label(label)


def _which(shown: int, total: int, what: str) -> str:
    return f"all {total} {what}" if shown == total else f"first {shown} of {total} {what}"


def first_layer_weights(model, image_shape=None, path=None, max_units: int = 32):
    """Each unit of the first Linear layer drawn as an image of the input (the lecture's "templates").

    ``image_shape`` is ``(H, W)`` or ``(C, H, W)``; by default a square greyscale image is assumed."""
    name, layer = _first(model, "Linear")
    if layer is None:
        raise ValueError(f"first_layer_weights: {type(model).__name__} has no Linear layer")
    w = layer.weight._data
    n_in = w.shape[1]
    if image_shape is None:
        side = int(round(np.sqrt(n_in)))
        if side * side != n_in:
            raise ValueError(f"first_layer_weights: {n_in} inputs are not a square image; pass image_shape=(H, W)")
        image_shape = (side, side)
    if int(np.prod(image_shape)) != n_in:
        raise ValueError(f"first_layer_weights: image_shape {tuple(image_shape)} has {int(np.prod(image_shape))} "
                         f"pixels, the layer has {n_in} inputs")
    units = w[:max_units]
    imgs = [u.reshape(image_shape) for u in units]
    rgb = len(image_shape) == 3 and image_shape[0] == 3
    if len(image_shape) == 3:
        imgs = [np.moveaxis(i, 0, -1) if i.shape[0] in (3,) else i.mean(axis=0) for i in imgs]
    cols = min(8, len(imgs))
    rows = -(-len(imgs) // cols)
    fig, axes = _figure(1.3 * cols + 0.9, 1.4 * rows + 0.5, rows, cols, constrained=True)
    _tile(fig, axes, imgs, [f"unit {i}" for i in range(len(imgs))], "RdBu_r", "weight")
    colours = "RGB, grey = 0" if rgb else "red +, blue -"
    fig.suptitle(f"first-layer weights ({name or 'Linear'}), {_which(len(imgs), len(w), 'units')}: {colours}")
    return _finish(fig, path)


def conv_filters(model, path=None, max_filters: int = 32):
    """The learned filters of the first Conv2d layer (RGB when it reads 3 channels, else per channel mean)."""
    name, layer = _first(model, "Conv2d")
    if layer is None:
        raise ValueError(f"conv_filters: {type(model).__name__} has no Conv2d layer")
    total = layer.weight.shape[0]
    w = layer.weight._data[:max_filters]  # (out, in, kh, kw)
    imgs = [np.moveaxis(f, 0, -1) if f.shape[0] == 3 else f.mean(axis=0) for f in w]
    cols = min(8, len(imgs))
    rows = -(-len(imgs) // cols)
    fig, axes = _figure(1.3 * cols + 0.9, 1.4 * rows + 0.5, rows, cols, constrained=True)
    channels = "RGB" if w.shape[1] == 3 else ("mean over input channels" if w.shape[1] > 1 else "one channel")
    _tile(fig, axes, imgs, [f"filter {i}" for i in range(len(imgs))], "RdBu_r", "weight")
    fig.suptitle(f"learned filters of {name or 'Conv2d'} ({w.shape[2]}x{w.shape[3]}, {channels}), "
                 f"{_which(len(imgs), total, 'filters')}")
    return _finish(fig, path)


# ---- hidden representations -------------------------------------------------------------------------
def hidden_activations(model, x, layer=None) -> np.ndarray:
    """The output of ``layer`` (a module, its name in ``named_modules``, or None for the last hidden
    activation: the module just before the last layer with parameters) for inputs ``x``."""
    target = _hidden_layer(model, layer)
    captured = []

    def hook(module, args, output):
        captured.append(_array(output).reshape(len(_array(output)), -1))

    handle = target.register_forward_hook(hook)
    try:
        _forward(model, _array(x))
    finally:
        handle.remove()
    return np.concatenate(captured)


def _hidden_layer(model, layer):
    if layer is not None and not isinstance(layer, str):
        return layer
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in modules:
            raise ValueError(f"hidden_pca: no layer {layer!r}; layers are {[k for k in modules if k]}")
        return modules[layer]
    leaves = [(n, m) for n, m in model.named_modules() if n and not m._modules]
    with_params = [i for i, (_, m) in enumerate(leaves) if any(p is not None for p in m._parameters.values())]
    if len(with_params) < 2:
        raise ValueError("hidden_pca: the model has no hidden layer; pass layer=")
    return leaves[with_params[-1] - 1][1]


def pca(a: np.ndarray, k: int = 2) -> tuple:
    """Project rows of ``a`` on their first ``k`` principal components (SVD of the centred data).
    Returns ``(projection, explained variance ratio)``."""
    a = np.asarray(a, dtype=np.float64)
    centred = a - a.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return centred @ vt[:k].T, ratio


def hidden_pca(model, x, y, layer=None, path=None, title: str | None = None):
    """A hidden layer's activations projected to 2-D by PCA, coloured by class: how the layers
    transform the inputs until the classes separate."""
    h = hidden_activations(model, x, layer)
    proj, ratio = pca(h, 2)
    if proj.shape[1] < 2:
        proj = np.concatenate([proj, np.zeros((len(proj), 2 - proj.shape[1]))], axis=1)
    labels = _labels(y)
    fig, axes = _figure(4.6, 4.2)
    ax = axes[0, 0]
    sc = ax.scatter(proj[:, 0], proj[:, 1], c=labels, cmap="tab10", s=10, vmin=-0.5, vmax=9.5)
    ax.set(title=title or f"hidden layer, PCA ({percent(ratio.sum())} of the variance)", xlabel="PC 1",
           ylabel="PC 2")
    handles, _ = sc.legend_elements()
    classes = np.unique(labels)
    if len(classes) <= 10:
        ax.legend(handles[: len(classes)], [str(c) for c in classes], fontsize=7, title="class", loc="best")
    return _finish(fig, path)


# ---- diagnostics ------------------------------------------------------------------------------------
def plot_gradient_norms(diagnostics, path=None, ax=None, title: str | None = None):
    """Gradient norm of each layer over the epochs (log scale): vanishing gradients at a glance."""
    if ax is None:
        fig, axes = _figure(5.5, 3.8)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    series = diagnostics.series("grad_norm")
    cmap = _cmap("viridis")
    n = len(series)
    for i, (name, values) in enumerate(series.items()):
        if not np.isfinite(values).any():
            continue
        ax.plot(diagnostics.epochs[: len(values)], values, "-o", ms=3, color=cmap(i / max(n - 1, 1)),
                label=_label(diagnostics, name))
    ax.set(title=title or "gradient norm by layer", xlabel="epoch", ylabel="||dL/dW||")
    _integer_ticks(ax)
    if not ax.lines:
        _nothing(ax, "no gradients recorded (pass the Diagnostics to fit(callbacks=[...]))")
        return _finish(fig, path)
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2 if n > 6 else 1, title=f"{n} layers, input first", title_fontsize=7)
    return _finish(fig, path)


def _label(diagnostics, name: str) -> str:
    return diagnostics.label(name) if hasattr(diagnostics, "label") else name


def _nothing(ax, text: str) -> None:
    """Say on the axes why a panel is empty instead of leaving blank axes."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8, wrap=True,
            color="#555555")


# y label of each diagnostics panel, and what an empty panel means
_PANEL = {
    "grad_norm": ("||dL/dW||", "no gradients recorded"),
    "weight_norm": ("||W||", "no weights recorded"),
    "update_ratio": ("||W_after - W_before|| / ||W||", "no optimizer steps recorded"),
    "act_mean": ("mean activation", "no activations recorded"),
    "act_std": ("std of the activations", "no activations recorded"),
    "saturated": ("fraction of saturated outputs", "no sigmoid or tanh layer to saturate"),
    "dead": ("fraction of dead ReLU units", "no ReLU layer"),
}


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _cmap(name):
    from matplotlib import colormaps

    return colormaps[name]


def plot_diagnostics(diagnostics, path=None, metrics=("grad_norm", "update_ratio", "act_std", "saturated", "dead")):
    """One panel per metric, one line per layer."""
    fig, axes = _figure(4.2 * len(metrics), 3.6, 1, len(metrics))
    cmap = _cmap("viridis")
    for ax, metric in zip(axes[0], metrics):
        series = diagnostics.series(metric)
        n = len(series)
        for i, (name, values) in enumerate(series.items()):
            if not np.isfinite(values).any():
                continue
            ax.plot(diagnostics.epochs[: len(values)], values, "-o", ms=2.5, color=cmap(i / max(n - 1, 1)),
                    label=_label(diagnostics, name))
        ylabel, empty = _PANEL.get(metric, (metric.replace("_", " "), "nothing recorded"))
        _integer_ticks(ax)
        ax.set(title=metric.replace("_", " "), xlabel="epoch", ylabel=ylabel)
        if not ax.lines:
            _nothing(ax, f"nothing to show: {empty}")
        elif metric in ("grad_norm", "update_ratio", "weight_norm"):
            ax.set_yscale("log")
    with_lines = [ax for ax in axes[0] if ax.lines]
    if with_lines:
        with_lines[0].legend(fontsize=6, ncol=2)
    return _finish(fig, path)


# ---- everything for a run folder --------------------------------------------------------------------
def write_all(run_dir, history=None, model=None, data=None, diagnostics=None, image_shape=None,
              recorder: DecisionBoundaryRecorder | None = None, split: str | None = "test") -> list:
    """Write every plot that applies into ``run_dir`` and return the paths.

    ``data`` is ``(inputs, targets)``; used for the decision boundary (2-D inputs) and the PCA of the
    last hidden layer (``split`` names which data it is, for the titles). First-layer weights are drawn for square (or ``image_shape``) inputs, conv
    filters when the model has a Conv2d, per-layer curves when ``diagnostics`` (a :class:`Diagnostics`
    that was passed to ``fit``) is given, and the boundary's GIF when a :class:`DecisionBoundaryRecorder`
    that was passed to ``fit`` is given as ``recorder``.
    """
    run_dir = os.fspath(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    written = []

    def attempt(filename, fn, *args, **kwargs):
        path = os.path.join(run_dir, filename)
        try:
            fn(*args, path=path, **kwargs)
        except ValueError:
            return  # that plot does not apply to this model or data
        written.append(path)

    if history is not None:
        attempt("training_curves.png", training_curves, history)
    if model is not None:
        if _first(model, "Conv2d")[1] is not None:
            attempt("conv_filters.png", conv_filters, model)
        elif _first(model, "Linear")[1] is not None:
            shape = image_shape
            if shape is None and data is not None:
                x = _array(data[0])
                shape = x.shape[1:] if x.ndim > 2 else None
            if shape is not None or _is_square(_first(model, "Linear")[1].weight.shape[1]):
                attempt("first_layer_weights.png", first_layer_weights, model, shape)
        if data is not None:
            x, y = data[0], data[1]
            if _array(x).ndim == 2 and _array(x).shape[1] == 2:
                attempt("decision_boundary.png", decision_boundary, model, x, y, split=split)
            attempt("hidden_pca.png", hidden_pca, model, x, y)
    if recorder is not None and recorder.frames:
        path = os.path.join(run_dir, "decision_boundary.gif")
        recorder.save_gif(path)
        written.append(path)
    if diagnostics is not None:
        attempt("gradient_norms.png", plot_gradient_norms, diagnostics)
        attempt("diagnostics.png", plot_diagnostics, diagnostics)
    return written


def _is_square(n: int) -> bool:
    side = int(round(np.sqrt(n)))
    return side * side == n and n >= 16
