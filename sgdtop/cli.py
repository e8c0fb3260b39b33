"""The command line: ``sgdtop run | replay | watch | stop | runs | show | profiles``.

Every bad input ends with one line ``sgdtop: error: ...`` on stderr and exit code 2.
Exit codes of ``run``: 0 completed, 130 interrupted, 3 diverged, 1 failed, 2 bad input,
141 standard output closed (``--json | head``; see :data:`EXIT_CLOSED_STDOUT`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer

from sgdtop import profile as profile_mod
from sgdtop.feed import EndKind, EndReason, EventFeed, ReplayFeed, drain, skipped_lines_warning
from sgdtop.schema import BadLine, Record, RunEnd, RunStart, newer_schema_message
from sgdtop.store import (
    EVENTS_FILE,
    RunFollower,
    RunNotFoundError,
    check_writable,
    list_run_dirs,
    live_pid,
    process_alive,
    read_run,
    resolve_run,
    run_info,
    runs_root,
)
from sgdtop.summary import RunSummary

if TYPE_CHECKING:
    from sgdtop.launch import TrainerProcess
    from sgdtop.stats import Axis

app = typer.Typer(
    name="sgdtop",
    help="top for the curvature of the loss: the Hessian spectrum, κ and dead neurons, "
         "live while SGD trains.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Exit code of ``run`` by its run_end status.
RUN_EXIT: dict[str, int] = {"completed": 0, "interrupted": 130, "diverged": 3, "failed": 1}
#: Exit code when our standard output was closed (``sgdtop run --json | head -3``): the
#: trainer is stopped cleanly and we exit quietly with 128 + SIGPIPE, the status every
#: Unix tool ended by a closed pipe reports — so ``set -o pipefail`` scripts see what they
#: see for ``yes | head``, and the run (stopped early, not completed) is not reported as 0.
EXIT_CLOSED_STDOUT: int = 128 + signal.SIGPIPE

RunsDirOpt = Annotated[Path | None, typer.Option(
    "--runs-dir", help="Where runs are saved (default: $SGDTOP_RUNS_DIR or ./runs).")]
LogOpt = Annotated[bool, typer.Option(
    "--log", help="Headless: readable lines on stderr instead of the TUI.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Write the raw events (JSON Lines) to stdout, for jq.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line and exit with ``code``."""
    sys.stderr.write(f"sgdtop: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def use_tui(log: bool, json_out: bool) -> bool:
    """The TUI opens only when stdin and stdout are terminals and no headless flag is set."""
    return not log and not json_out and sys.stdin.isatty() and sys.stdout.isatty()


def _root(runs_dir: Path | None) -> Path:
    return runs_root(runs_dir)


def _resolve(ref: str, runs_dir: Path | None) -> Path:
    try:
        return resolve_run(ref, _root(runs_dir))
    except RunNotFoundError as exc:
        fail(str(exc))


def warn(message: str) -> None:
    """One ``sgdtop: warning: ...`` line on stderr."""
    sys.stderr.write(f"sgdtop: warning: {message}\n")
    sys.stderr.flush()


def _warn_skipped(source: str, bad_lines: list[BadLine], total: int | None = None) -> None:
    """The one wording for skipped lines (how many, and where), if any were."""
    text = skipped_lines_warning(source, bad_lines, total=total)
    if text is not None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _read(run_dir: Path) -> list[Record]:
    """Every record of a saved run; skipped lines are one warning, a newer-schema line
    one error naming the file and line."""
    result = read_run(run_dir)
    path = run_dir / EVENTS_FILE
    newer = next((bad for bad in result.bad_lines if bad.newer), None)
    if newer is not None:
        fail(newer_schema_message(path, newer))
    _warn_skipped(str(path), result.bad_lines)
    return result.records


def _quiet_stdout() -> None:
    """Our stdout was closed: send what is left of it to /dev/null, so the interpreter's
    final flush raises no second BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _headless(feed: EventFeed, json_out: bool, *,
              hold: Callable[[Record], bool] | None = None,
              on_closed_stdout: Callable[[], object] | None = None) -> EndReason:
    """Drain ``feed`` into the headless sinks (``--json`` lines on stdout, the log on
    stderr) with the one drain loop; report how it ended and the skipped lines.
    ``hold(record)`` True keeps a record from the sinks (live: a refusal before
    run_start). A newer-schema line is one error line (exit 2)."""
    from sgdtop.logsink import LogSink, write_json

    sink = LogSink()

    def handle(rec: Record) -> None:
        if hold is not None and hold(rec):
            return
        if json_out:
            write_json(rec)
        sink.handle(rec)

    end = drain(feed, handle, on_closed_stdout=on_closed_stdout)
    if end.kind is EndKind.CLOSED_STDOUT:
        _quiet_stdout()
        return end
    sink.handle_end(end)
    _warn_skipped(feed.source, feed.bad_lines)
    if end.kind is EndKind.NEWER_SCHEMA:
        fail(end.describe())
    return end


# --------------------------------------------------------------------------------------- run
@app.command()
def run(
    target: Annotated[str | None, typer.Argument(
        help="A model (mlp, resnet20/32/44/56, vgg11) or a profile name; default: the "
             "teacher-student MLP (no download).")] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", "-p", help="Profile name (see `sgdtop profiles`) or a .toml file.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate η.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", "-b", help="Batch size S.")] = None,
    momentum: Annotated[float | None, typer.Option(help="Momentum β.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="L2 coefficient.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs to train.")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Top-k eigenvalues.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="CIFAR directory (torchvision layout; downloaded there when missing).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any profile field: key=value (repeatable).")] = None,
    runs_dir: RunsDirOpt = None,
    log: LogOpt = False,
    json_out: JsonOpt = False,
    detach: Annotated[bool, typer.Option(
        "--detach", help="Start the trainer in the background and return; "
                         "follow it with `sgdtop watch`.")] = False,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", hidden=True, help="The run's id (a new directory name; chosen by "
                                      "`sgdtop sweep` for its cells).")] = None,
) -> None:
    """Train with SGD and show the Hessian spectrum live (TUI on a terminal, else --log)."""
    if run_id is not None and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id)
                               or ".." in run_id):
        fail(f"--run-id {run_id!r} is not a run id (letters, digits, '.', '_', '-')")
    overrides: dict[str, Any] = {}
    flags = {"lr": lr, "batch_size": batch_size, "momentum": momentum,
             "weight_decay": weight_decay, "epochs": epochs, "k": k, "device": device,
             "seed": seed, "data_dir": str(data_dir) if data_dir is not None else None}
    overrides.update({key: v for key, v in flags.items() if v is not None})
    try:
        overrides.update(profile_mod.parse_set(set_ or []))
        prof = profile_mod.load(profile, model=target, overrides=overrides)
    except profile_mod.ProfileError as exc:
        fail(str(exc))
    root = _root(runs_dir)
    try:
        check_writable(root)
    except OSError as exc:
        fail(f"cannot write runs into {root}: {exc.strerror or exc}")
    if run_id is not None and os.path.lexists(root / run_id):
        fail(f"run {run_id} already exists in {root}")

    from sgdtop import launch

    if detach:
        try:
            run_id, pid = launch.start_detached(prof, root)
        except RuntimeError as exc:
            fail(str(exc).removeprefix("sgdtop: error: "))
        print(f"started run {run_id} (trainer pid {pid}) in {root / run_id}")
        print(f"follow it:  sgdtop watch {run_id}" + (f" --runs-dir {root}" if runs_dir else ""))
        print(f"stop it:    sgdtop stop {run_id}" + (f" --runs-dir {root}" if runs_dir else ""))
        return

    # Signals are taken over before the trainer exists: a Ctrl+C or SIGTERM at any moment
    # then stops the trainer cleanly instead of killing this process and leaving the
    # trainer (in its own session) running. A second one kills the trainer — unless it
    # already sent run_end and is exiting by itself.
    stopper = _Stopper()
    old = (signal.SIGINT, signal.SIGTERM)
    for s in old:
        signal.signal(s, stopper.on_signal)
    tui = use_tui(log, json_out)
    try:
        feed = launch.TrainerProcess(prof, root, run_id=run_id,
                                     echo=None if tui else sys.stderr)
        stopper.attach(feed)
        if tui:
            from sgdtop.tui.run import run_live

            try:
                run_live(feed, quit_when_ended=lambda: stopper.terminated)
            finally:
                feed.close()
                for line in feed.early_output:  # the TUI owned the terminal meanwhile
                    sys.stderr.write(line + "\n")
            feed.wait_drained()
            end = feed.end or EndReason(EndKind.EXITED, code=feed.returncode)
        else:
            end = _headless_live(feed, json_out)
    finally:
        # The run has ended (or this process is failing): a Ctrl+C or SIGTERM arriving now
        # (a second, quick Ctrl+C) must not turn the run's exit code into a signal death.
        for s in old:
            signal.signal(s, signal.SIG_IGN)
    raise typer.Exit(_run_exit_code(end, stopped_by_user=stopper.count > 0))


def _run_exit_code(end: EndReason, *, stopped_by_user: bool) -> int:
    """``run``'s exit code: by the run_end status (130 whenever it ended interrupted); a
    closed stdout :data:`EXIT_CLOSED_STDOUT`; a trainer that ended without run_end 130
    if the user stopped it, else its exit code (1 when it was killed by a signal)."""
    if end.kind is EndKind.CLOSED_STDOUT:
        return EXIT_CLOSED_STDOUT
    if end.status is not None:
        return RUN_EXIT.get(end.status, 1)
    if stopped_by_user:
        return RUN_EXIT["interrupted"]
    return end.code if end.code is not None and end.code > 0 else 1


class _Stopper:
    """SIGINT/SIGTERM handler for a live run: the first signal asks the trainer to stop
    (it finishes the step and writes run_end), a second kills it unless its run_end has
    already arrived. A signal that comes before the trainer is spawned is held and
    delivered on :meth:`attach`."""

    def __init__(self) -> None:
        self.count = 0
        self.feed: TrainerProcess | None = None
        self.terminated = False  # a SIGTERM came: the live view quits once the run ends

    def attach(self, feed: TrainerProcess) -> None:
        self.feed = feed
        if self.count:
            feed.stop()
        if self.count > 1:
            feed.kill()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if signum == signal.SIGTERM:
            self.terminated = True
        if self.count == 1:
            sys.stderr.write("sgdtop: stopping the trainer (again to kill it)...\n")
        if self.feed is not None:
            if self.count == 1:
                self.feed.stop()
            else:
                self.feed.kill()


def _headless_live(feed: TrainerProcess, json_out: bool) -> EndReason:
    """Drain a live trainer into the headless sinks (signals: see :class:`_Stopper`). A
    run_end before run_start (the input was refused before training) is one error line
    with the trainer's exit code."""
    started = False
    refused: RunEnd | None = None

    def hold(rec: Record) -> bool:
        nonlocal started, refused
        if isinstance(rec, RunStart):
            started = True
        if isinstance(rec, RunEnd) and not started:
            refused = rec
            return True
        return False

    end = _headless(feed, json_out, hold=hold,
                    on_closed_stdout=lambda: feed.stop(signal.SIGHUP))
    if refused is not None and end.kind is not EndKind.CLOSED_STDOUT:
        code = feed.returncode
        fail(refused.message, code=code if code and code > 0 else 1)
    return end


# ------------------------------------------------------------------------------ replay/watch
@app.command()
def replay(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, path or latest.")],
    speed: Annotated[float | None, typer.Option(
        help="Playback speed (× real time). TUI default 1; headless default instant.")] = None,
    instant: Annotated[bool, typer.Option("--instant", help="No waiting: all at once.")] = False,
    runs_dir: RunsDirOpt = None,
    log: LogOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Replay a saved run in the TUI (or headless with --log)."""
    if speed is not None and not (speed > 0 and math.isfinite(speed)):
        fail(f"--speed must be a positive number, got {speed}")
    run_dir = _resolve(run_ref, runs_dir)
    if use_tui(log, json_out):  # the TUI seeks: it holds the whole run
        from sgdtop.tui.run import run_replay

        run_replay(_read(run_dir), run_dir=run_dir, speed=speed or 1.0, instant=instant)
        return
    feed = ReplayFeed.from_file(run_dir / EVENTS_FILE, run_dir=run_dir,
                                speed=None if instant else speed)
    _stop_on_signals(feed)
    end = _headless(feed, json_out)
    if end.kind is EndKind.CLOSED_STDOUT:
        raise typer.Exit(EXIT_CLOSED_STDOUT)


def _stop_on_signals(feed: EventFeed) -> None:
    """SIGINT/SIGTERM end a watch or replay feed (the stream then ends STOPPED)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        feed.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


@app.command()
def watch(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, path or latest.")],
    runs_dir: RunsDirOpt = None,
    log: LogOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Follow a run that is still being written (e.g. started with --detach)."""
    run_dir = _resolve(run_ref, runs_dir)
    feed = RunFollower(run_dir)
    if use_tui(log, json_out):
        from sgdtop.tui.run import run_watch

        run_watch(feed)
        _warn_skipped(feed.source, feed.bad_lines)
        if feed.end is not None and feed.end.kind is EndKind.NEWER_SCHEMA:
            fail(feed.end.describe())
        return
    _stop_on_signals(feed)
    end = _headless(feed, json_out)
    if end.kind is EndKind.CLOSED_STDOUT:
        raise typer.Exit(EXIT_CLOSED_STDOUT)


@app.command()
def stop(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, path or latest.")],
    runs_dir: RunsDirOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for run_end.")] = 30.0,
) -> None:
    """Stop a running (e.g. detached) trainer cleanly: it writes run_end `interrupted`."""
    import time

    run_dir = _resolve(run_ref, runs_dir)
    pid = live_pid(run_dir)  # a pid that holds the run's trainer lock: never a stranger
    if pid is None:
        fail(f"run {run_dir.name} has no running trainer")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and live_pid(run_dir) is not None:
        time.sleep(0.1)
    if live_pid(run_dir) is not None:
        fail(f"the trainer (pid {pid}) is still running after {wait:g} s", code=1)
    # it let go of the run; give its process a moment to be gone too (never signalled)
    exit_by = time.monotonic() + 5.0
    while time.monotonic() < exit_by and process_alive(pid):
        time.sleep(0.05)
    print(f"stopped run {run_dir.name}")


# ------------------------------------------------------------------------------ runs/show
@app.command("runs")
def runs_cmd(runs_dir: RunsDirOpt = None) -> None:
    """List saved runs."""
    from rich.console import Console
    from rich.table import Table

    from sgdtop import sweep as sweep_mod
    from sgdtop.compare import format_value
    from sgdtop.format import UNKNOWN, number, percent

    root = _root(runs_dir)
    dirs = list_run_dirs(root)
    console = Console(no_color=bool(os.environ.get("NO_COLOR")), width=max(160, 80))

    def axes_text(axes: dict[str, list[Any]]) -> str:
        """``η 0.0001…0.1 ×11  S 32…1024 ×6``; an axis of one value: ``β=0.9``."""
        parts = []
        for key, values in axes.items():
            sym = sweep_mod.AXIS_SYMBOLS.get(key, key)
            parts.append(f"{sym}={format_value(values[0])}" if len(values) == 1 else
                         f"{sym} {format_value(min(values))}…{format_value(max(values))} "
                         f"×{len(values)}")
        return "  ".join(parts)

    def print_sweeps() -> None:
        """After the runs: the sweeps under <root>/sweeps (id, profile, axes, cells
        finished/total), only when there are any; an unreadable one is a warning line."""
        paths = sweep_mod.list_sweeps(root)
        if not paths:
            return
        table = Table(box=None, header_style="bold", title_justify="left",
                      title=f"sweeps in {sweep_mod.sweeps_root(root)}")
        for col in ("sweep", "profile", "axes", "cells"):
            table.add_column(col, justify="right" if col == "cells" else "left")
        for path in paths:
            try:
                sw = sweep_mod.load_sweep(path)
            except sweep_mod.SweepError as exc:
                sys.stderr.write(f"sgdtop: warning: {exc}\n")
                continue
            done = sum(sw.cell_status(c) in sweep_mod.FINISHED for c in sw.cells)
            table.add_row(sw.sweep_id, sw.profile_name, axes_text(sw.axes),
                          f"{done}/{len(sw.cells)} finished")
        console.print()
        console.print(table)

    if not dirs:
        print(f"no runs in {root}")
        print_sweeps()
        return
    table = Table(box=None, header_style="bold")
    for col in ("id", "model", "data", "η", "S", "β", "status", "steps", "ρ(H)", "test acc"):
        table.add_column(col, justify="right" if col in ("η", "S", "β", "steps", "ρ(H)",
                                                          "test acc") else "left")
    for d in dirs:
        info = run_info(d)
        _warn_summary(d, info.summary)
        acc = info.test_acc
        table.add_row(info.run_id, info.model, info.dataset, number(info.lr, 3),
                      str(info.batch_size or UNKNOWN), number(info.momentum, 2), info.status,
                      f"{info.steps:,}", number(info.spectral_norm),
                      UNKNOWN if acc is None or not math.isfinite(acc) else percent(100 * acc))
    console.print(table)
    print_sweeps()


@app.command()
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, path or latest.")],
    runs_dir: RunsDirOpt = None,
) -> None:
    """Summarise one run: settings, status, last measurement."""
    from sgdtop.format import duration, kappa_label, number, percent

    run_dir = _resolve(run_ref, runs_dir)
    info = run_info(run_dir)
    s = info.summary
    newer = s.newer_line()
    if newer is not None:
        fail(newer_schema_message(run_dir / EVENTS_FILE, newer))
    _warn_summary(run_dir, s)
    lines = [f"run      {info.run_id}", f"path     {run_dir}"]
    if s.model is not None:
        lines.append(f"model    {s.model} ({s.num_params or 0:,} params) on "
                     f"{s.dataset}, device {s.device}")
        lines.append(f"SGD      η={number(s.lr)} S={s.batch_size} "
                     f"β={number(s.momentum)} L2={number(s.weight_decay)} "
                     f"epochs={s.epochs}")
        lines.append(f"probe    {s.probe_size or 0:,} examples, top-{s.k}")
    ended = s.status is not None
    lines.append(f"status   {info.status}" + (f": {s.end_message}" if ended else ""))
    if ended:
        lines.append(f"time     {duration(s.end_seconds or 0.0)}, {s.end_steps or 0:,} steps")
    lines.append(f"spectra  {s.n_spectra} measurements")
    if s.n_spectra:
        eig = " ".join(number(v, 4) for v in s.last_eigenvalues[:10])
        limit = 2 * (1 + s.last_momentum) if s.last_momentum is not None else None
        lines.append(f"last     step {s.last_step}: ρ(H) {number(s.last_spectral_norm)}, "
                     f"{kappa_label(s.last_k)} {number(s.last_cond_k)}, "
                     f"η·λ₁ {number(s.last_eta_lambda1, 3)} (limit {number(limit, 3)})")
        lines.append(f"top-10   {eig}")
    if info.test_acc is not None:
        lines.append(f"test acc {percent(100 * info.test_acc)}")
    print("\n".join(lines))


def _warn_summary(run_dir: Path, summary: RunSummary) -> None:
    """What a run's summary says about unreadable lines: the skipped ones (how many, and
    where), and a line written by a newer schema."""
    path = run_dir / EVENTS_FILE
    _warn_skipped(str(path), summary.skipped_lines(), total=summary.skipped)
    newer = summary.newer_line()
    if newer is not None:
        warn(newer_schema_message(path, newer))


# --------------------------------------------------------------------- compare/plot/export
def _runs_events(refs: list[str], runs_dir: Path | None) -> list[Any]:
    from sgdtop.stats import RunEvents

    out = []
    for ref in refs:
        run_dir = _resolve(ref, runs_dir)
        out.append(RunEvents.from_events(_read(run_dir), path=run_dir))
    return out


AxisOpt = Annotated[str, typer.Option(help="Common x axis: epoch, step or time.")]


def _check_axis(axis: str) -> Axis:
    if axis not in ("epoch", "step", "time"):
        fail(f"--axis must be one of epoch, step, time; got {axis!r}")
    return cast("Axis", axis)


@app.command()
def compare(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Two or more runs.")],
    axis: AxisOpt = "epoch",
    rows: Annotated[int, typer.Option(help="Rows of each aligned series shown.")] = 12,
    runs_dir: RunsDirOpt = None,
    log: LogOpt = False,
) -> None:
    """Runs side by side: settings, time-averaged ρ(H) and top-10 mean, κ, losses, dead %."""
    axis_ = _check_axis(axis)
    from sgdtop.compare import build_report, render_text

    report = build_report(_runs_events(run_refs, runs_dir), axis=axis_)
    if not use_tui(log, False):
        print(render_text(report, max_rows=rows))
        return
    from sgdtop.tui.compare import run_compare

    run_compare(report)


# --------------------------------------------------------------------------------- sweep
@app.command()
def sweep(
    profile: Annotated[str, typer.Argument(
        metavar="PROFILE", help="Profile name (see `sgdtop profiles`) or a .toml file.")],
    lr: Annotated[str | None, typer.Option(
        "--lr", help="η values: LO:HI:N (N log-spaced, ends included) or A,B,C.")] = None,
    batch_size: Annotated[str | None, typer.Option(
        "--batch-size", "-b", help="S values: LO:HI:N (rounded) or A,B,C.")] = None,
    momentum: Annotated[str | None, typer.Option(
        "--momentum", help="β values: A,B,C (or LO:HI:N).")] = None,
    seeds: Annotated[int | None, typer.Option(
        "--seeds", help="Train each setting with seeds 0..N-1.")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Cells trained at once (processes; with several GPUs, "
                             "one GPU per slot, round-robin).")] = 1,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a profile field in every cell: key=value (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Sweep id (default: PROFILE-<hash of the settings>, so the same "
                       "command again resumes the same sweep).")] = None,
    runs_dir: RunsDirOpt = None,
    log: LogOpt = False,
) -> None:
    """Train a grid over η, S, β and seeds, each cell a saved run (resumable: finished
    cells are not run again), then print the paper's Fig. 3 summary. Exit codes: 0 every
    cell finished, 130 interrupted (run the same command again to resume), 1 a cell
    failed, 2 bad input."""
    from sgdtop import sweep as sweep_mod

    try:
        axes: dict[str, list[Any]] = {}
        for key, spec in (("lr", lr), ("batch_size", batch_size), ("momentum", momentum)):
            if spec is not None:
                axes[key] = sweep_mod.parse_axis(spec, key)
        if seeds is not None:
            axes["seed"] = sweep_mod.seeds_axis(seeds)
        if jobs < 1:
            raise sweep_mod.SweepError(f"--jobs must be a positive integer, got {jobs}")
        sw = sweep_mod.create_sweep(profile, axes, set_items=set_ or [], runs_dir=runs_dir,
                                    sweep_id=name)
    except sweep_mod.SweepError as exc:
        fail(str(exc))
    sys.stderr.write(f"sgdtop sweep {sw.sweep_id}: {len(sw.cells)} cells, {jobs} at a time, "
                     f"in {sw.path}\n")
    try:
        if use_tui(log, False):  # the live view; q / Ctrl+C stop the sweep as here
            from sgdtop.tui.sweep.app import run_sweep_live

            result = run_sweep_live(sw, jobs=jobs)
        else:
            result = sweep_mod.run_sweep(sw, jobs=jobs, on_update=sweep_mod.SweepLogPrinter())
    except sweep_mod.SweepError as exc:
        fail(str(exc))
    summary = sweep_mod.summarize_sweep(sw)
    if log or not sys.stdout.isatty():
        print(sweep_mod.render_sweep_text(summary))
    else:
        from rich.console import Console

        Console().print(*sweep_mod.sweep_tables(summary))
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    sys.stderr.write(f"sgdtop sweep {sw.sweep_id}: {counts}\n")
    if result.interrupted:
        sys.stderr.write("sgdtop: sweep interrupted; run the same command again to resume\n")
    rd = f" --runs-dir {runs_dir}" if runs_dir else ""
    sys.stderr.write(f"plot it:    sgdtop plot {sw.sweep_id}{rd} --out fig3.png\n"
                     f"its runs:   sgdtop runs --runs-dir {sw.runs_dir}\n")
    raise typer.Exit(result.exit_code)


def _sweep_dir(ref: str, runs_dir: Path | None) -> Path | None:
    """The sweep directory ``ref`` names (a path holding sweep.json, or a sweep id or id
    prefix under <runs>/sweeps; never `latest`, which means the latest run), else None."""
    from sgdtop import sweep as sweep_mod

    if ref == "latest":
        return None
    try:
        return sweep_mod.resolve_sweep(ref, _root(runs_dir))
    except sweep_mod.SweepError:
        return None


def _varies_lr_or_batch(sweep_dir: Path) -> bool:
    """Whether a sweep has a Fig. 3 x axis (η or S takes several values); a momentum or
    seed sweep is drawn as its runs instead."""
    from sgdtop import sweep as sweep_mod

    try:
        varying = sweep_mod.load_sweep(sweep_dir).varying
    except sweep_mod.SweepError:
        return True  # let the Fig. 3 path report what is wrong with it
    return "lr" in varying or "batch_size" in varying


def _plot_sweep(refs: list[str], out: Path, runs_dir: Path | None) -> None:
    """`sgdtop plot SWEEP --out fig.png`: the paper's Fig. 3 from a sweep."""
    from sgdtop import plot as plot_mod
    from sgdtop import sweep as sweep_mod

    if len(refs) != 1:
        fail("--kind sweep takes exactly one SWEEP (a sweep id or directory)")
    try:
        path = sweep_mod.plot_sweep(sweep_mod.resolve_sweep(refs[0], _root(runs_dir)), out)
    except (plot_mod.PlotUnavailableError, plot_mod.PlotDataError, ValueError) as exc:
        fail(str(exc))  # SweepError is a ValueError
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"wrote {path}")


@app.command()
def plot(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Runs to draw.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Image file: .png, .svg or .pdf.")],
    kind: Annotated[str, typer.Option(
        help="auto, eigenvalues (Fig. 2), rho-vs-loss (Fig. 2 at equal loss), cond (Fig. "
             "1a), generalization (Fig. 1b), "
             "dead (Fig. 5), dense (Fig. 1c/d), slices (Fig. 7), sweep (Fig. 3, from one "
             "SWEEP; the default for a SWEEP). "
             "Any other kind with one SWEEP draws the sweep's runs.")
    ] = "auto",
    axis: AxisOpt = "epoch",
    runs_dir: RunsDirOpt = None,
) -> None:
    """Draw the paper's figures from saved runs or a sweep (needs matplotlib: sgdtop[plot])."""
    sweep_dir = _sweep_dir(run_refs[0], runs_dir) if len(run_refs) == 1 else None
    fig3 = sweep_dir is not None and _varies_lr_or_batch(sweep_dir)
    if kind == "sweep" or (kind == "auto" and fig3):
        _plot_sweep(run_refs, out, runs_dir)
        return
    axis_ = _check_axis(axis)
    from sgdtop import plot as plot_mod

    if kind not in plot_mod.PLOT_KINDS:
        fail(f"--kind must be one of {', '.join(plot_mod.PLOT_KINDS)}, sweep; got {kind!r}")
    if sweep_dir is not None:  # `sgdtop plot SWEEP --kind cond`: the sweep's runs
        from sgdtop import sweep as sweep_mod
        from sgdtop.stats import RunEvents

        dirs = sweep_mod.cell_run_dirs(sweep_mod.load_sweep(sweep_dir))
        if not dirs:
            fail(f"sweep {sweep_dir.name} has no runs yet")
        runs = [RunEvents.from_events(_read(d), path=d) for d in dirs]
    else:
        runs = _runs_events(run_refs, runs_dir)
    try:
        path = plot_mod.plot_runs(runs, out, kind, axis=axis_)
    except (plot_mod.PlotUnavailableError, plot_mod.PlotDataError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"wrote {path}")


@app.command()
def export(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, path or latest.")],
    csv: Annotated[Path | None, typer.Option(
        "--csv", help="Directory for one tidy CSV per event kind.")] = None,
    tensorboard: Annotated[Path | None, typer.Option(
        "--tensorboard", help="Directory for TensorBoard scalars.")] = None,
    replace: Annotated[bool, typer.Option(
        help="Replace TensorBoard event files already in the directory.")] = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Export a run as CSV (pandas-ready) and/or TensorBoard scalars."""
    if csv is None and tensorboard is None:
        fail("export needs --csv DIR and/or --tensorboard DIR")
    from sgdtop import export as export_mod

    run_dir = _resolve(run_ref, runs_dir)
    events = _read(run_dir)
    try:
        if csv is not None:
            files = export_mod.export_csv(events, csv, run_id=run_dir.name)
            print(f"wrote {len(files)} CSV files to {csv}: "
                  f"{', '.join(sorted(p.name for p in files.values()))}")
        if tensorboard is not None:
            res = export_mod.export_tensorboard(events, tensorboard, replace=replace)
            print(f"wrote {res.scalars} TensorBoard scalars ({len(res.tags)} tags) to "
                  f"{tensorboard}" + (f"; {res.n_skipped} non-finite values left out"
                                      if res.n_skipped else ""))
    except (export_mod.ExportUnavailableError, FileExistsError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {exc.filename or 'the export'}: {exc.strerror or exc}")


@app.command()
def profiles() -> None:
    """List the bundled profiles."""
    try:
        items = profile_mod.describe_all()
    except profile_mod.ProfileError as exc:
        fail(str(exc))
    width = max(len(n) for n, _ in items)
    for name, desc in items:
        print(f"{name:<{width}}  {desc}")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("sgdtop: interrupted\n")
        sys.exit(130)

