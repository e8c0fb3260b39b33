"""Dead neurons: units killed by hand are counted exactly, wherever the ReLU is.

Side-effect freedom of :func:`dead_neurons` is tested with the other measurements in
``test_spectrum_hvp.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sgdtop.models import build_model
from sgdtop.neurons import dead_neurons
from sgdtop.recorder.clock import RunClock
from sgdtop.recorder.records import neurons_record
from sgdtop.schema import NeuronLayer, Neurons
from sgdtop.spectrum import SpectrumInputError


def _kill(layer: nn.Linear | nn.Conv2d, dead: list[int]) -> None:
    """Units in ``dead`` output exactly 0 after a ReLU; all others stay well above 1e-3."""
    with torch.no_grad():
        layer.weight.mul_(0.1)
        layer.bias.fill_(5.0)
        layer.weight[dead] = 0.0
        layer.bias[dead] = -1.0


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(),
                          nn.Linear(6, 2))
    _kill(model[0], [0, 3, 5])
    _kill(model[2], [1, 4])
    return model


def test_dead_units_of_an_mlp_are_counted_exactly() -> None:
    r = dead_neurons(_mlp(), torch.randn(32, 4))
    assert [(x.name, x.units, x.dead) for x in r.layers] == [("1", 8, 3), ("3", 6, 2)]
    assert r.layers[0].dead_pct == pytest.approx(37.5)
    assert (r.units, r.dead, r.examples) == (14, 5, 32)
    assert r.dead_pct == pytest.approx(100 * 5 / 14)  # pooled over layers
    assert r.threshold == 1e-3


def test_a_conv_unit_is_an_output_channel() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1),
                          nn.ReLU(), nn.Flatten())
    _kill(model[0], [2])
    _kill(model[2], [0, 1, 4])
    r = dead_neurons(model, torch.randn(8, 2, 7, 7))
    assert [(x.name, x.units, x.dead) for x in r.layers] == [("1", 4, 1), ("3", 5, 3)]


class Functional(nn.Module):
    """Every kind of functional ReLU, an nn.ReLU shared by two sites, and a child module
    whose forward calls F.relu."""

    def __init__(self) -> None:
        super().__init__()
        self.lins = nn.ModuleList(nn.Linear(4, 5) for _ in range(7))
        self.shared = nn.ReLU()
        self.child = Child()
        for i, lin in enumerate(self.lins):
            _kill(lin, list(range(i % 5 + 1)))  # site i has i % 5 + 1 dead units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.lins[0](x))
        b = torch.relu(self.lins[1](x))
        c = self.lins[2](x).relu()
        d = F.relu(self.lins[3](x), inplace=True)
        e = torch.relu_(self.lins[4](x))
        f = self.shared(self.lins[5](x))
        g = self.shared(self.lins[6](x))
        return a + b + c + d + e + f + g + self.child(x).sum()


class Child(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        _kill(self.lin, [2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.lin(x)).relu_()  # two functional sites in one forward


def test_functional_relus_and_shared_modules() -> None:
    r = dead_neurons(Functional(), torch.randn(16, 4))
    got = [(x.name, x.units, x.dead) for x in r.layers]
    assert got == [
        (":relu#0", 5, 1), (":relu#1", 5, 2), (":relu#2", 5, 3), (":relu#3", 5, 4),
        (":relu#4", 5, 5), ("shared#0", 5, 1), ("shared#1", 5, 2),
        ("child:relu#0", 3, 1), ("child:relu#1", 3, 1),
    ]


def test_threshold_is_configurable() -> None:
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([5e-4, 2e-3]))
    model = nn.Sequential(lin, nn.ReLU())
    x = torch.randn(10, 3)
    assert dead_neurons(model, x).dead == 1
    assert dead_neurons(model, x, threshold=1e-4).dead == 0
    assert dead_neurons(model, x, threshold=1e-2).dead == 2


def test_micro_batches_are_pooled_by_example() -> None:
    """Mean over all examples, not the mean of per-batch means."""
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.zero_()
    model = nn.Sequential(lin, nn.ReLU())
    batches = [(torch.full((2, 1), 3e-3), torch.zeros(2)), (torch.zeros(6, 1), torch.zeros(6))]
    r = dead_neurons(model, batches)  # pooled mean 7.5e-4; mean of means 1.5e-3
    assert r.examples == 8 and r.dead == 1


def test_paper_models_one_site_per_relu_module() -> None:
    torch.manual_seed(0)
    model = build_model("resnet20", num_classes=10)
    r = dead_neurons(model, torch.randn(4, 3, 32, 32))
    relus = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    assert [x.name for x in r.layers] == relus
    assert r.units == 16 + 6 * 16 + 6 * 32 + 6 * 64


def test_report_becomes_a_valid_neurons_record() -> None:
    r = dead_neurons(_mlp(), torch.randn(8, 4))
    rec = neurons_record(RunClock().header(), r)
    assert rec.kind == "neurons"
    assert isinstance(rec, Neurons)
    assert rec.layers[0] == NeuronLayer(name="1", units=8, dead=3, dead_pct=37.5)


def test_no_relu_gives_nan() -> None:
    r = dead_neurons(nn.Linear(3, 2), torch.randn(4, 3))
    assert r.layers == () and r.units == 0 and r.dead_pct != r.dead_pct


@pytest.mark.parametrize(
    ("inputs", "kwargs", "match"),
    [
        (torch.randn(4, 4), {"threshold": -1.0}, "threshold"),
        ([], {}, "no examples"),
        (3.0, {}, "tensor"),
        ([torch.tensor(1.0)], {}, "tensor of examples"),
    ],
)
def test_bad_input(inputs, kwargs: dict, match: str) -> None:
    with pytest.raises(SpectrumInputError, match=match) as err:
        dead_neurons(_mlp(), inputs, **kwargs)
    assert "\n" not in str(err.value)
