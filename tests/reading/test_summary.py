"""Per-run statistics and series (sgdtop.stats) and the run summary kept beside the
events (sgdtop.summary), on synthetic recorded runs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runs_fixtures import (
    EPOCHS,
    NAN_SPECTRUM_STEP,
    SPECTRUM_EVERY,
    STEPS,
    STEPS_PER_EPOCH,
    K,
    eigenvalues,
    high_lr_run,
    low_lr_run,
    make_event,
    make_run,
    write_jsonl,
)

from sgdtop.schema import read_events
from sgdtop.stats import (
    STATUS_UNFINISHED,
    RunEvents,
    eigenvalue_matrix,
    field_value,
    last_dense_spectrum,
    series,
    summarize,
    time_average,
    top_mean_abs,
)
from sgdtop.summary import RunSummary, fold_events, load_summary, save_summary

SPECTRUM_STEPS = list(range(SPECTRUM_EVERY, STEPS + 1, SPECTRUM_EVERY))


def test_run_events_takes_the_id_from_run_start() -> None:
    run = high_lr_run()
    assert run.run_id == "resnet32-lr0.1"
    assert run.name == "resnet32-lr0.1"
    labelled = RunEvents.from_events(run.events, label="high η")
    assert labelled.name == "high η" and labelled.run_id == "resnet32-lr0.1"
    no_start = [ev for ev in run.events if ev.kind != "run_start"]
    assert RunEvents.from_events(no_start, path=Path("runs/abc/events.jsonl")).run_id == "abc"
    assert RunEvents.from_events(no_start, path=Path("runs/xyz")).run_id == "xyz"
    assert RunEvents.from_events([]).run_id == "run"


def test_summary_settings_status_and_totals() -> None:
    s = summarize(high_lr_run())
    assert s.settings() == {
        "model": "resnet32", "dataset": "cifar10", "lr": 0.1, "batch_size": 128,
        "momentum": 0.9, "weight_decay": 5e-4,
    }
    assert (s.num_params, s.k, s.status) == (464_154, K, "completed")
    assert s.steps == STEPS and s.epochs == EPOCHS
    assert s.seconds == pytest.approx(100.1)
    assert s.n_spectra == len(SPECTRUM_STEPS) and s.n_nonfinite_spectra == 0


def test_summary_numbers_match_their_definitions() -> None:
    s = summarize(high_lr_run())
    rhos = [abs(eigenvalues(0.1, st)[0]) for st in SPECTRUM_STEPS]
    tops = [np.mean(np.sort(np.abs(eigenvalues(0.1, st)))[::-1][:10]) for st in SPECTRUM_STEPS]
    assert s.final_spectral_norm == pytest.approx(rhos[-1])
    assert s.mean_spectral_norm == pytest.approx(np.mean(rhos))
    assert s.max_spectral_norm == pytest.approx(max(rhos))
    assert s.mean_top10_mean == pytest.approx(np.mean(tops))
    assert s.final_top10_mean == pytest.approx(tops[-1])
    last = eigenvalues(0.1, STEPS)
    assert s.final_cond_k == pytest.approx(abs(last[0]) / abs(last[-1]))
    assert s.final_eta_lambda1 == pytest.approx(0.1 * last[0])
    assert s.final_test_acc == pytest.approx(0.85)
    assert s.final_dead_pct == pytest.approx(18.0)
    assert s.final_dense_cond is not None and s.final_dense_cond > 1e5


def test_nonfinite_measurements_are_left_out_of_averages() -> None:
    s = summarize(low_lr_run())
    finite_steps = [st for st in SPECTRUM_STEPS if st != NAN_SPECTRUM_STEP]
    rhos = [abs(eigenvalues(0.01, st)[0]) for st in finite_steps]
    assert s.n_nonfinite_spectra == 1
    assert s.mean_spectral_norm == pytest.approx(np.mean(rhos))
    assert math.isfinite(s.mean_top10_mean or math.nan)
    assert s.final_dense_cond is None  # no dense spectrum: not measured, not NaN
    # The low-η run has the larger spectrum (the paper's Fig. 2 / 3 direction).
    high = summarize(high_lr_run())
    assert s.mean_top10_mean > high.mean_top10_mean  # type: ignore[operator]


def test_unfinished_and_empty_runs() -> None:
    events = make_run(0.1, run_id="cut", end_status=None)
    cut = [ev for ev in events if (ev.step or 0) <= 60]
    s = summarize(RunEvents.from_events(cut))
    assert s.status == STATUS_UNFINISHED
    assert s.steps == 60 and s.epochs == pytest.approx(60 / STEPS_PER_EPOCH)
    empty = summarize(RunEvents("nothing", []))
    assert empty.status == STATUS_UNFINISHED and empty.steps == 0 and empty.lr is None
    assert empty.final_spectral_norm is None and empty.mean_top10_mean is None
    assert empty.max_spectral_norm is None


def test_series_on_each_axis() -> None:
    events = high_lr_run().events
    x, y = series(events, "spectral_norm", "spectrum", axis="step")
    assert list(x) == SPECTRUM_STEPS and y.dtype == float
    xe, _ = series(events, "spectral_norm", axis="epoch")
    np.testing.assert_allclose(xe, np.array(SPECTRUM_STEPS) / STEPS_PER_EPOCH)
    xt, _ = series(events, "test_acc", axis="time")
    assert xt[0] == pytest.approx(STEPS_PER_EPOCH * 0.5)
    # Without run_start the epoch axis falls back to the events' integer epochs.
    no_start = [ev for ev in events if ev.kind != "run_start"]
    xi, _ = series(no_start, "dead_pct", axis="epoch")
    assert list(xi) == list(range(EPOCHS))


def test_series_keeps_nonfinite_values_and_derived_fields() -> None:
    events = low_lr_run().events
    _, y = series(events, "spectral_norm", axis="step")
    assert np.isnan(y[SPECTRUM_STEPS.index(NAN_SPECTRUM_STEP)])
    _, loss = series(events, "test_loss")
    assert np.isinf(loss).sum() == 1
    _, lam1 = series(events, "lambda_01")
    _, lam25 = series(events, "lambda_25")
    _, lam99 = series(events, "lambda_99")
    assert lam1[0] == pytest.approx(eigenvalues(0.01, SPECTRUM_EVERY)[0])
    assert lam25[0] < 0  # the sign is kept
    assert np.isnan(lam99).all()
    _, top = series(events, "top10_mean")
    assert np.isnan(top).sum() == 1


def test_series_rejects_ambiguous_or_unknown_fields() -> None:
    events = high_lr_run().events
    with pytest.raises(ValueError, match="several kinds"):
        series(events, "lr")
    with pytest.raises(ValueError, match="no event kind"):
        series(events, "nope")
    with pytest.raises(ValueError, match="unknown axis"):
        series(events, "loss", axis="batch")  # type: ignore[arg-type]
    x, y = series(events, "lr", "step")
    assert x.size == y.size > 0


def test_top_mean_abs_and_field_value() -> None:
    assert top_mean_abs([1.0, -12.0, 3.0]) == pytest.approx(16.0 / 3.0)
    assert top_mean_abs(list(range(20, 0, -1))) == pytest.approx(np.mean(range(11, 21)))
    assert math.isnan(top_mean_abs([]))
    assert math.isnan(top_mean_abs([1.0, math.inf]))
    # a number or NaN: a bool is not a number, nor a string kept from an unknown key
    ev = make_event("eval", 1.0, step=3, train_loss=1.0, train_acc=0.5, test_loss=2.0,
                    test_acc=0.5, note="x", count=3)
    assert field_value(ev, "test_loss") == 2.0 and field_value(ev, "count") == 3.0
    assert math.isnan(field_value(ev, "note")) and math.isnan(field_value(ev, "nothing"))
    spectrum = next(e for e in high_lr_run().events if e.kind == "spectrum")
    assert math.isnan(field_value(spectrum, "warm")) and math.isnan(field_value(spectrum, "t"))


def test_time_average_weightings() -> None:
    x = np.array([0.0, 1.0, 3.0, np.nan, 4.0])
    y = np.array([1.0, 1.0, 3.0, 9.0, np.inf])
    assert time_average(x, y) == pytest.approx(5.0 / 3.0)
    # trapezoid over [0, 3]: (1·1 + 2·(1+3)/2) / 3
    assert time_average(x, y, "steps") == pytest.approx(5.0 / 3.0)
    uneven_x, uneven_y = np.array([0.0, 1.0, 10.0]), np.array([0.0, 0.0, 1.0])
    assert time_average(uneven_x, uneven_y) == pytest.approx(1.0 / 3.0)
    assert time_average(uneven_x, uneven_y, "steps") == pytest.approx(0.45)
    assert math.isnan(time_average(np.array([1.0]), np.array([np.nan])))
    assert time_average(np.array([2.0, 2.0]), np.array([1.0, 3.0]), "steps") == 2.0
    with pytest.raises(ValueError, match="weighting"):
        time_average(x, y, "hours")  # type: ignore[arg-type]
    assert summarize(high_lr_run(), weighting="steps").mean_spectral_norm is not None


def test_eigenvalue_matrix_pads_short_measurements() -> None:
    events = high_lr_run().events[:]
    events.append(make_event(
        "spectrum", 1.0, step=999, eigenvalues=[5.0, 4.0], residuals=[0, 0],
        converged=[True, True], spectral_norm=5.0, cond_k=1.25, lr=0.1, momentum=0.9,
        eta_lambda1=0.5, stability_limit=38.0, hvps=3, seconds=0.1, warm=False,
    ))
    x, lam = eigenvalue_matrix(events, axis="step")
    assert lam.shape == (len(SPECTRUM_STEPS) + 1, K)
    assert x[-1] == 999 and list(lam[-1, :2]) == [5.0, 4.0] and np.isnan(lam[-1, 2:]).all()


def test_last_dense_spectrum() -> None:
    hist = last_dense_spectrum(high_lr_run().events)
    assert hist is not None
    assert hist.edges.size == hist.counts.size + 1 and hist.n == int(hist.counts.sum())
    assert hist.x == EPOCHS and hist.cond > 1e5
    assert last_dense_spectrum(low_lr_run().events) is None


def test_summary_survives_the_jsonl_codec(tmp_path: Path) -> None:
    run = low_lr_run()
    path = write_jsonl(run.events, tmp_path / "events.jsonl")
    read = read_events(path)
    assert not read.bad_lines
    again = RunEvents.from_events(read.records, path=path)
    a, b = summarize(run), summarize(again)
    for name in a.__dataclass_fields__:
        va, vb = getattr(a, name), getattr(b, name)
        if isinstance(va, float) and math.isnan(va):
            assert math.isnan(vb)
        else:
            assert va == vb, name


def test_the_run_summary_imports_no_numpy() -> None:
    code = ("import sys, sgdtop.summary, sgdtop.store, sgdtop.feed, sgdtop.logsink\n"
            "assert 'numpy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_library_modules_import_no_torch_nor_matplotlib() -> None:
    code = (
        "import sys, sgdtop.summary, sgdtop.stats, sgdtop.compare, sgdtop.plot, sgdtop.export\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'tensorboard', 'textual')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- summary.json: the run summary kept beside the events ------------------------------------
def _run_dir(tmp_path: Path, events: list[object] | None = None) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    write_jsonl(events if events is not None else high_lr_run().events,  # type: ignore[arg-type]
                d / "events.jsonl")
    return d


def _lines(d: Path) -> list[bytes]:
    return (d / "events.jsonl").read_bytes().splitlines(keepends=True)


def test_fold_reads_what_runs_and_show_print(tmp_path: Path) -> None:
    s = fold_events(_run_dir(tmp_path) / "events.jsonl")
    assert (s.model, s.dataset, s.lr, s.batch_size, s.k) == ("resnet32", "cifar10", 0.1, 128, K)
    assert s.status == "completed" and s.steps == STEPS
    assert s.n_spectra == len(SPECTRUM_STEPS) and s.last_step == STEPS
    assert s.last_eigenvalues == pytest.approx(eigenvalues(0.1, STEPS)[:10])
    assert s.last_k == K and s.test_acc is not None and s.skipped == 0


def test_summary_json_roundtrip_and_tail_fold(tmp_path: Path) -> None:
    d = _run_dir(tmp_path)
    lines = _lines(d)
    head = b"".join(lines[:-1])  # everything but run_end, as a trainer saves mid-run
    (d / "events.jsonl").write_bytes(head)
    part = fold_events(d / "events.jsonl")
    assert part.status is None
    save_summary(d, part, len(head), len(lines) - 1)
    assert RunSummary.from_json(part.to_json()) == part
    (d / "events.jsonl").write_bytes(head + lines[-1] + b"{garbage\n")
    s = load_summary(d)
    assert s.status == "completed" and s.n_spectra == part.n_spectra
    assert s.skipped == 1 and s.bad_lines[0][0] == len(lines) + 1  # numbered in the file
    assert s == fold_events(d / "events.jsonl")  # the same as reading it all


def test_summary_json_that_covers_lines_it_has_not_read_is_not_trusted(tmp_path: Path) -> None:
    d = _run_dir(tmp_path)
    truth = fold_events(d / "events.jsonl")
    size = (d / "events.jsonl").stat().st_size
    liar = RunSummary(model="not-this", status="failed")
    for offset, lines in ((size + 10, 5), (7, 1), (-1, 0)):  # beyond the end; mid-line
        save_summary(d, liar, offset, lines)
        assert load_summary(d) == truth, offset
    for text in ("", "{", "[1, 2]", '{"v": 2, "events_bytes": 0, "lines": 0}',
                 '{"v": 1, "events_bytes": "x", "lines": 0, "summary": {}}'):
        (d / "summary.json").write_text(text)
        assert load_summary(d) == truth, text


def test_summary_from_hostile_json_never_raises() -> None:
    for data in (None, [], "x", 1, {"steps": "many", "lr": [1], "last_eigenvalues": {"a": 1},
                                     "bad_lines": [[1]], "newer": "yes", "n_spectra": -3,
                                     "status": 7, "test_acc": True}):
        s = RunSummary.from_json(data)
        assert s.steps == 0 and s.lr is None and s.n_spectra == 0 and s.status is None
        assert s.test_acc is None and s.last_eigenvalues == [] and s.newer is None


def test_a_newer_schema_line_is_remembered_with_its_version(tmp_path: Path) -> None:
    d = _run_dir(tmp_path)
    lines = _lines(d)
    newer = lines[2].replace(b'"v": 1', b'"v": 7', 1)
    (d / "events.jsonl").write_bytes(b"".join([*lines[:2], newer, *lines[3:]]))
    s = fold_events(d / "events.jsonl")
    assert s.newer == (3, 7) and s.skipped == 0
    again = RunSummary.from_json(s.to_json())
    bad = again.newer_line()
    assert bad is not None and (bad.line_no, bad.version, bad.newer) == (3, 7, True)


def test_a_cut_last_line_is_not_counted_as_bad(tmp_path: Path) -> None:
    d = _run_dir(tmp_path)
    data = (d / "events.jsonl").read_bytes()
    (d / "events.jsonl").write_bytes(data[:-20])
    s = load_summary(d)
    assert s.skipped == 0 and s.status is None
