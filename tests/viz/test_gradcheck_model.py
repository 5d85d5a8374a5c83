import numpy as np
import pytest

import chainrule as cr


class BadSquare(cr.Function):
    """x^2 with a wrong backward (forgets the factor 2)."""

    def forward(self, a):
        return a * a

    def backward(self, grad):
        (a,) = self.inputs
        return (grad * a,)


class NetWithBadOp(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = cr.nn.Linear(3, 4)
        self.fc2 = cr.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(BadSquare().apply(self.fc1(x)))


def data(shape=(6, 3), classes=2):
    return cr.randn(*shape), cr.randint(0, classes, (shape[0],))


def test_flags_a_broken_custom_op():
    x, y = data()
    model = NetWithBadOp()
    report = cr.gradcheck_model(model, cr.nn.CrossEntropyLoss(), x, y)
    assert not report.ok
    assert [p.name for p in report.failures] == ["fc1.weight", "fc1.bias"]  # below the broken op
    assert report["fc2.weight"].ok  # above it, backprop has not met the bug yet
    assert report["fc1.weight"].max_rel_error > 0.1
    assert "FAILED" in report.to_text()


def test_leaves_the_model_as_it_was():
    x, y = data()
    model = cr.nn.MLP([3, 4, 2])
    before = {k: v._data.copy() for k, v in model.state_dict().items()}
    cr.gradcheck_model(model, cr.nn.CrossEntropyLoss(), x, y)
    for k, v in model.state_dict().items():
        assert v.dtype == cr.float32
        np.testing.assert_array_equal(v._data, before[k])
    assert all(p.grad is None for p in model.parameters())


def image_data():
    return cr.randn(3, 2, 6, 6), cr.randint(0, 3, (3,))


BUILT_IN = {
    "linear": lambda: (cr.nn.Linear(3, 2), data()),
    "mlp-sigmoid": lambda: (cr.nn.MLP([3, 4, 2], activation="sigmoid"), data()),
    "mlp-tanh": lambda: (cr.nn.MLP([3, 4, 2], activation="tanh"), data()),
    "mlp-relu": lambda: (cr.nn.MLP([3, 4, 2], activation="relu"), data()),
    "mlp-elu": lambda: (cr.nn.MLP([3, 4, 2], activation="elu"), data()),
    "mlp-gelu": lambda: (cr.nn.MLP([3, 4, 2], activation="gelu"), data()),
    "mlp-softplus": lambda: (cr.nn.MLP([3, 4, 2], activation="softplus"), data()),
    "mlp-leaky": lambda: (cr.nn.MLP([3, 4, 2], activation="leaky_relu"), data()),
    "prelu": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.PReLU(), cr.nn.Linear(4, 2)), data()),
    "maxout": lambda: (cr.nn.Sequential(cr.nn.Maxout(3, 4), cr.nn.Linear(4, 2)), data()),
    "dropout": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Dropout(0.5), cr.nn.Linear(4, 2)), data()),
    "batchnorm1d": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.BatchNorm1d(4), cr.nn.Linear(4, 2)),
                            data()),
    "conv2d": lambda: (cr.nn.Sequential(cr.nn.Conv2d(2, 3, 3, padding=1), cr.nn.Tanh(), cr.nn.Flatten(),
                                        cr.nn.Linear(108, 3)), image_data()),
    "conv-pool-bn": lambda: (cr.nn.Sequential(cr.nn.Conv2d(2, 2, 3), cr.nn.BatchNorm2d(2), cr.nn.MaxPool2d(2),
                                              cr.nn.Flatten(), cr.nn.Linear(8, 3)), image_data()),
    "avgpool": lambda: (cr.nn.Sequential(cr.nn.AvgPool2d(2), cr.nn.Flatten(), cr.nn.Linear(18, 3)),
                        image_data()),
    "conv1d": lambda: (cr.nn.Sequential(cr.nn.Conv1d(2, 2, 3), cr.nn.Flatten(), cr.nn.Linear(8, 3)),
                       (cr.randn(3, 2, 6), cr.randint(0, 3, (3,)))),
    "pool1d": lambda: (cr.nn.Sequential(cr.nn.Conv1d(2, 2, 3), cr.nn.MaxPool1d(2), cr.nn.AvgPool1d(2),
                                        cr.nn.AdaptiveAvgPool1d(1), cr.nn.Flatten(), cr.nn.Linear(2, 3)),
                       (cr.randn(3, 2, 10), cr.randint(0, 3, (3,)))),
    "adaptive-avgpool2d": lambda: (cr.nn.Sequential(cr.nn.Conv2d(2, 3, 3), cr.nn.AdaptiveAvgPool2d(2),
                                                    cr.nn.Flatten(), cr.nn.Linear(12, 3)), image_data()),
    "dropout2d": lambda: (cr.nn.Sequential(cr.nn.Conv2d(2, 2, 3), cr.nn.Dropout2d(0.5), cr.nn.Flatten(),
                                           cr.nn.Linear(32, 3)), image_data()),
    "unflatten-identity": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 8), cr.nn.Unflatten(1, (2, 4)), cr.nn.Identity(),
                                                    cr.nn.Flatten(), cr.nn.Linear(8, 2)), data()),
    "selu-silu": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.SELU(), cr.nn.Linear(4, 4), cr.nn.SiLU(),
                                           cr.nn.Linear(4, 2)), data()),
    "hardtanh-logsigmoid": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Hardtanh(), cr.nn.Linear(4, 4),
                                                     cr.nn.LogSigmoid(), cr.nn.Linear(4, 2)), data()),
    "softmax": lambda: (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Softmax(dim=1), cr.nn.Linear(4, 2)), data()),
    "lenet": lambda: (cr.nn.LeNet(in_channels=1, num_classes=3, image_size=12),
                      (cr.randn(2, 1, 12, 12), cr.randint(0, 3, (2,)))),
}

