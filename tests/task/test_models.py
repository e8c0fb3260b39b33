"""The model registry: parameter counts, output shapes, one ReLU module per activation."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from sgdtop.models import MODEL_NAMES, UnknownModelError, build_model, count_params
from sgdtop.models.resnet import ZeroPadShortcut

IMAGE_MODELS = ("resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "vgg11")

# Trainable parameters. ResNets: He et al. 2015 / akamaster (ResNet20 0.27M, ResNet32
# 0.46M, ResNet44 0.66M, ResNet56 0.85M); each extra class adds 64 + 1. VGG11-BN (CIFAR):
# 9,225,984 in conv+BN, 525,312 in the two hidden linear layers, 513 per class.
PARAM_COUNTS: dict[tuple[str, int], int] = {
    ("mlp", 1): 40_301,
    ("mlp", 10): 41_210,
    ("mlp", 100): 50_300,
    ("resnet8", 10): 75_290,
    ("resnet8", 100): 81_140,
    ("resnet20", 10): 269_722,
    ("resnet20", 100): 275_572,
    ("resnet32", 10): 464_154,
    ("resnet32", 100): 470_004,
    ("resnet44", 10): 658_586,
    ("resnet44", 100): 664_436,
    ("resnet56", 10): 853_018,
    ("resnet56", 100): 858_868,
    ("vgg11", 10): 9_756_426,
    ("vgg11", 100): 9_802_596,
}

RELU_COUNTS: dict[str, int] = {
    "mlp": 2,
    "resnet8": 1 + 2 * 3,
    "resnet20": 1 + 2 * 9,
    "resnet32": 1 + 2 * 15,
    "resnet44": 1 + 2 * 21,
    "resnet56": 1 + 2 * 27,
    "vgg11": 8 + 2,
}


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    """Seed torch; run on one intra-op thread (on a loaded 2-core machine, two threads
    made each small ResNet forward ~40× slower), restored afterwards."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_model_names() -> None:
    assert MODEL_NAMES == ("mlp", "resnet8", "resnet20", "resnet32", "resnet44", "resnet56",
                           "vgg11")


@pytest.mark.parametrize(("name", "num_classes"), sorted(PARAM_COUNTS))
def test_parameter_count(name: str, num_classes: int) -> None:
    model = build_model(name, num_classes=num_classes)
    assert count_params(model) == PARAM_COUNTS[(name, num_classes)]


def test_resnet32_cifar10_has_464154_parameters() -> None:
    assert count_params(build_model("resnet32", num_classes=10)) == 464_154


def test_resnet8_for_digits_has_75002_parameters() -> None:
    """ResNet8 on 1×8×8 grey images (the digits profile): 16·9 in the stem (no bias),
    4,608 + 13,824 + 55,296 in the three stages' convs, 480 in BN, 650 in the read-out."""
    model = build_model("resnet8", num_classes=10, in_channels=1)
    assert count_params(model) == 75_002
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_vgg11_takes_three_channels_only() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        build_model("vgg11", num_classes=10, in_channels=1)


