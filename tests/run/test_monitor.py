"""``sgdtop.Monitor`` in hand-written training loops: the run directory and events it
writes, bit-for-bit identical training with and without it, eval, divergence, interrupts,
failures, bad probes, and following a Monitor run (RunFollower, ``sgdtop watch``)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import sgdtop
from sgdtop.logsink import LogSink
from sgdtop.monitor import Diverged, Monitor, MonitorError, hyperparams
from sgdtop.recorder import LOCK_FILE, live_pid
from sgdtop.schema import Record, read_events
from sgdtop.store import EVENTS_FILE, PROFILE_FILE, RunFollower, run_info
from sgdtop.tui.state import fold

D_IN, CLASSES = 6, 3


def make_model(bn_dropout: bool = True) -> nn.Module:
    """A tiny classifier (≈150 parameters), with batch norm and dropout by default."""
    layers: list[nn.Module] = [nn.Linear(D_IN, 8)]
    if bn_dropout:
        layers.append(nn.BatchNorm1d(8))
    layers.append(nn.ReLU())
    if bn_dropout:
        layers.append(nn.Dropout(0.3))
    layers += [nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, CLASSES)]
    return nn.Sequential(*layers)


def make_data(n: int = 96, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D_IN, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


def events_of(run_dir: Path) -> list[Record]:
    res = read_events(run_dir / EVENTS_FILE)
    assert not res.bad_lines and not res.truncated_tail
    return res.records


def train(*, monitor: bool, tmp: Path | None = None, steps_per_epoch: int = 6, epochs: int = 2,
          every: int = 2, **kw: Any) -> tuple[nn.Module, torch.optim.Optimizer, Monitor | None]:
    """The user's loop: DataLoader shuffling from the global RNG, BN, dropout, SGD with
    momentum; with or without the monitor (which also evaluates each epoch)."""
    torch.manual_seed(0)
    model = make_model()
    data = make_data()
    loader = DataLoader(data, batch_size=16, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    mon = None
    if monitor:
        assert tmp is not None
        mon = Monitor(model, loss_fn, probe=DataLoader(data, batch_size=32, shuffle=True),
                      every=every, k=4, optimizer=opt, runs_dir=tmp, quiet=True, **kw)
        mon.start()
    for epoch in range(epochs):
        model.train()
        for i, (x, y) in enumerate(loader):
            if i >= steps_per_epoch:
                break
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            if mon is not None:
                mon.step(loss=loss, epoch=epoch)
        if mon is not None:
            mon.eval(test=DataLoader(make_data(48, seed=1), batch_size=16, shuffle=True))
    if mon is not None:
        mon.close()
    return model, opt, mon


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module,
                                                                  torch.optim.Optimizer,
                                                                  Monitor, torch.Tensor]:
    model, opt, mon = train(monitor=True, tmp=tmp_path_factory.mktemp("runs"))
    assert mon is not None
    return model, opt, mon, torch.get_rng_state()


def test_training_is_bit_identical_with_and_without_monitor(
        monitored: tuple[nn.Module, torch.optim.Optimizer, Monitor, torch.Tensor]) -> None:
    model_m, opt_m, mon, rng_m = monitored
    model_p, opt_p, _ = train(monitor=False)
    rng_p = torch.get_rng_state()
    assert mon.measurements >= 4
    sd_m, sd_p = model_m.state_dict(), model_p.state_dict()
    assert sd_m.keys() == sd_p.keys()
    for key in sd_p:  # weights and BN running statistics
        assert torch.equal(sd_m[key], sd_p[key]), key
    for p_m, p_p in zip(model_m.parameters(), model_p.parameters(), strict=True):
        assert torch.equal(opt_m.state[p_m]["momentum_buffer"],
                           opt_p.state[p_p]["momentum_buffer"])
        assert torch.equal(p_m.grad, p_p.grad)
    assert model_m.training == model_p.training
    assert torch.equal(rng_m, rng_p)


def test_run_directory_and_events_like_sgdtop_run(
        monitored: tuple[nn.Module, torch.optim.Optimizer, Monitor, torch.Tensor]) -> None:
    _, _, mon, _ = monitored
    run_dir = mon.run_dir
    assert run_dir is not None and mon.status == "completed"
    assert (run_dir / EVENTS_FILE).is_file() and (run_dir / PROFILE_FILE).is_file()
    assert live_pid(run_dir) is None and not (run_dir / "trainer.pid").exists()
    evs = events_of(run_dir)
    kinds = Counter(ev.kind for ev in evs)
    assert evs[0].kind == "run_start" and evs[-1].kind == "run_end"
    start, end = evs[0], evs[-1]
    assert start.run_id == run_dir.name and start.k == 4
    assert start.lr == pytest.approx(0.1) and start.momentum == pytest.approx(0.9)
    assert start.weight_decay == pytest.approx(1e-3)
    assert start.probe_size == 96 and start.device == "cpu"
    assert start.task == "classification"
    assert end.status == "completed" and end.steps == 12 == mon.steps
    # at the start, every 2 of 12 steps; the last step was just measured: no extra one
    assert kinds["spectrum"] == kinds["neurons"] == kinds["dense_spectrum"] == 7
    assert kinds["eval"] == 2 and kinds["step"] >= 6
    spectra = [ev for ev in evs if ev.kind == "spectrum"]
    assert [ev.step for ev in spectra] == [0, 2, 4, 6, 8, 10, 12]
    assert [ev.epoch for ev in spectra] == [0, 0, 0, 0, 1, 1, 1]
    for sp in spectra:
        assert len(sp.eigenvalues) == 4
        assert sp.lr == pytest.approx(0.1) and sp.momentum == pytest.approx(0.9)
        assert sp.stability_limit == pytest.approx(2 * 1.9 / 0.1)
        assert sp.eta_lambda1 == pytest.approx(0.1 * sp.eigenvalues[0])
        assert sp.spectral_norm == pytest.approx(abs(sp.eigenvalues[0]))
    # each measurement: spectrum, dense_spectrum, neurons, in that order
    seq = [ev.kind for ev in evs if ev.kind in ("spectrum", "dense_spectrum", "neurons")]
    assert seq == ["spectrum", "dense_spectrum", "neurons"] * 7
    for ev in evs:
        if ev.kind == "eval":
            assert 0 <= ev.test_acc <= 1 and 0 <= ev.train_acc <= 1
            assert math.isfinite(ev.test_loss)
    info = run_info(run_dir)
    assert info.status == "completed" and info.steps == 12 and info.lr == pytest.approx(0.1)
    # every sink digests it
    sink = LogSink()
    assert sink.consume(evs) == "completed"
    state = fold(evs)
    state.header_view(), state.metric_views(), state.spectrum_view(), state.chart_view()
    assert state.ended


def test_monitor_without_optimizer_measures_at_end(tmp_path: Path) -> None:
    """η given per step, β unknown (0), no dense spectrum above dense_max_params, and a last
    measurement at the end when the last step was not measured."""
    torch.manual_seed(0)
    model = make_model(bn_dropout=False)
    x, y = make_data().tensors
    with Monitor(model, nn.CrossEntropyLoss(), probe=[(x[:32], y[:32])], every=0, k=3,
                 run_dir=tmp_path / "run", dense_max_params=0, quiet=True) as mon:
        for _ in range(3):
            mon.step(loss=1.5, lr=0.05)
    evs = events_of(tmp_path / "run")
    spectra = [ev for ev in evs if ev.kind == "spectrum"]
    assert [ev.step for ev in spectra] == [0, 3]
    assert math.isnan(evs[0].lr)  # unknown at the start
    assert spectra[1].lr == 0.05 and spectra[1].momentum == 0.0
    assert spectra[1].stability_limit == pytest.approx(40.0)
    assert not any(ev.kind == "dense_spectrum" for ev in evs)
    assert [ev for ev in evs if ev.kind == "step"][-1].step == 3
    assert LogSink().consume(evs) == "completed"
    fold(evs).metric_views()


def test_hyperparams_from_optimizers() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    assert hyperparams(torch.optim.SGD(params, lr=0.1, momentum=0.5)) == (0.1, 0.5, 0.0)
    assert hyperparams(torch.optim.Adam(params, lr=1e-3, betas=(0.8, 0.99))) == (
        1e-3, 0.8, 0.0)
    assert hyperparams(torch.optim.AdamW(params, lr=1e-3))[1] == 0.9
    assert hyperparams(None) == (None, None, None)


def test_eval_numbers_and_regression(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(20, 3)
    y = x.sum(dim=1, keepdim=True)
    with Monitor(model, nn.MSELoss(), probe=[(x, y)], k=2, run_dir=tmp_path / "r",
                 measure_at_start=False, measure_at_end=False, quiet=True) as mon:
        mon.eval(test_loss=0.5, test_acc=0.25)
        mon.eval(test=[(x, y)])
    assert events_of(tmp_path / "r")[0].task == "regression"  # float targets
    evals = [ev for ev in events_of(tmp_path / "r") if ev.kind == "eval"]
    assert evals[0].test_loss == 0.5 and evals[0].test_acc == 0.25
    assert evals[1].test_loss == pytest.approx(evals[1].train_loss)  # same data
    assert math.isnan(evals[1].test_acc) and math.isnan(evals[1].train_acc)
    assert not any(ev.kind == "spectrum" for ev in events_of(tmp_path / "r"))


def test_divergence_ends_the_run_diverged(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = make_model(bn_dropout=False)
    x, y = make_data().tensors
    with Monitor(model, nn.CrossEntropyLoss(), probe=[(x, y)], every=1, k=2,
                 run_dir=tmp_path / "r", measure_at_start=False, quiet=True) as mon:
        mon.step(loss=1.0, lr=10.0)
        mon.step(loss=torch.tensor(float("inf")), lr=10.0)
        mon.step(loss=float("nan"), lr=10.0)  # the user's loop goes on; no more measuring
    assert mon.status == "diverged"
    evs = events_of(tmp_path / "r")
    end = evs[-1]
    assert end.status == "diverged" and "inf" in end.message and "step 2" in end.message
    assert [ev.step for ev in evs if ev.kind == "spectrum"] == [1]
    losses = [ev.loss for ev in evs if ev.kind == "step"]
    assert losses[-1] != losses[-1] and math.inf in losses  # NaN and inf round-trip
    assert any(ev.kind == "log" and ev.level == "warning" for ev in evs)


def test_non_finite_weights_end_the_run_diverged(tmp_path: Path) -> None:
    """The reported loss may look fine while the weights are NaN: the measurement finds
    out, and the user's loop is not disturbed."""
    x, y = make_data().tensors
    model = make_model(bn_dropout=False)
    with Monitor(model, nn.CrossEntropyLoss(), probe=[(x, y)], every=1, k=2,
                 run_dir=tmp_path / "r", quiet=True) as mon:
        with torch.no_grad():
            model[0].weight[0, 0] = math.nan
        mon.step(loss=1.0, lr=0.1)
        mon.step(loss=1.0, lr=0.1)
    evs = events_of(tmp_path / "r")
    assert mon.status == "diverged" and evs[-1].status == "diverged"
    assert "measuring at step 1" in evs[-1].message
    assert [ev.step for ev in evs if ev.kind == "spectrum"] == [0]
    assert mon.measurements == 1


