"""`sgdtop` end to end, as a user runs it: subprocesses, signals, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import ENV, SGDTOP, alive, only_run, sgdtop, wait_for

from sgdtop.schema import read_events
from sgdtop.store import live_pid

SmokeRun = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    runs = tmp_path_factory.mktemp("runs")
    proc = sgdtop("run", "--profile", "smoke", "--log", runs=runs)
    return only_run(runs), proc


def test_smoke_run_writes_every_event_kind(smoke_run: SmokeRun) -> None:
    run_dir, proc = smoke_run
    assert proc.returncode == 0, proc.stderr
    res = read_events(run_dir / "events.jsonl")
    assert not res.bad_lines and not res.truncated_tail
    kinds = {e.kind for e in res.records}
    assert {"run_start", "step", "eval", "spectrum", "dense_spectrum", "neurons",
            "run_end"} <= kinds
    spectra = [e for e in res.records if e.kind == "spectrum"]
    assert len(spectra) >= 3
    assert all(len(e.eigenvalues) == 30 for e in spectra)
    assert res.records[0].kind == "run_start" and res.records[-1].kind == "run_end"
    assert res.records[-1].status == "completed"
    assert json.loads((run_dir / "profile.json").read_text())["name"] == "smoke"
    assert live_pid(run_dir) is None
    # the headless log: a line per measurement with the paper's quantities
    assert "ρ(H)" in proc.stderr and "κ₃₀" in proc.stderr and "run completed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_runs_show_replay_on_a_saved_run(smoke_run: SmokeRun) -> None:
    run_dir, _ = smoke_run
    runs = run_dir.parent
    out = sgdtop("runs", runs=runs)
    assert out.returncode == 0 and run_dir.name in out.stdout and "completed" in out.stdout
    shown = sgdtop("show", "latest", runs=runs)
    assert shown.returncode == 0 and "top-10" in shown.stdout and "smoke" not in shown.stderr
    replay = sgdtop("replay", run_dir.name[:15], "--log", runs=runs)
    assert replay.returncode == 0 and "run completed" in replay.stderr
    js = sgdtop("replay", "latest", "--json", runs=runs)
    lines = js.stdout.splitlines()
    assert len(lines) == len(read_events(run_dir / "events.jsonl").records)
    assert json.loads(lines[0])["kind"] == "run_start"


def test_json_mode_streams_raw_events(tmp_path: Path) -> None:
    proc = sgdtop("run", "smoke", "--json", "--epochs", "1", runs=tmp_path)
    assert proc.returncode == 0, proc.stderr
    kinds = [json.loads(line)["kind"] for line in proc.stdout.splitlines()]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"


def _start_long(runs: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SGDTOP, "run", "--profile", "smoke", "--epochs", "1000", "--log", "--runs-dir",
         str(runs), *extra], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=ENV)


def _wait_running(runs: Path) -> tuple[Path, int]:
    wait_for(lambda: any(live_pid(d) for d in runs.glob("*/")))
    run_dir = only_run(runs)
    wait_for(lambda: '"kind": "spectrum"' in (run_dir / "events.jsonl").read_text())
    pid = live_pid(run_dir)
    assert pid is not None
    return run_dir, pid


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_trainer_cleanly(tmp_path: Path, sig: int) -> None:
    proc = _start_long(tmp_path)
    run_dir, trainer = _wait_running(tmp_path)
    proc.send_signal(sig)  # how fast it stops: benchmarks/bench_stop.py
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    end = read_events(run_dir / "events.jsonl").records[-1]
    assert end.kind == "run_end" and end.status == "interrupted"
    assert not alive(trainer), "orphan trainer"
    assert "Traceback" not in err


def test_sigkill_of_the_trainer_leaves_a_readable_run(tmp_path: Path) -> None:
    proc = _start_long(tmp_path)
    run_dir, trainer = _wait_running(tmp_path)
    os.kill(trainer, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "without run_end" in err
    res = read_events(run_dir / "events.jsonl")
    assert not res.bad_lines
    assert res.records and res.records[0].kind == "run_start"
    assert all(e.kind != "run_end" for e in res.records)
    info = sgdtop("runs", runs=tmp_path)
    assert "died" in info.stdout


def test_diverging_run(tmp_path: Path) -> None:
    proc = sgdtop("run", "smoke", "--lr", "1e6", "--log", runs=tmp_path)
    assert proc.returncode == 3, proc.stderr
    end = read_events(only_run(tmp_path) / "events.jsonl").records[-1]
    assert end.status == "diverged" and "step" in end.message
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["run", "nosuchmodel"], "unknown profile or model 'nosuchmodel'"),
        (["run", "smoke", "--lr", "0"], "lr must be a positive number"),
        (["run", "smoke", "--lr", "-1"], "lr must be a positive number"),
        (["run", "smoke", "--batch-size", "0"], "batch_size must be a positive integer"),
        (["run", "smoke", "--batch-size", "100000"], "larger than the training set"),
        (["run", "smoke", "--k", "100000"], "larger than the model's"),
        (["run", "smoke", "--set", "nope=1"], "unknown profile key 'nope'"),
        (["run", "smoke", "--set", "model=\"resnet7\""], "unknown model"),
        (["run", "resnet32", "--set", "download=false"], "CIFAR"),
        (["replay", "no-such-run"], "no run 'no-such-run'"),
        (["replay", "../../etc"], "not a run directory"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], match: str) -> None:
    proc = sgdtop(*args, "--data-dir", str(tmp_path / "nodata"), runs=tmp_path) \
        if "resnet32" in args else sgdtop(*args, runs=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert err[0].startswith("sgdtop: error:") and match.lower() in err[0].lower(), err[0]


def test_unwritable_runs_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = sgdtop("run", "smoke", runs=blocker / "runs")
    assert proc.returncode == 2
    assert proc.stderr.startswith("sgdtop: error: cannot write runs into")


def test_profiles_and_module_entry() -> None:
    proc = subprocess.run([*SGDTOP, "profiles"], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0
    assert "resnet32-cifar10" in proc.stdout and "smoke" in proc.stdout


def test_custom_factory_end_to_end(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "small_cnn.py"
    proc = sgdtop("run", f"{example}:factory", "--profile", "smoke", "--log", "--epochs", "1",
                  "--k", "5", "--set", "probe_cap=128", "--set", "first_epoch_every=0",
                  runs=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(tmp_path)
    assert "-smallcnn-" in run_dir.name
    events = read_events(run_dir / "events.jsonl").records
    spectra = [e for e in events if e.kind == "spectrum"]
    assert spectra and all(len(e.eigenvalues) == 5 for e in spectra)
    assert events[-1].status == "completed"


def test_custom_factory_bad_spec_is_one_line(tmp_path: Path) -> None:
    proc = sgdtop("run", str(tmp_path / "missing.py") + ":factory", "--log", runs=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgdtop: error:") and "missing.py" in lines[0]


def test_compare_plot_export_on_saved_runs(smoke_run: SmokeRun, tmp_path: Path) -> None:
    run_dir, _ = smoke_run
    runs = run_dir.parent
    other = sgdtop("run", "smoke", "--lr", "0.01", "--log", runs=runs)
    assert other.returncode == 0, other.stderr
    cmp = sgdtop("compare", run_dir.name, "latest", "--log", runs=runs)
    assert cmp.returncode == 0, cmp.stderr
    assert "0.05" in cmp.stdout and "0.01" in cmp.stdout and "ρ(H)" in cmp.stdout
    png = tmp_path / "fig2.png"
    out = sgdtop("plot", run_dir.name, "latest", "-o", str(png), "--kind", "eigenvalues",
                 runs=runs)
    assert out.returncode == 0, out.stderr
    assert png.stat().st_size > 10_000
    bad = sgdtop("plot", "latest", "-o", str(tmp_path / "x.gif"), runs=runs)
    assert bad.returncode == 2 and bad.stderr.startswith("sgdtop: error:")
    exp = sgdtop("export", "latest", "--csv", str(tmp_path / "csv"), "--tensorboard",
                 str(tmp_path / "tb"), runs=runs)
    assert exp.returncode == 0, exp.stderr
    import csv

    with open(tmp_path / "csv" / "spectrum_eigenvalues.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"step", "rank", "eigenvalue"} <= set(rows[0])
    assert any((tmp_path / "tb").iterdir())


def test_replay_reports_bad_lines_and_reads_the_rest(smoke_run: SmokeRun, tmp_path: Path) -> None:
    run_dir, _ = smoke_run
    broken = tmp_path / "runs" / "broken"
    broken.mkdir(parents=True)
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    (broken / "events.jsonl").write_text(
        "".join(lines[:3]) + "{not json\n" + "".join(lines[3:-1]) + lines[-1][:25])
    proc = sgdtop("replay", str(broken), "--log", runs=tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr
    assert "broken/events.jsonl: skipped 1 unreadable line (4): not JSON" in proc.stderr
    assert "ρ(H)" in proc.stderr and "without run_end" in proc.stderr


# --- issue 12: faults and hostile input (reader side) ------------------------------------------
def test_exit_code_follows_run_end_even_when_the_trainer_was_signalled() -> None:
    # 12.4: a trainer that wrote run_end `interrupted` is an interrupted run, whatever its
    # own exit status (e.g. -9 had it been killed while exiting)
    from sgdtop.cli import EXIT_CLOSED_STDOUT, _run_exit_code
    from sgdtop.feed import EndKind, EndReason

    class _End:  # the only field _run_exit_code reads from the record
        status = "interrupted"

    interrupted = EndReason(EndKind.RUN_END, code=-9, run_end=_End())  # type: ignore[arg-type]
    assert _run_exit_code(interrupted, stopped_by_user=True) == 130
    killed = EndReason(EndKind.EXITED, code=-9)
    assert _run_exit_code(killed, stopped_by_user=True) == 130
    assert _run_exit_code(killed, stopped_by_user=False) == 1
    closed = EndReason(EndKind.CLOSED_STDOUT, code=0)
    assert _run_exit_code(closed, stopped_by_user=False) == EXIT_CLOSED_STDOUT == 141


def test_two_quick_ctrl_c_leave_an_interrupted_run_and_exit_130(tmp_path: Path) -> None:
    # 12.4: the second Ctrl+C arrives once run_end is written, while the trainer exits
    proc = _start_long(tmp_path)
    run_dir, trainer = _wait_running(tmp_path)
    events = run_dir / "events.jsonl"
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: '"kind": "run_end"' in events.read_text(), timeout=60)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert read_events(events).records[-1].status == "interrupted"
    assert not alive(trainer)


def test_closed_stdout_stops_the_run_quietly(tmp_path: Path) -> None:
    # 12.5: `sgdtop run smoke --json | head -3`
    proc = subprocess.Popen(
        [*SGDTOP, "run", "smoke", "--epochs", "1000", "--json", "--runs-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]
    assert json.loads(head[0])["kind"] == "run_start"
    proc.stdout.close()
    proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Exception" not in err and "error" not in err
    run_dir = only_run(tmp_path)
    wait_for(lambda: live_pid(run_dir) is None, timeout=30)
    end = read_events(run_dir / "events.jsonl").records[-1]
    assert end.kind == "run_end" and end.status == "interrupted"
    assert "the viewer's output was closed" in end.message  # why the run ended


def test_the_working_directory_is_not_on_the_trainers_path(tmp_path: Path) -> None:
    # 12.7: a json.py in the working directory is not imported by the trainer, while a
    # custom model file given by a relative path still loads
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    marker = tmp_path / "planted-module-ran"
    (cwd / "json.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise SystemExit('planted json.py imported')\n")
    example = Path(__file__).resolve().parents[2] / "examples" / "small_cnn.py"
    (cwd / "small_cnn.py").write_text(example.read_text())
    # the parent itself is started with -P: only the trainer it spawns is under test
    proc = subprocess.run(
        [SGDTOP[0], "-P", *SGDTOP[1:], "run", "small_cnn.py:factory", "--profile", "smoke",
         "--log", "--epochs", "1", "--k", "5", "--set", "probe_cap=128", "--set",
         "first_epoch_every=0", "--runs-dir", str(tmp_path / "runs")],
        cwd=cwd, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
        env=ENV)
    assert not marker.exists(), proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "-smallcnn-" in only_run(tmp_path / "runs").name


def _copy_run(src: Path, dst: Path, transform: Callable[[list[str]], list[str]]) -> Path:
    dst.mkdir(parents=True)
    (dst / "profile.json").write_text((src / "profile.json").read_text())
    lines = (src / "events.jsonl").read_text().splitlines(keepends=True)
    (dst / "events.jsonl").write_text("".join(transform(lines)))
    return dst


def test_garbage_lines_are_named_by_every_reader(smoke_run: SmokeRun, tmp_path: Path) -> None:
    # 12.9: runs, show, watch and replay say how many lines were skipped and where
    run_dir, _ = smoke_run
    runs = tmp_path / "runs"
    _copy_run(run_dir, runs / "garbled",
              lambda ls: [ls[0], "{not json\n", *ls[1:3], "[1, 2]\n", *ls[3:]])
    expected = "garbled/events.jsonl: skipped 2 unreadable lines (2, 5): not JSON"
    for args in (["runs"], ["show", "garbled"], ["watch", "garbled", "--log"],
                 ["replay", "garbled", "--log"]):
        proc = sgdtop(*args, runs=runs, timeout=60)
        assert proc.returncode == 0, (args, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_a_newer_schema_run_is_one_clear_line(smoke_run: SmokeRun, tmp_path: Path) -> None:
    # issue 11: a newer-schema line names the file and line; `runs` lists the run as
    # unreadable and the other runs still
    run_dir, _ = smoke_run
    runs = tmp_path / "runs"

    def newer(lines: list[str]) -> list[str]:
        obj = json.loads(lines[2])
        obj["v"] = 99
        return [*lines[:2], json.dumps(obj) + "\n", *lines[3:]]

    _copy_run(run_dir, runs / "20990101-000000-future", newer)
    _copy_run(run_dir, runs / "20200101-000000-fine", lambda ls: ls)
    listed = sgdtop("runs", runs=runs)
    assert listed.returncode == 0, listed.stderr
    assert "unreadable" in listed.stdout and "completed" in listed.stdout
    assert "future/events.jsonl line 3: written by a newer sgdtop (event schema 99;" \
        in listed.stderr and "Traceback" not in listed.stderr
    for args in (["show", "20990101"], ["replay", "20990101", "--log"],
                 ["watch", "20990101", "--log"]):
        proc = sgdtop(*args, runs=runs, timeout=60)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        errors = [line for line in err if "error" in line]
        assert len(errors) == 1 and errors[0] == err[-1], (args, err)
        assert err[-1].startswith("sgdtop: error:"), (args, err)
        assert "future/events.jsonl line 3: written by a newer sgdtop (event schema 99;" \
            in err[-1], (args, err)
        assert "Traceback" not in proc.stderr
        if args[0] == "show":  # watch and replay show the lines before it, as they come
            assert len(err) == 1, (args, err)


def test_hostile_profile_json_and_huge_log_lines(smoke_run: SmokeRun, tmp_path: Path) -> None:
    # issue 11: a profile.json that is a JSON list; 12.9: a 10 MB log message is cut in
    # the headless view
    run_dir, _ = smoke_run
    runs = tmp_path / "runs"

    def huge_log(lines: list[str]) -> list[str]:
        log = {"v": 1, "kind": "log", "t": 0.5, "level": "warning", "source": "stderr",
               "message": "x" * 10_000_000}
        return [lines[0], json.dumps(log) + "\n", *lines[1:]]

    d = _copy_run(run_dir, runs / "hostile", huge_log)
    (d / "profile.json").write_text("[1, 2, 3]")
    listed = sgdtop("runs", runs=runs)
    assert listed.returncode == 0 and "hostile" in listed.stdout, listed.stderr
    shown = sgdtop("show", "hostile", runs=runs)
    assert shown.returncode == 0 and "top-10" in shown.stdout, shown.stderr
    replay = sgdtop("replay", "hostile", "--log", runs=runs)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert len(replay.stderr) < 100_000 and "more characters" in replay.stderr
