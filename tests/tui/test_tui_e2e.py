"""End to end: ``sgdtop run --profile smoke`` in a real pseudo-terminal (80×24) shows the
TUI with eigenvalues, quits cleanly on ``q`` (stop, then quit) and leaves no trainer
process behind."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[\]P_^][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")


def _workers_of(runs_dir: Path) -> list[int]:
    """Live processes running sgdtop.worker for ``runs_dir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if "sgdtop.worker" in cmd and str(runs_dir) in cmd and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and a Linux pty")
def test_smoke_run_in_a_pty(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of 80×24 running sgdtop
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24")
        env.pop("NO_COLOR", None)
        os.execvpe(sys.executable, [sys.executable, "-m", "sgdtop", "run", "--profile",
                                    "smoke", "--runs-dir", str(runs)], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    screen = b""

    def read(seconds: float) -> None:
        nonlocal screen
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                screen += chunk

    def text() -> str:
        return _ANSI.sub(b"", screen).decode("utf-8", errors="replace")

    reaped: list[int] = []

    def exited() -> int | None:
        if reaped:
            return reaped[0]
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            reaped.append(os.waitstatus_to_exitcode(status))
            return reaped[0]
        return None

    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not re.search(r"[+-]\d+\.\d+ .*[✓~✗]", text()):
            read(0.5)
            assert exited() is None, f"sgdtop exited early:\n{text()[-2000:]}"
        assert re.search(r"[+-]\d+\.\d+ .*[✓~✗]", text()), text()[-3000:]
        assert "HVP" in text() and "top-30 eigenvalues" in text()
        code: int | None = None
        deadline = time.monotonic() + 60
        while code is None and time.monotonic() < deadline:
            os.write(fd, b"q")  # 1st: stop the trainer (or quit if it ended); 2nd: quit
            read(2.0)
            code = exited()
        assert code is not None, f"sgdtop did not quit:\n{text()[-2000:]}"
        assert "interrupted" in text() or "completed" in text()
        assert "Traceback" not in text()
    finally:
        if exited() is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    time.sleep(0.5)
    assert _workers_of(runs) == [], "the trainer outlived the TUI"
    events = next(runs.glob("*/events.jsonl")).read_text().splitlines()
    assert '"run_end"' in events[-1]
