"""Initialisation schemes (sgdtop.models.init): every layer's weight variance against the
scheme's formula, zero biases, batch norm at (1, 0), and "torch" as the models are built."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from sgdtop.models import MODEL_NAMES, build_model
from sgdtop.models.init import (
    INIT_SCHEMES,
    PAPER_SCHEMES,
    TRUNCATED_NORMAL_STD,
    InitError,
    fans,
    initialise,
    resolve_scheme,
)
from sgdtop.models.mlp import mlp
from sgdtop.models.resnet import RESNET_DEPTHS, resnet
from sgdtop.models.vgg import vgg11
from sgdtop.profile import INIT_SCHEMES as PROFILE_INIT_SCHEMES
from sgdtop.profile import ProfileError, load

CONCRETE = ("keras", "he", "paper")


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _layers(model: nn.Module) -> list[tuple[str, nn.Linear | nn.Conv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def _expected(scheme: str, module: nn.Module, name: str) -> tuple[float, float, str]:
    """(variance, bound on |w|, distribution) the scheme gives ``module``'s weight."""
    fan_in, fan_out = fans(module.weight)
    concrete = resolve_scheme(scheme, name)
    if concrete == "he" and isinstance(module, nn.Conv2d):
        sigma0 = math.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STD
        return 2.0 / fan_in, 2.0 * sigma0, "truncated normal"
    return 2.0 / (fan_in + fan_out), math.sqrt(6.0 / (fan_in + fan_out)), "uniform"


@pytest.mark.parametrize("scheme", CONCRETE)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_layer_follows_the_scheme(name: str, scheme: str) -> None:
    """Sample variance of each layer's weight within 6 standard errors of the formula
    (relative s.e. √((κ−1)/n), κ ≤ 2.4 the kurtosis of both laws), |w| within the bound,
    every Linear/Conv bias 0, every batch norm γ = 1, β = 0."""
    model = build_model(name, num_classes=10, init=scheme)
    layers = _layers(model)
    assert layers
    for lname, module in layers:
        var, bound, law = _expected(scheme, module, name)
        w = module.weight.detach().double()
        n = w.numel()
        tol = 6.0 * math.sqrt(1.4 / n)
        assert abs(float(w.var()) / var - 1.0) < tol, (lname, law, float(w.var()), var)
        assert float(w.abs().max()) <= bound * (1 + 1e-6), (lname, law)
        assert abs(float(w.mean())) < 6.0 * math.sqrt(var / n), lname
        if module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0, lname
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


def test_paper_scheme_per_model() -> None:
    """The authors' code: the ResNets He-normal (src/models/resnet.py), the MLP and VGG11
    Keras defaults (src/models/{mlp,vgg}.py)."""
    assert set(PAPER_SCHEMES) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        expected = "he" if name in RESNET_DEPTHS else "keras"
        assert resolve_scheme("paper", name) == expected


def test_he_keeps_the_read_out_glorot() -> None:
    """In the authors' ResNet only the convs are He-normal; the final Dense keeps Keras'
    default Glorot-uniform, bounded by √(6/(64 + classes))."""
    model = build_model("resnet20", num_classes=10, init="he")
    limit = math.sqrt(6.0 / (64 + 10))
    w = model.linear.weight.detach()
    assert float(w.abs().max()) <= limit
    assert float(w.abs().max()) > 0.9 * limit  # uniform fills its range
    conv = model.layer3[0].conv2.weight.detach()  # 64·64·9 weights: a sharp check
    assert float(conv.std()) == pytest.approx(math.sqrt(2.0 / (64 * 9)), rel=0.02)
    sigma0 = math.sqrt(2.0 / (64 * 9)) / TRUNCATED_NORMAL_STD
    assert float(conv.abs().max()) == pytest.approx(2.0 * sigma0, rel=0.01)


def test_keras_mlp_has_zero_biases_and_glorot_limits() -> None:
    model = build_model("mlp", num_classes=1, init="keras")
    for layer, (fi, fo) in zip(_layers(model), [(300, 100), (100, 100), (100, 1)],
                               strict=True):
        w = layer[1].weight.detach()
        assert float(w.abs().max()) <= math.sqrt(6.0 / (fi + fo))
        assert torch.count_nonzero(layer[1].bias) == 0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torch_is_the_model_as_built(name: str) -> None:
    """init="torch" is today's model, bit for bit, and draws nothing more from the RNG
    (checked once against the code before the init key: identical state dicts and RNG
    state for every model, seed 0)."""
    torch.manual_seed(5)
    a = build_model(name, num_classes=10, init="torch")
    state_a = torch.get_rng_state()
    torch.manual_seed(5)
    if name == "mlp":
        b: nn.Module = mlp(num_outputs=10)
    elif name in RESNET_DEPTHS:
        b = resnet(RESNET_DEPTHS[name], num_classes=10)
    else:
        b = vgg11(num_classes=10)
    assert torch.equal(state_a, torch.get_rng_state())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(),
                                  strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert initialise(b, "torch", model_name=name) is b


def test_schemes_are_seeded_by_the_global_rng() -> None:
    torch.manual_seed(11)
    a = build_model("resnet8", num_classes=10, in_channels=1, init="paper")
    torch.manual_seed(11)
    b = build_model("resnet8", num_classes=10, in_channels=1, init="paper")
    torch.manual_seed(12)
    c = build_model("resnet8", num_classes=10, in_channels=1, init="paper")
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_unknown_schemes_are_one_line_errors() -> None:
    with pytest.raises(InitError, match="valid: torch, keras, he, paper"):
        build_model("mlp", num_classes=1, init="xavier")
    with pytest.raises(InitError, match="no scheme for model"):
        resolve_scheme("paper", "custom")
    with pytest.raises(ProfileError, match="init must be one of"):
        load("smoke", overrides={"init": "glorot"})


def test_profile_schemes_match_the_module() -> None:
    assert PROFILE_INIT_SCHEMES == INIT_SCHEMES
    assert load("smoke").init == "torch"  # the tests' numbers stay as they were
    assert load("mlp-teacher-student").init == "paper"
    assert load("resnet20-gratings-cpu").init == "paper"


def test_custom_models_are_not_reinitialised(tmp_path: object) -> None:
    """A custom factory's model keeps its own weights whatever ``init`` says."""
    from pathlib import Path

    from sgdtop.train import prepare

    path = Path(str(tmp_path)) / "net.py"
    path.write_text(
        "import torch\nfrom torch import nn\nfrom sgdtop.custom import CustomTask\n"
        "def make():\n"
        "    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))\n"
        "    nn.init.constant_(model[0].weight, 0.25)\n"
        "    data = torch.utils.data.TensorDataset(torch.randn(64, 4),\n"
        "                                          torch.randint(0, 2, (64,)))\n"
        "    return CustomTask(model=model, train=data, test=data,\n"
        "                      task='classification', num_outputs=2)\n",
        encoding="utf-8")
    p = load(model=f"{path}:make", overrides={"init": "keras", "epochs": 1, "batch_size": 16,
                                        "k": 2, "device": "cpu"})
    setup = prepare(p)
    first = next(m for m in setup.model.modules() if isinstance(m, nn.Linear))
    assert torch.all(first.weight == 0.25)


def test_the_trainer_applies_the_profile_init() -> None:
    from sgdtop.train import prepare

    keras = prepare(load("smoke", overrides={"init": "keras"})).model
    plain = prepare(load("smoke")).model
    assert all(torch.count_nonzero(m.bias) == 0 for _, m in _layers(keras))
    assert all(torch.count_nonzero(m.bias) > 0 for _, m in _layers(plain))
