"""Loss slices end to end: the trainer's schedule, the headless line, the TUI panel, the
plot; and the generated ``gratings`` image task the CNN experiments run on here."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
import torch
from cli_helpers import only_run, sgdtop
from tui_fixtures import normal_run, slice_run

from sgdtop import data as data_mod
from sgdtop.plot import PlotDataError, plot_runs
from sgdtop.profile import ProfileError, load
from sgdtop.recorder import RunRecorder
from sgdtop.schema import Record, read_events
from sgdtop.stats import RunEvents
from sgdtop.train import InputError, prepare, train
from sgdtop.tui.draw.slices_chart import slices_text
from sgdtop.tui.run import ReplaySource, SgdtopApp
from sgdtop.tui.run.widgets import EigenChart, SliceChart
from sgdtop.tui.state import RunState


def _train(**overrides: object) -> list[Record]:
    events: list[Record] = []
    setup = prepare(load("smoke", overrides=overrides))
    outcome = train(setup, RunRecorder(sink=events.append))
    assert outcome.status == "completed"
    return events


# -- the trainer's schedule ------------------------------------------------------------


def test_slices_follow_the_schedule_and_the_ritz_vectors() -> None:
    # smoke: 256 examples, S=32 → 8 steps per epoch; 2 epochs.
    events = _train(slice_every=3, slice_until=9, first_epoch_every=0, slice_k=2,
                    slice_points=5, slice_step=2.0)
    slices = [ev for ev in events if ev.kind == "loss_slice"]
    spectra = {ev.step: ev for ev in events if ev.kind == "spectrum"}
    # every 3 steps up to 9, and the end-of-epoch measurement at step 8; none after 9
    assert [ev.step for ev in slices] == [0, 3, 6, 8, 9]
    assert sorted(spectra) == [0, 3, 6, 8, 9, 16]
    for ev in slices:
        sp = spectra[ev.step]
        assert ev.eigenvalues == sp.eigenvalues[:2]
        eta = sp.lr
        assert ev.distances == pytest.approx([-4 * eta, -2 * eta, 0.0, 2 * eta, 4 * eta])
        assert ev.lr == eta
        assert len(ev.losses) == 2 and all(len(r) == 5 for r in ev.losses)
        assert all(row[2] == ev.loss0 for row in ev.losses)
        assert all(s <= 0 for s in ev.slopes)
        # near θ the loss follows the quadratic model L + g·t + ½λt²
        for lam, g, row in zip(ev.eigenvalues, ev.slopes, ev.losses, strict=True):
            t = ev.distances[3]
            quad = ev.loss0 + g * t + 0.5 * lam * t * t
            assert row[3] == pytest.approx(quad, abs=0.05 * abs(row[3] - ev.loss0) + 1e-3)


def test_slices_off_by_default_and_training_is_unchanged() -> None:
    plain = _train(first_epoch_every=0)
    sliced = _train(first_epoch_every=0, slice_every=4, slice_until=4)
    assert not any(ev.kind == "loss_slice" for ev in plain)

    def evals(evs: list[Record]) -> list[tuple[float, float]]:
        return [(ev.train_loss, ev.test_loss) for ev in evs if ev.kind == "eval"]

    assert evals(plain) == evals(sliced)  # side-effect free: the same training, bit for bit


@pytest.mark.parametrize(("key", "value", "message"), [
    ("slice_points", 4, "odd"), ("slice_points", 1, "odd"), ("slice_step", 0.0, "slice_step"),
    ("slice_k", 0, "slice_k"), ("slice_every", -1, "slice_every"),
])
def test_bad_slice_settings(key: str, value: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load("smoke", overrides={key: value})


def test_slice_k_above_k_uses_all_k() -> None:
    events = _train(k=2, slice_k=4, slice_every=8, slice_until=0, first_epoch_every=0)
    (sl,) = [ev for ev in events if ev.kind == "loss_slice"]
    assert sl.step == 0 and len(sl.losses) == 2


def test_headless_run_prints_slices_and_plot_draws_them(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = sgdtop("run", "smoke", "--log", "--set", "epochs=1", "--set", "slice_every=4",
                  "--set", "first_epoch_every=0", runs=runs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("loss slices: 4 directions × 21 points") == 3  # steps 0, 4, 8
    events = read_events(only_run(runs) / "events.jsonl").records
    assert sum(ev.kind == "loss_slice" for ev in events) == 3
    out = tmp_path / "fig7.png"
    proc = sgdtop("plot", "latest", "--kind", "slices", "--out", str(out), runs=runs)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 20_000


def test_plot_without_slices_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlotDataError, match="slice_every"):
        plot_runs([RunEvents.from_events(normal_run())], tmp_path / "x.png", "slices")


# -- the TUI panel -----------------------------------------------------------------------


def test_state_keeps_the_newest_slices_and_ignores_malformed_ones() -> None:
    state = RunState()
    state.apply_all(slice_run())
    view = state.slice_view()
    assert 1 <= len(view.slices) <= 6
    assert view.slices[-1].step == max(ev.step for ev in slice_run() if ev.kind == "loss_slice")
    before = state.slices_version
    from sgdtop.schema import BadLine, decode_line
    odd = decode_line('{"v": 1, "kind": "loss_slice", "t": 1.0, "step": 1, "distances": "x", '
                      '"eigenvalues": [], "slopes": [], "losses": null, "loss0": 0.0, '
                      '"lr": 0.1, "seconds": 0.0}')
    assert isinstance(odd, BadLine)  # stopped at the decoder: it never reaches the state
    assert state.slices_version == before


@pytest.mark.parametrize(("width", "columns"), [(60, 2), (100, 4), (200, 4)])
def test_slice_panel_fits_its_width(width: int, columns: int) -> None:
    state = RunState()
    state.apply_all(slice_run())
    text = slices_text(state.slice_view(), width, 12)
    lines = text.plain.split("\n")
    assert len(lines) == 12 and all(len(line) <= width for line in lines)
    assert sum(f"v{chr(0x2080 + i)}" in lines[0] for i in range(1, 5)) == columns
    empty = slices_text(RunState().slice_view(), width, 6).plain
    assert "slice_every" in empty


def test_v_toggles_the_slice_panel() -> None:
    async def main() -> None:
        app = SgdtopApp(ReplaySource(slice_run(), instant=True))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            chart, panel = app.query_one(EigenChart), app.query_one(SliceChart)
            assert chart.display and not panel.display
            await pilot.press("v")
            await pilot.pause()
            assert panel.display and not chart.display
            assert panel.view is not None and panel.view.slices
            assert "λ" in panel.render().plain
            await pilot.press("v")
            await pilot.pause()
            assert chart.display and not panel.display

    asyncio.run(main())


# -- the gratings task -------------------------------------------------------------------


def test_gratings_shapes_balance_and_determinism() -> None:
    a = data_mod.gratings(n_train=50, n_test=20, num_classes=5, size=12, seed=3, probe_size=5)
    x, y = a.train.tensors  # type: ignore[attr-defined]
    assert x.shape == (50, 3, 12, 12) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [10] * 5
    assert a.task == "classification" and a.num_outputs == 5 and a.in_features is None
    assert len(a.probe) == 5 and len(a.test) == 20
    b = data_mod.gratings(n_train=50, n_test=20, num_classes=5, size=12, seed=3, probe_size=5)
    assert torch.equal(x, b.train.tensors[0])  # type: ignore[attr-defined]
    c = data_mod.gratings(n_train=50, n_test=20, num_classes=5, size=12, seed=4, probe_size=5)
    assert not torch.equal(x, c.train.tensors[0])  # type: ignore[attr-defined]


def test_gratings_without_noise_are_separable_by_orientation() -> None:
    d = data_mod.gratings(n_train=40, n_test=4, num_classes=4, size=16, pixel_noise=0.0,
                          probe_size=1)
    x, y = d.train.tensors  # type: ignore[attr-defined]
    assert float(x.abs().max()) <= 1.0
    # class means of the power spectrum differ: orientation is in the image
    power = torch.fft.fft2(x.mean(dim=1)).abs()
    means = torch.stack([power[y == c].mean(dim=0) for c in range(4)])
    assert float(torch.cdist(means.flatten(1), means.flatten(1)).triu(1).max()) > 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_classes": 1}, "2 classes"), ({"size": 4}, "8 pixels"),
    ({"pixel_noise": -1.0}, "pixel_noise"), ({"n_train": 0}, "positive"),
])
def test_gratings_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n_train": 10, "n_test": 10, "probe_size": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        data_mod.gratings(**args)  # type: ignore[arg-type]


def test_resnet_trains_and_is_measured_on_gratings() -> None:
    events: list[Record] = []
    p = load("resnet20-gratings-cpu", overrides={
        "n_train": 64, "n_test": 32, "epochs": 1, "batch_size": 32, "k": 3,
        "probe_cap": 16, "image_size": 8, "measure_at_start": False})
    setup = prepare(p)
    assert setup.task.name == "gratings" and len(setup.task.probe) == 3
    outcome = train(setup, RunRecorder(sink=events.append))
    assert outcome.status == "completed"
    (sp,) = [ev for ev in events if ev.kind == "spectrum"]
    assert len(sp.eigenvalues) == 3 and math.isfinite(sp.spectral_norm)
    assert 0.0 <= [ev for ev in events if ev.kind == "eval"][-1].test_acc <= 1.0


@pytest.mark.parametrize(("model", "dataset", "extra", "message"), [
    ("mlp", "gratings", {}, "vector inputs"),
    ("resnet20", "teacher-student", {}, "image inputs"),
    ("vgg11", "gratings", {}, "32x32"),
])
def test_model_and_data_must_fit(model: str, dataset: str, extra: dict[str, object],
                                 message: str) -> None:
    p = load("smoke", overrides={"model": model, "dataset": dataset, **extra})
    with pytest.raises(InputError, match=message):
        prepare(p)


def test_bad_model_data_pair_is_one_line_on_the_cli(tmp_path: Path) -> None:
    proc = sgdtop("run", "mlp", "--set", "dataset=gratings", "--log", runs=tmp_path / "runs")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "vector inputs" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_gratings_with_fresh_noise() -> None:
    """fresh_noise: clean training images, new noise per batch from the trainer's
    generator (reproducible), a fixed noisy probe set."""
    d = data_mod.gratings(n_train=40, n_test=10, num_classes=4, size=8, pixel_noise=2.0,
                          fresh_noise=True, seed=1, probe_size=4)
    plain = data_mod.gratings(n_train=40, n_test=10, num_classes=4, size=8, pixel_noise=2.0,
                              seed=1, probe_size=4)
    x, _ = d.train.tensors  # type: ignore[attr-defined]
    assert float(x.abs().max()) <= 1.0  # clean
    assert d.augment is not None and plain.augment is None
    a = d.augment(x[:5], torch.Generator().manual_seed(0))
    b = d.augment(x[:5], torch.Generator().manual_seed(0))
    c = d.augment(x[:5], torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 1.5 < float((a - x[:5]).std()) < 2.5
    probe_x = torch.stack([d.probe[i][0] for i in range(len(d.probe))])
    plain_x = torch.stack([plain.probe[i][0] for i in range(len(plain.probe))])
    assert torch.equal(probe_x, plain_x)  # the probe: one fixed noisy draw