def test_stop_on_divergence_ends_the_with_block(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x, y = make_data().tensors
    reached = []
    with Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2,
                 run_dir=tmp_path / "r", measure_at_start=False, quiet=True,
                 stop_on_divergence=True) as mon:
        mon.step(loss=float("nan"), lr=1.0)
        reached.append(True)
    assert not reached and mon.status == "diverged"
    assert events_of(tmp_path / "r")[-1].status == "diverged"
    with pytest.raises(Diverged):  # outside a with block it propagates
        m2 = Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2,
                     run_dir=tmp_path / "r2", measure_at_start=False, quiet=True,
                     stop_on_divergence=True)
        m2.start()
        m2.step(loss=float("nan"))


def test_keyboard_interrupt_is_interrupted(tmp_path: Path) -> None:
    x, y = make_data().tensors
    with pytest.raises(KeyboardInterrupt), Monitor(
            make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2, run_dir=tmp_path / "r",
            measure_at_start=False, quiet=True) as mon:
        mon.step(loss=1.0)
        raise KeyboardInterrupt
    evs = events_of(tmp_path / "r")
    assert evs[-1].status == "interrupted" and evs[-1].steps == 1
    assert not any(ev.kind == "spectrum" for ev in evs)  # no end measurement
    assert live_pid(tmp_path / "r") is None


