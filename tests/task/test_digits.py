"""The handwritten digits task (sgdtop.data.digits) on the real data scikit-learn ships:
split sizes, classes, determinism from the seed, the probe, the 1-pixel shifts, the
missing-extra message, and `sgdtop run digits-cnn-cpu` end to end."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sgdtop import data as data_mod
from sgdtop.data import (
    DIGITS_EXTRA_MESSAGE,
    DIGITS_SIZE,
    DIGITS_TEST_SIZE,
    MissingExtraError,
    digits,
    shift_images,
)

needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="scikit-learn is not installed (pip install 'sgdtop[digits]'; the test extra "
           "installs it)")

N_TRAIN = DIGITS_SIZE - DIGITS_TEST_SIZE  # 1,437


@pytest.fixture(scope="module")
def task() -> data_mod.TaskData:
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed (pip install 'sgdtop[digits]')")
    return digits(seed=0)


@needs_sklearn
def test_shapes_classes_and_split_sizes(task: data_mod.TaskData) -> None:
    x, y = task.train.tensors  # type: ignore[attr-defined]
    xt, yt = task.test.tensors  # type: ignore[attr-defined]
    assert (len(x), len(xt)) == (1437, 360) == (N_TRAIN, DIGITS_TEST_SIZE)
    assert x.shape == (1437, 1, 8, 8) and xt.shape == (360, 1, 8, 8)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(y.tolist()) == set(range(10)) == set(yt.tolist())
    assert task.num_outputs == 10 and task.in_channels == 1 and task.in_features is None
    assert task.task == "classification" and task.name == "digits"
    # all 1,797 images, each once: the class counts of the two sets add up to the data's
    counts = torch.bincount(torch.cat([y, yt]), minlength=10).tolist()
    assert counts == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # standardised by the training pixels
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)


@needs_sklearn
def test_the_seed_fixes_the_split(task: data_mod.TaskData) -> None:
    again = digits(seed=0)
    other = digits(seed=1)
    for a, b in zip(task.train.tensors, again.train.tensors, strict=True):  # type: ignore[attr-defined]
        assert torch.equal(a, b)
    assert task.probe_indices == again.probe_indices
    assert not torch.equal(task.test.tensors[1], other.test.tensors[1])  # type: ignore[attr-defined]
    assert len(other.train) == N_TRAIN  # type: ignore[arg-type]


@needs_sklearn
def test_probe_is_five_percent_of_the_training_set_unaugmented(task: data_mod.TaskData
                                                                ) -> None:
    assert len(task.probe) == 72 == data_mod.probe_size_for(N_TRAIN, 0.05)  # type: ignore[arg-type]
    assert task.probe_indices == data_mod.draw_probe_indices(N_TRAIN, 72, 0)
    x, y = task.train.tensors  # type: ignore[attr-defined]
    px, py = task.probe.tensors  # type: ignore[attr-defined]
    idx = list(task.probe_indices)
    assert torch.equal(px, x[idx]) and torch.equal(py, y[idx])
    capped = digits(seed=0, probe_fraction=0.5, probe_cap=100)
    assert len(capped.probe) == 100  # type: ignore[arg-type]


@needs_sklearn
def test_augmentation_shifts_by_at_most_one_pixel(task: data_mod.TaskData) -> None:
    assert task.augment is not None
    x = task.train.tensors[0][:256]  # type: ignore[attr-defined]
    a = task.augment(x, torch.Generator().manual_seed(3))
    b = task.augment(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    blank = float(x.min())  # a 0 pixel, standardised: the fill
    seen = set()
    for i in range(len(x)):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if torch.equal(_shift(x[i], dy, dx, blank), a[i])]
        assert matches, i
        seen.update(matches)
    assert len(seen) == 9
    assert digits(seed=0, augment=False).augment is None


def _shift(img: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """``img`` (C, H, W) moved down by dy and right by dx, ``fill`` where nothing moved in."""
    out = torch.full_like(img, fill)
    h, w = img.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_shift_images_moves_a_pixel_within_one() -> None:
    """On a hand-made image (one lit pixel), every shift is one of the nine offsets, the
    new pixels take the fill value, and each offset appears."""
    x = torch.zeros(500, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0
    out = shift_images(x, torch.Generator().manual_seed(0), fill=-0.5)
    assert out.shape == x.shape
    positions = set()
    for img in out:
        lit = (img[0] == 1.0).nonzero().tolist()
        assert len(lit) == 1
        r, c = lit[0]
        assert abs(r - 2) <= 1 and abs(c - 2) <= 1
        positions.add((r, c))
        assert set(img[0].unique().tolist()) <= {0.0, 1.0, -0.5}
    assert len(positions) == 9
    corner = torch.ones(1, 1, 3, 3)
    shifted = [shift_images(corner, torch.Generator().manual_seed(s), fill=-0.5)
               for s in range(40)]
    assert any(bool((s == -0.5).any()) for s in shifted)  # the fill comes in at the edges


def test_missing_scikit_learn_is_one_line_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import → ImportError
    with pytest.raises(MissingExtraError) as info:
        digits(seed=0)
    message = str(info.value)
    assert message == DIGITS_EXTRA_MESSAGE and "\n" not in message
    assert "sgdtop[digits]" in message
    from sgdtop.profile import load
    from sgdtop.train import InputError, prepare
    with pytest.raises(InputError, match=r"sgdtop\[digits\]"):
        prepare(load("digits-cnn-cpu"))


@needs_sklearn
@pytest.mark.parametrize(("model", "message"), [("vgg11", "1x8x8"), ("mlp", "vector")])
def test_digits_needs_an_image_resnet(model: str, message: str) -> None:
    from sgdtop.profile import load
    from sgdtop.train import InputError, prepare
    with pytest.raises(InputError, match=message):
        prepare(load("digits-cnn-cpu", overrides={"model": model}))


@needs_sklearn
def test_digits_profile_end_to_end(tmp_path: Path) -> None:
    """`sgdtop run digits-cnn-cpu --epochs 1` as a user runs it (a short subprocess): the
    ResNet8 with the authors' init trains on the real digits and is measured."""
    runs = tmp_path / "runs"
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "sgdtop", "run", "digits-cnn-cpu", "--epochs", "1",
         "--set", "k=3", "--set", "measure_at_start=false", "--log",
         "--runs-dir", str(runs)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    events = [json.loads(line) for line in
              (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    start = events[0]
    assert start["kind"] == "run_start" and start["model"] == "resnet8"
    assert start["num_params"] == 75_002 and start["dataset"] == "digits"
    assert (start["train_size"], start["test_size"], start["probe_size"]) == (1437, 360, 72)
    assert start["profile"]["init"] == "paper" and start["steps_per_epoch"] == 12
    spectra = [e for e in events if e["kind"] == "spectrum"]
    assert len(spectra) == 1 and len(spectra[0]["eigenvalues"]) == 3
    evals = [e for e in events if e["kind"] == "eval"]
    assert len(evals) == 1 and 0.0 <= evals[0]["test_acc"] <= 1.0
    assert events[-1]["kind"] == "run_end" and events[-1]["status"] == "completed"
    assert "Traceback" not in proc.stderr
