"""Ready-made convolutional models.

``LeNet``: LeCun's LeNet-5 layout with ReLU and max pooling, as usually trained on MNIST today:

    conv 5x5 (in -> 6), relu, maxpool 2  ->  conv 5x5 (6 -> 16), relu, maxpool 2
    -> flatten -> linear 120, relu -> linear 84, relu -> linear num_classes

On 28x28 images the convolutions are unpadded (28 -> 24 -> 12 -> 8 -> 4, so 16 * 4 * 4 = 256
features reach the first linear layer). Images smaller than 16x16 (8x8 digits) would shrink to
nothing that way, so there the convolutions pad by 2 and keep the size ('same'):
8 -> 8 -> 4 -> 4 -> 2, giving 16 * 2 * 2 = 64 features. ``padding`` overrides the choice.
``channels`` (6, 16) and ``hidden`` (120, 84) widen or narrow the network, keeping its shape.
``batch_norm=True`` puts a BatchNorm2d after each convolution (``bn1``, ``bn2``) and ``dropout``
drops hidden units of the first linear layer (``drop``): together they make training on small data
sets such as the 1,437 training digits markedly more reliable.
"""

from __future__ import annotations

from ..tensor import Tensor
from .config import make_config, register_config
from .conv import Conv2d
from .linear import Dropout, Linear
from .module import Module
from .normalization import BatchNorm2d
from .pooling import MaxPool2d


def _size_pair(image_size) -> tuple:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        return (image_size, image_size)
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        return (int(image_size[0]), int(image_size[1]))
    raise ValueError(f"LeNet: image_size must be an int or a pair (height, width), got {image_size!r}")


def _size_pair_of(value, name: str) -> tuple:
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"LeNet: {name} must be a pair of positive ints, got {value!r}")


@register_config
class LeNet(Module):
    """LeNet-style CNN for small images (N, in_channels, H, W) -> logits (N, num_classes).

    Submodule names (``conv1``, ``conv2``, ``pool``, ``fc1``, ``fc2``, ``fc3``) give state dict keys
    ``conv1.weight`` ... ``fc3.bias``, the same as the usual PyTorch LeNet written with those names.

    >>> net = cr.nn.LeNet()
    >>> net(cr.zeros(2, 1, 28, 28)).shape, net.fc1.in_features
    ((2, 10), 256)
    >>> cr.nn.LeNet(image_size=8).fc1.in_features
    64
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size=28,
                 padding: int | None = None, channels=(6, 16), hidden=(120, 84),
                 batch_norm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        h, w = _size_pair(image_size)
        c1, c2 = _size_pair_of(channels, "channels")
        h1, h2 = _size_pair_of(hidden, "hidden")
        if padding is None:
            padding = 0 if min(h, w) >= 16 else 2
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.image_size, self.padding = (h, w), int(padding)
        self.channels, self.hidden = (c1, c2), (h1, h2)
        # each stage: conv 5x5 (size + 2 padding - 4), then max pool 2 (halved, rounded down)
        fh, fw = h, w
        for _ in range(2):
            fh, fw = (fh + 2 * padding - 4) // 2, (fw + 2 * padding - 4) // 2
        if fh < 1 or fw < 1:
            raise ValueError(f"LeNet: images of size {(h, w)} are too small for two 5x5 conv + 2x2 pool "
                             f"stages with padding={padding}; use padding=2 or larger images")
        self.batch_norm, self.dropout = bool(batch_norm), float(dropout)
        self.conv1 = Conv2d(self.in_channels, c1, kernel_size=5, padding=padding)
        if self.batch_norm:
            self.bn1 = BatchNorm2d(c1)
        self.conv2 = Conv2d(c1, c2, kernel_size=5, padding=padding)
        if self.batch_norm:
            self.bn2 = BatchNorm2d(c2)
        self.pool = MaxPool2d(2)
        if self.dropout:
            self.drop = Dropout(self.dropout)
        self.fc1 = Linear(c2 * fh * fw, h1)
        self.fc2 = Linear(h1, h2)
        self.fc3 = Linear(h2, self.num_classes)

    def forward(self, input: Tensor) -> Tensor:
        x = self.conv1(input)
        if self.batch_norm:
            x = self.bn1(x)
        x = self.pool(x.relu())
        x = self.conv2(x)
        if self.batch_norm:
            x = self.bn2(x)
        x = self.pool(x.relu()).flatten(1)
        x = self.fc1(x).relu()
        if self.dropout:
            x = self.drop(x)
        x = self.fc2(x).relu()
        return self.fc3(x)

    def extra_repr(self) -> str:
        s = (f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
             f"image_size={self.image_size}, padding={self.padding}")
        if self.channels != (6, 16) or self.hidden != (120, 84):
            s += f", channels={self.channels}, hidden={self.hidden}"
        if self.batch_norm or self.dropout:
            s += f", batch_norm={self.batch_norm}, dropout={self.dropout}"
        return s

    def get_config(self) -> dict:
        return make_config(self, in_channels=self.in_channels, num_classes=self.num_classes,
                           image_size=list(self.image_size), padding=self.padding,
                           channels=list(self.channels), hidden=list(self.hidden),
                           batch_norm=self.batch_norm, dropout=self.dropout)