LOSSES = {
    "mse": lambda: (cr.nn.MSELoss(), cr.randn(6, 2)),
    "l1": lambda: (cr.nn.L1Loss(), cr.randn(6, 2)),
    "huber": lambda: (cr.nn.HuberLoss(delta=0.5), cr.randn(6, 2)),
    "smooth-l1": lambda: (cr.nn.SmoothL1Loss(beta=0.5), cr.randn(6, 2)),
    "bce": lambda: (lambda out, y: cr.nn.BCELoss()(cr.sigmoid(out), y), cr.rand(6, 2).round()),
    "bce-logits": lambda: (cr.nn.BCEWithLogitsLoss(), cr.rand(6, 2).round()),
    "nll": lambda: (lambda out, y: cr.nn.NLLLoss()(cr.log_softmax(out, dim=1), y), cr.randint(0, 2, (6,))),
    "multi-margin": lambda: (cr.nn.MultiMarginLoss(), cr.randint(0, 2, (6,))),
    "cross-entropy": lambda: (cr.nn.CrossEntropyLoss(), cr.randint(0, 2, (6,))),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_passes_every_built_in_loss(name):
    cr.manual_seed(4)
    loss_fn, y = LOSSES[name]()
    report = cr.gradcheck_model(cr.nn.MLP([3, 5, 2], activation="tanh"), loss_fn, cr.randn(6, 3), y, max_entries=8)
    assert report.ok, report.to_text()


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_passes_every_built_in_layer(name):
    cr.manual_seed(3)
    model, (x, y) = BUILT_IN[name]()
    report = cr.gradcheck_model(model, cr.nn.CrossEntropyLoss(), x, y, max_entries=8)
    assert report.ok, report.to_text()
    assert all(p.checked > 0 for p in report.params)


def test_refuses_a_model_without_parameters():
    x, y = data()
    with pytest.raises(ValueError, match="no parameters"):
        cr.gradcheck_model(cr.nn.ReLU(), cr.nn.MSELoss(), x, x)
    del y