def test_exception_is_failed_and_propagates(tmp_path: Path) -> None:
    x, y = make_data().tensors
    with pytest.raises(ZeroDivisionError), Monitor(
            make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2, run_dir=tmp_path / "r",
            measure_at_start=False, quiet=True):
        _ = 1 / 0
    evs = events_of(tmp_path / "r")
    assert evs[-1].status == "failed"
    assert evs[-1].message == "training raised ZeroDivisionError: division by zero"
    assert any(ev.kind == "log" and ev.level == "error" for ev in evs)


def test_failure_in_the_first_measurement_still_ends_the_run(tmp_path: Path) -> None:
    """An exception in ``__enter__`` skips ``__exit__``: the monitor ends the run itself."""
    x, y = make_data().tensors

    def bad_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("shapes do not match")

    with pytest.raises(RuntimeError, match="shapes do not match"), Monitor(
            make_model(), bad_loss, probe=[(x, y)], k=2, run_dir=tmp_path / "r", quiet=True):
        pass
    evs = events_of(tmp_path / "r")
    assert evs[-1].status == "failed" and "shapes do not match" in evs[-1].message
    assert live_pid(tmp_path / "r") is None


def test_sys_exit_zero_is_a_normal_end(tmp_path: Path) -> None:
    x, y = make_data().tensors
    with pytest.raises(SystemExit), Monitor(
            make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2, run_dir=tmp_path / "r",
            measure_at_start=False, measure_at_end=False, quiet=True):
        sys.exit(0)
    assert events_of(tmp_path / "r")[-1].status == "completed"