def test_count_params_skips_frozen() -> None:
    model = build_model("mlp", num_classes=1)
    model.net.fc1.weight.requires_grad_(False)
    assert count_params(model) == 40_301 - 300 * 100


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_image_model_output_shape(name: str, num_classes: int) -> None:
    model = build_model(name, num_classes=num_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("num_classes", [1, 10, 100])
def test_mlp_output_shape(num_classes: int) -> None:
    model = build_model("mlp", num_classes=num_classes)
    assert model(torch.randn(2, 300)).shape == (2, num_classes)


def test_mlp_custom_sizes() -> None:
    model = build_model("mlp", num_classes=3, in_features=20, hidden=(7, 5, 4))
    assert model(torch.randn(2, 20)).shape == (2, 3)
    assert count_params(model) == (20 * 7 + 7) + (7 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3)
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3


class _CountRelu(TorchFunctionMode):
    """Counts functional ReLU calls (``F.relu``/``torch.relu``) during a forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in (F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_):
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_distinct_relu_module_per_activation(name: str) -> None:
    """Every activation goes through its own nn.ReLU, called exactly once per forward."""
    model = build_model(name, num_classes=10).eval()
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == RELU_COUNTS[name]
    assert len({id(m) for m in relus}) == len(relus)
    assert not any(m.inplace for m in relus)

    calls: dict[int, int] = {}

    def hook(module: nn.Module, _inp: object, _out: object) -> None:
        calls[id(module)] = calls.get(id(module), 0) + 1

    handles = [m.register_forward_hook(hook) for m in relus]
    x = torch.randn(2, 300) if name == "mlp" else torch.randn(2, 3, 32, 32)
    counter = _CountRelu()
    with torch.no_grad(), counter:
        model(x)
    for h in handles:
        h.remove()
    assert calls == {id(m): 1 for m in relus}  # no module reused
    assert counter.calls == len(relus)  # no functional ReLU outside the modules


def test_resnet_uses_option_a_shortcuts() -> None:
    model = build_model("resnet20", num_classes=10)
    shortcuts = [m for m in model.modules() if isinstance(m, ZeroPadShortcut)]
    assert [s.pad for s in shortcuts] == [8, 16]  # 16→32 and 32→64 channels
    assert all(not list(s.parameters()) for s in shortcuts)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and all(c.kernel_size == (3, 3) and c.bias is None for c in convs)
    out = shortcuts[0](torch.ones(2, 16, 32, 32))
    assert out.shape == (2, 32, 16, 16)
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    assert (out[:, 8:24] == 1).all()


def test_resnet_kaiming_normal_init() -> None:
    model = build_model("resnet56", num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 64]
    w = torch.cat([c.weight.flatten() for c in convs])  # fan_in = 64·9
    assert w.mean().abs() < 0.01
    assert w.std().item() == pytest.approx((2.0 / (64 * 9)) ** 0.5, rel=0.02)


def test_vgg11_layout_and_init() -> None:
    model = build_model("vgg11", num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 5
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    last = convs[-1]
    assert last.weight.std().item() == pytest.approx((2.0 / (9 * 512)) ** 0.5, rel=0.02)
    assert last.bias is not None and (last.bias == 0).all()


def test_vgg11_dropout_active_only_in_train_mode() -> None:
    model = build_model("vgg11", num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        a = model(x)
    model.train()
    with torch.no_grad():
        model.features.eval()  # BN batch statistics aside, only dropout differs
        assert not torch.equal(model(x), a)


def test_resnet_supports_hessian_vector_products() -> None:
    """Double backward works through the option-A shortcut (the spectrum needs HVPs)."""
    model = build_model("resnet20", num_classes=10).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    loss = F.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([1, 2]))
    grads = torch.autograd.grad(loss, params, create_graph=True)
    vs = [torch.randn_like(p) for p in params]
    hvp = torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, vs, strict=True)), params)
    assert all(h.shape == p.shape for h, p in zip(hvp, params, strict=True))
    assert all(torch.isfinite(h).all() for h in hvp)


def test_same_seed_same_weights() -> None:
    torch.manual_seed(3)
    a = build_model("resnet20", num_classes=10)
    torch.manual_seed(3)
    b = build_model("resnet20", num_classes=10)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


def test_unknown_model_lists_valid_names_on_one_line() -> None:
    with pytest.raises(UnknownModelError) as info:
        build_model("resnet18", num_classes=10)
    message = str(info.value)
    assert "\n" not in message and "'resnet18'" in message
    assert all(name in message for name in MODEL_NAMES)
    assert isinstance(info.value, ValueError)


def test_bad_sizes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="in_features"):
        build_model("resnet20", num_classes=10, in_features=300)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("vgg11", num_classes=0)
    with pytest.raises(ValueError, match="positive"):
        build_model("mlp", num_classes=1, hidden=(100, 0))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_models_copy_and_pickle(name: str) -> None:
    """No lambdas inside: deepcopy (and DataLoader/spawn pickling) work."""
    model = build_model(name, num_classes=10)
    assert count_params(copy.deepcopy(model)) == count_params(model)
    assert count_params(pickle.loads(pickle.dumps(model))) == count_params(model)
