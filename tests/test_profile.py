"""Profiles: bundled files, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgdtop import profile as P


def test_bundled_profiles_load_and_validate() -> None:
    names = P.bundled_names()
    for required in ("mlp-teacher-student", "resnet32-cifar10", "vgg11-cifar10",
                     "vgg11-cifar100", "smoke"):
        assert required in names
    for name in names:
        prof = P.load(name)
        assert prof.description, name


def test_paper_settings() -> None:
    prof = P.load("resnet32-cifar10")
    assert (prof.batch_size, prof.lr, prof.momentum, prof.weight_decay, prof.k) == (
        128, 0.1, 0.9, 5e-4, 30)
    assert prof.probe_fraction == 0.05 and prof.probe_cap == 2250


def test_default_is_teacher_student_and_model_alias() -> None:
    assert P.load().dataset == "teacher-student"
    prof = P.load(model="resnet56")
    assert prof.model == "resnet56" and prof.dataset == "cifar10"
    assert P.load(model="smoke").name == "smoke"


def test_overrides_and_set() -> None:
    over = P.parse_set(["lr=0.3", "hidden=[8, 8]", "lr_schedule=cosine", "warm_start=false"])
    prof = P.load("smoke", overrides=over)
    assert prof.lr == 0.3 and prof.hidden == [8, 8] and prof.lr_schedule == "cosine"
    assert prof.warm_start is False


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (["lrr=0.1"], "unknown profile key 'lrr'; allowed: name,"),
        (["lr=fast"], "lr must be float"),
        (["epochs=1.5"], "epochs must be int"),
        (["hidden=3"], "hidden must be a list of int"),
        (["lr"], r"--set takes key=value"),
    ],
)
def test_bad_overrides_name_the_key(items: list[str], match: str) -> None:
    with pytest.raises(P.ProfileError, match=match):
        P.load("smoke", overrides=P.parse_set(items))


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"lr": 0.0}, "lr must be a positive"),
        ({"batch_size": 0}, "batch_size must be a positive"),
        ({"momentum": 1.0}, "momentum must be in"),
        ({"k": 0}, "k must be a positive"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ],
)
def test_bad_values(over: dict[str, object], match: str) -> None:
    with pytest.raises(P.ProfileError, match=match):
        P.load("smoke", overrides=over)


def test_unknown_profile_lists_valid_ones() -> None:
    with pytest.raises(P.ProfileError, match=r"profiles: .*smoke.*models: mlp"):
        P.load("nope")


def test_profile_file_with_unknown_key(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('description = "x"\nmodle = "mlp"\n')
    with pytest.raises(P.ProfileError, match=r"mine\.toml: unknown profile key 'modle'"):
        P.load(str(f))