@pytest.mark.parametrize("probe", [
    [],
    DataLoader(TensorDataset(torch.zeros(0, D_IN), torch.zeros(0).long()), batch_size=4),
    [(torch.zeros(0, D_IN), torch.zeros(0).long())],
], ids=["empty-list", "empty-loader", "empty-batch"])
def test_empty_probe_is_a_clear_error(tmp_path: Path, probe: Any) -> None:
    with pytest.raises(MonitorError, match="probe yields no examples"):
        Monitor(make_model(), nn.CrossEntropyLoss(), probe=probe, runs_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_probe_items_and_settings(tmp_path: Path) -> None:
    x, y = make_data().tensors
    with pytest.raises(MonitorError, match="probe batch 0 is a Tensor, expected a pair"):
        Monitor(make_model(), nn.CrossEntropyLoss(), probe=[x], runs_dir=tmp_path)
    with pytest.raises(MonitorError, match="k=1000 is larger than the model's"):
        Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=1000)
    with pytest.raises(MonitorError, match="every must be >= 0"):
        Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], every=-1)
    mon = Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2, quiet=True,
                  run_dir=tmp_path / "r", measure_at_start=False)
    with pytest.raises(RuntimeError, match="not started"):
        mon.step(loss=1.0)
    with mon:
        pass
    with pytest.raises(RuntimeError, match="has ended"):
        mon.step(loss=1.0)
    with pytest.raises(MonitorError, match="already exists"), Monitor(
            make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2,
            run_dir=tmp_path / "r", quiet=True):
        pass


def test_open_tui_without_terminal_only_logs(tmp_path: Path) -> None:
    x, y = make_data().tensors
    with Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2, open_tui=True,
                 run_dir=tmp_path / "r", measure_at_start=False, quiet=True) as mon:
        assert mon._viewer is None
    logs = [ev for ev in events_of(tmp_path / "r") if ev.kind == "log"]
    assert any("not a terminal" in ev.message for ev in logs)


def test_open_tui_on_a_terminal_starts_sgdtop_watch(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []

    class FakeViewer:
        def __init__(self, args: list[str]) -> None:
            started.append(args)
            self.waited = False

        def wait(self, timeout: float | None = None) -> int:
            self.waited = True
            return 0

    class Tty:
        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr("sgdtop.monitor.subprocess.Popen", FakeViewer)
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr("sys.stdout", Tty())
    x, y = make_data().tensors
    with Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], k=2, open_tui=True,
                 run_dir=tmp_path / "r", measure_at_start=False, quiet=True) as mon:
        viewer = mon._viewer
    # -P: the viewer starts with the working directory off sys.path (issue 12.7)
    assert started == [[sys.executable, "-P", "-m", "sgdtop", "watch",
                        str((tmp_path / "r").resolve())]]
    assert isinstance(viewer, FakeViewer) and viewer.waited  # waited for at the end


