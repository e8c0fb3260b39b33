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


def test_one_profile_per_figure_says_what_it_takes() -> None:
    """Figs. 1-7 each have a profile whose comment names the figure, the command and the
    cost on a CPU and on one GPU, with the paper's SGD for the CNN ones."""
    names = [n for n in P.bundled_names() if n.startswith("fig")]
    for fig in range(1, 8):
        mine = [n for n in names if n.startswith(f"fig{fig}-")]
        assert mine, f"no profile for Fig. {fig}"
        for name in mine:
            text = (P.profiles_dir() / f"{name}.toml").read_text(encoding="utf-8")
            comment = "\n".join(ln for ln in text.splitlines() if ln.startswith("#"))
            assert f"Fig. {fig}" in comment, name
            assert f"sgdtop sweep {name}" in comment or f"sgdtop run {name}" in comment, name
            assert "GPU" in comment and "CPU" in comment, name
            prof = P.load(name)
            if prof.model != "mlp":
                assert (prof.batch_size, prof.weight_decay) == (128, 5e-4), name
                assert prof.probe_fraction == 0.05 and prof.probe_cap == 2250, name


def test_measure_every_epochs_schedule() -> None:
    from sgdtop.recorder import RunRecorder
    from sgdtop.train import prepare, train

    events = []
    setup = prepare(P.load("smoke", overrides={
        "epochs": 5, "measure_every_epochs": 2, "first_epoch_every": 0,
        "measure_at_start": False, "k": 3, "dense_max_params": 0}))
    train(setup, RunRecorder(sink=events.append))
    # 8 steps per epoch: the ends of epochs 2 and 4, and the last epoch (5)
    assert [ev.step for ev in events if ev.kind == "spectrum"] == [16, 32, 40]
    with pytest.raises(P.ProfileError, match="measure_every_epochs"):
        P.load("smoke", overrides={"measure_every_epochs": 0})


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
    digits = P.load(model="resnet8")
    assert (digits.name, digits.model, digits.dataset) == ("digits-cnn-cpu", "resnet8", "digits")


def test_digits_profile_has_the_papers_cnn_settings() -> None:
    """Figs. 2-7's settings: S=128, η=0.1, β=0.9, L2 5e-4, top-k on a 5% probe set, the
    authors' initialisation, augmentation on."""
    prof = P.load("digits-cnn-cpu")
    assert (prof.batch_size, prof.lr, prof.momentum, prof.weight_decay) == (128, 0.1, 0.9, 5e-4)
    assert prof.probe_fraction == 0.05 and prof.k == 10
    assert prof.init == "paper" and prof.augment is True and prof.threads == 1


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
