"""The data: the teacher-student task, CIFAR through torchvision's real loader, the probe."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_cifar import (
    FakeCifar,
    accept_fake_cifar,
    fake_cifar_md5s,
    write_fake_cifar10,
    write_fake_cifar100,
)
from torchvision import datasets

from sgdtop.data import (
    CIFAR_MEAN,
    CIFAR_STD,
    DatasetMissingError,
    TaskData,
    cifar,
    draw_probe_indices,
    probe_batches,
    probe_size_for,
    teacher_student,
)

# ---------------------------------------------------------------- teacher-student


def _tensors(ds: torch.utils.data.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    assert isinstance(ds, torch.utils.data.TensorDataset)
    x, y = ds.tensors
    return x, y


def test_teacher_student_shapes_and_fields() -> None:
    td = teacher_student(n_train=50, n_test=20, out_dim=2, probe_size=5)
    assert isinstance(td, TaskData)
    assert (td.name, td.task, td.num_outputs, td.in_features) == (
        "teacher-student",
        "regression",
        2,
        300,
    )
    x, y = _tensors(td.train)
    assert x.shape == (50, 300) and y.shape == (50, 2)
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    xt, yt = _tensors(td.test)
    assert xt.shape == (20, 300) and yt.shape == (20, 2)
    assert len(td.probe) == 5 and len(td.probe_indices) == 5  # type: ignore[arg-type]
    for j, i in enumerate(td.probe_indices):
        px, py = td.probe[j]
        assert torch.equal(px, x[i]) and torch.equal(py, y[i])


def test_teacher_student_is_determined_by_seed() -> None:
    a = teacher_student(n_train=40, n_test=10, probe_size=4, seed=7, teacher="mlp")
    b = teacher_student(n_train=40, n_test=10, probe_size=4, seed=7, teacher="mlp")
    c = teacher_student(n_train=40, n_test=10, probe_size=4, seed=8, teacher="mlp")
    for ds in ("train", "test"):
        for ta, tb, tc in zip(
            _tensors(getattr(a, ds)),
            _tensors(getattr(b, ds)),
            _tensors(getattr(c, ds)),
            strict=True,
        ):
            assert torch.equal(ta, tb) and not torch.equal(ta, tc)
    assert a.probe_indices == b.probe_indices


def test_teacher_student_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    teacher_student(n_train=20, n_test=5, probe_size=2)
    assert torch.equal(torch.rand(3), expected)


def test_teacher_student_train_set_does_not_depend_on_test_size() -> None:
    a = teacher_student(n_train=30, n_test=10, probe_size=3)
    b = teacher_student(n_train=30, n_test=99, probe_size=3)
    for ta, tb in zip(_tensors(a.train), _tensors(b.train), strict=True):
        assert torch.equal(ta, tb)


def test_teacher_student_statistics_match_the_paper() -> None:
    """x ~ N(0, I/300); W ~ N(0, 1); label noise of VARIANCE 0.2; same teacher for test."""
    n, d = 4000, 300
    td = teacher_student(n_train=n, n_test=2000, probe_size=10, seed=1)
    x, y = (t.double() for t in _tensors(td.train))
    assert x.mean().abs() < 0.002
    assert x.std().item() == pytest.approx(1 / math.sqrt(d), rel=0.01)
    # least squares recovers the linear teacher; the residual variance estimates σ²
    w = torch.linalg.lstsq(x, y).solution
    residual = y - x @ w
    sigma2 = (residual.pow(2).sum() / (n - d)).item()
    assert sigma2 == pytest.approx(0.2, rel=0.1)
    # teacher rows ~ N(0, 1): the signal x·w has variance ‖w‖²/d ≈ 1
    assert (w.pow(2).sum() / d).item() == pytest.approx(1.0, abs=0.2)
    # the test set has the same teacher and fresh noise of the same variance
    xt, yt = (t.double() for t in _tensors(td.test))
    test_mse = (yt - xt @ w).pow(2).mean().item()
    assert test_mse == pytest.approx(0.2 * n / (n - d), rel=0.15)


def test_teacher_student_without_noise_is_exactly_linear() -> None:
    td = teacher_student(n_train=400, n_test=10, noise_var=0.0, probe_size=1, d=20)
    x, y = (t.double() for t in _tensors(td.train))
    w = torch.linalg.lstsq(x, y).solution
    assert (y - x @ w).abs().max() < 1e-5


def test_mlp_teacher_outputs_are_order_one_and_nonlinear() -> None:
    td = teacher_student(n_train=2000, n_test=10, noise_var=0.0, teacher="mlp", probe_size=1)
    x, y = (t.double() for t in _tensors(td.train))
    assert 0.1 < y.pow(2).mean().item() < 3.0
    # not a linear function of x (with an intercept)
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    residual = y - xa @ torch.linalg.lstsq(xa, y).solution
    assert residual.pow(2).mean() > 0.01 * y.var()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_train": 0}, "positive"),
        ({"out_dim": 0}, "positive"),
        ({"noise_var": -0.1}, "noise_var"),
        ({"teacher": "cubic"}, "teacher"),
        ({"probe_size": 11}, "probe size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_teacher_student_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"n_train": 10, "n_test": 5, "probe_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        teacher_student(**args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- probe set


def test_probe_size_for() -> None:
    assert probe_size_for(45_000) == 2250  # the authors' probe set
    assert probe_size_for(50_000) == 2500
    assert probe_size_for(50_000, cap=1000) == 1000
    assert probe_size_for(10) == 1  # 0.5 rounds up
    assert probe_size_for(3, fraction=0.1) == 1  # at least one
    assert probe_size_for(100, fraction=1.0) == 100
    for bad in ({"fraction": 0.0}, {"fraction": 1.5}, {"cap": 0}):
        with pytest.raises(ValueError):
            probe_size_for(100, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        probe_size_for(0)


def test_draw_probe_indices() -> None:
    a = draw_probe_indices(1000, 50, seed=3)
    assert a == draw_probe_indices(1000, 50, seed=3)
    assert a != draw_probe_indices(1000, 50, seed=4)
    assert len(set(a)) == 50 and list(a) == sorted(a) and a[0] >= 0 and a[-1] < 1000
    assert draw_probe_indices(7, 7, seed=0) == tuple(range(7))
    assert draw_probe_indices(7, 0, seed=0) == ()
    with pytest.raises(ValueError, match="probe size"):
        draw_probe_indices(7, 8, seed=0)


def test_probe_batches_are_deterministic_and_in_order() -> None:
    td = teacher_student(n_train=600, n_test=5, probe_size=300)
    batches = probe_batches(td.probe, batch_size=128)
    assert [len(x) for x, _ in batches] == [128, 128, 44]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    tx, ty = _tensors(td.train)
    idx = list(td.probe_indices)
    assert torch.equal(x, tx[idx]) and torch.equal(y, ty[idx])
    again = probe_batches(td.probe, batch_size=128)
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        for a, b in zip(batches, again, strict=True)
    )
    assert probe_batches(torch.utils.data.Subset(td.train, []), 8) == []
    with pytest.raises(ValueError):
        probe_batches(td.probe, batch_size=0)


# ---------------------------------------------------------------- CIFAR


def _normalized(fake: FakeCifar, image: np.ndarray) -> torch.Tensor:
    """The eval transform by hand: [0, 1] scaling, per-channel normalisation, CHW."""
    t = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(CIFAR_MEAN[fake.name]).view(3, 1, 1)
    std = torch.tensor(CIFAR_STD[fake.name]).view(3, 1, 1)
    return (t - mean) / std


@pytest.fixture
def cifar10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCifar:
    fake = write_fake_cifar10(tmp_path, n_per_batch=4, n_test=6)
    accept_fake_cifar(monkeypatch, fake)
    return fake


@pytest.fixture
def cifar100(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCifar:
    fake = write_fake_cifar100(tmp_path, n_train=12, n_test=5)
    accept_fake_cifar(monkeypatch, fake)
    return fake


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
def test_cifar_loads_through_torchvision(which: str, request: pytest.FixtureRequest) -> None:
    fake: FakeCifar = request.getfixturevalue(which)
    td = cifar(which, data_dir=fake.root, download=False, probe_size=3, seed=1)
    assert (td.name, td.task, td.num_outputs, td.in_features) == (
        which,
        "classification",
        fake.num_classes,
        None,
    )
    assert len(td.train) == len(fake.train_images)  # type: ignore[arg-type]
    assert len(td.test) == len(fake.test_images)  # type: ignore[arg-type]
    assert td.probe_indices == draw_probe_indices(len(fake.train_images), 3, seed=1)
    # test set: normalisation only, labels as written
    for i in range(len(fake.test_images)):
        image, label = td.test[i]
        assert torch.allclose(image, _normalized(fake, fake.test_images[i]), atol=1e-5)
        assert label == fake.test_labels[i]
    # probe: the training images at probe_indices, without augmentation
    for j, i in enumerate(td.probe_indices):
        image, label = td.probe[j]
        assert torch.allclose(image, _normalized(fake, fake.train_images[i]), atol=1e-5)
        assert label == fake.train_labels[i]


def test_cifar_train_set_is_augmented(cifar10: FakeCifar) -> None:
    td = cifar("cifar10", data_dir=cifar10.root, download=False, probe_size=1)
    clean = _normalized(cifar10, cifar10.train_images[0])
    torch.manual_seed(0)
    draws = [td.train[0][0] for _ in range(8)]
    assert all(d.shape == (3, 32, 32) for d in draws)
    assert any(not torch.allclose(d, clean) for d in draws)
    assert td.train[0][1] == cifar10.train_labels[0]
    torch.manual_seed(0)
    assert all(torch.equal(d, td.train[0][0]) for d in draws[:1])  # seeded: reproducible
    plain = cifar("cifar10", data_dir=cifar10.root, download=False, probe_size=1, augment=False)
    assert torch.allclose(plain.train[0][0], clean, atol=1e-5)


def test_cifar_probe_batches(cifar10: FakeCifar) -> None:
    td = cifar("cifar10", data_dir=cifar10.root, download=False, probe_size=5, seed=2)
    batches = probe_batches(td.probe, batch_size=2)
    assert [tuple(x.shape) for x, _ in batches] == [(2, 3, 32, 32), (2, 3, 32, 32), (1, 3, 32, 32)]
    labels = torch.cat([y for _, y in batches])
    assert labels.dtype == torch.int64
    assert labels.tolist() == [cifar10.train_labels[i] for i in td.probe_indices]
    again = probe_batches(td.probe, batch_size=2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


def test_cifar_subset(cifar10: FakeCifar) -> None:
    td = cifar(
        "cifar10", data_dir=cifar10.root, download=False, probe_size=4, subset=7, test_subset=2
    )
    assert len(td.train) == 7 and len(td.test) == 2  # type: ignore[arg-type]
    assert all(i < 7 for i in td.probe_indices)
    for j, i in enumerate(td.probe_indices):
        assert torch.allclose(td.probe[j][0], _normalized(cifar10, cifar10.train_images[i]))
    with pytest.raises(ValueError, match="subset"):
        cifar("cifar10", data_dir=cifar10.root, download=False, probe_size=1, subset=21)
    with pytest.raises(ValueError, match="probe size"):
        cifar("cifar10", data_dir=cifar10.root, download=False, probe_size=8, subset=7)


def test_cifar_download_true_uses_files_already_there(
    cifar10: FakeCifar, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    td = cifar("cifar10", data_dir=cifar10.root, download=True, probe_size=1)
    assert len(td.train) == 20  # type: ignore[arg-type]


def _assert_one_line(err: DatasetMissingError, folder: Path) -> None:
    message = str(err)
    assert "\n" not in message
    assert str(folder) in message
    assert "--data-dir" in message and "download=True" in message


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
def test_missing_dataset_offline_is_one_line(which: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        cifar(which, data_dir=tmp_path / "nowhere", download=False, probe_size=1)
    folder_name = "cifar-10-batches-py" if which == "cifar10" else "cifar-100-python"
    _assert_one_line(info.value, tmp_path / "nowhere" / folder_name)
    assert info.value.directory == tmp_path / "nowhere"


def test_corrupted_dataset_is_reported(tmp_path: Path) -> None:
    fake = write_fake_cifar10(tmp_path)  # md5s not accepted: torchvision sees corruption
    with pytest.raises(DatasetMissingError, match="corrupted") as info:
        cifar("cifar10", data_dir=tmp_path, download=False, probe_size=1)
    _assert_one_line(info.value, fake.folder)


def test_failed_download_offline_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """download=True without internet: torchvision's own download path fails → one line."""
    attempts: list[str] = []

    def offline(request: urllib.request.Request | str, *args: object, **kwargs: object) -> None:
        attempts.append(request if isinstance(request, str) else request.full_url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetMissingError, match="could not be downloaded") as info:
        cifar("cifar100", data_dir=tmp_path, download=True, probe_size=1)
    _assert_one_line(info.value, tmp_path / "cifar-100-python")
    assert attempts and attempts[0] == datasets.CIFAR100.url
    assert "URLError" in str(info.value)


def test_fake_cifar_md5s_context_manager_restores(tmp_path: Path) -> None:
    original = datasets.CIFAR10.train_list
    fake = write_fake_cifar10(tmp_path, n_per_batch=1, n_test=1)
    with fake_cifar_md5s(fake):
        assert len(datasets.CIFAR10(str(tmp_path), train=True)) == 5
    assert datasets.CIFAR10.train_list is original


def test_unknown_cifar_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cifar10"):
        cifar("svhn", data_dir=tmp_path, download=False, probe_size=1)


@pytest.mark.parametrize("augment", [True, False])
def test_profile_augment_reaches_cifar(cifar10: FakeCifar, augment: bool) -> None:
    """The profile's ``augment`` key switches CIFAR's random crop and flip (default on)."""
    from sgdtop.profile import load
    from sgdtop.train import _load_task

    p = load("resnet32-cifar10", overrides={"data_dir": str(cifar10.root),
                                            "download": False, "augment": augment,
                                            "train_subset": 20})
    td = _load_task(p)
    clean = _normalized(cifar10, cifar10.train_images[0])
    torch.manual_seed(0)
    draws = [td.train[0][0] for _ in range(8)]
    assert any(not torch.allclose(d, clean, atol=1e-5) for d in draws) == augment