def test_run_follower_reads_a_monitor_run_live(tmp_path: Path) -> None:
    run_dir = tmp_path / "live"
    seen: list[Record] = []
    follower = RunFollower(run_dir, poll_s=0.02, stale_s=30.0)
    thread = threading.Thread(target=lambda: seen.extend(follower), daemon=True)
    thread.start()
    x, y = make_data().tensors
    with Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], every=2, k=2,
                 run_dir=run_dir, quiet=True, step_event_seconds=0.0) as mon:
        assert live_pid(run_dir) == os.getpid()
        assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())
        assert run_info(run_dir).status == "running"
        for _ in range(4):
            mon.step(loss=1.0, lr=0.1)
    thread.join(timeout=20)
    assert not thread.is_alive()
    follower.close()
    assert follower.ended_reason is None and not follower.bad_lines
    assert [ev.kind for ev in seen] == [ev.kind for ev in events_of(run_dir)]
    assert seen[-1].status == "completed"


def test_sgdtop_watch_on_a_monitor_run(
        monitored: tuple[nn.Module, torch.optim.Optimizer, Monitor, torch.Tensor]) -> None:
    run_dir = monitored[2].run_dir
    proc = subprocess.run([sys.executable, "-m", "sgdtop", "watch", str(run_dir), "--log"],
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "run completed" in proc.stderr + proc.stdout


def test_monitor_is_exported_lazily() -> None:
    assert sgdtop.Monitor is Monitor
    code = ("import sys, sgdtop, sgdtop.schema, sgdtop.store; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('light')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "light" in proc.stdout, proc.stderr


def test_loss_slices_from_the_monitor_leave_training_unchanged(tmp_path: Path) -> None:
    """slices=2: a loss_slice after every measurement whose η is known (the first one,
    before any step, has η from the optimizer), and training bit for bit the same."""
    plain, _, _ = train(monitor=False)
    model, _, mon = train(monitor=True, tmp=tmp_path, slices=2, slice_points=5,
                          slice_step=0.5)
    assert mon is not None and mon.run_dir is not None
    for a, b in zip(plain.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    evs = events_of(mon.run_dir)
    spectra = [ev.step for ev in evs if ev.kind == "spectrum"]
    slices = [ev for ev in evs if ev.kind == "loss_slice"]
    assert [ev.step for ev in slices] == spectra
    for ev in slices:
        assert len(ev.losses) == 2 and ev.lr == 0.1
        assert ev.distances == pytest.approx([-0.1, -0.05, 0.0, 0.05, 0.1])
    with pytest.raises(MonitorError, match="slice_points"):
        Monitor(model, nn.CrossEntropyLoss(), probe=[make_data(8).tensors], slices=2,
                slice_points=4, runs_dir=tmp_path)


def test_hessian_bn_and_the_eval_mode_warning(tmp_path: Path) -> None:
    """The Monitor has the trainer's options: hessian_bn reaches the spectrum events, and a
    batch-norm model measured on running statistics at an η·λ₁ far above 2(1+β) gets the
    trainer's one warning (not with hessian_bn="batch", not without batch norm)."""
    x, y = make_data().tensors

    def warnings_of(run: str, **kw: Any) -> tuple[list[str], set[str]]:
        torch.manual_seed(0)
        with Monitor(kw.pop("model", make_model()), nn.CrossEntropyLoss(), probe=[(x, y)],
                     k=2, every=1, lr=1e3, run_dir=tmp_path / run, quiet=True, **kw) as mon:
            mon.step(loss=1.0)
            mon.step(loss=1.0)
        evs = events_of(tmp_path / run)
        return ([ev.message for ev in evs if ev.kind == "log"
                 and "hessian_bn=batch" in ev.message],
                {ev.batch_norm for ev in evs if ev.kind == "spectrum"})

    msgs, modes = warnings_of("running")
    assert len(msgs) == 1 and "far above 2(1+β)" in msgs[0] and modes == {"running"}
    msgs, modes = warnings_of("batch", hessian_bn="batch")
    assert msgs == [] and modes == {"batch"}
    msgs, _ = warnings_of("plain", model=make_model(bn_dropout=False))
    assert msgs == []
    with pytest.raises(MonitorError, match="hessian_bn"):
        Monitor(make_model(), nn.CrossEntropyLoss(), probe=[(x, y)], hessian_bn="train")
