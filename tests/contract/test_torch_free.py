"""The layers that need no torch are tested without it: a pytest run in a subprocess in
which ``import torch`` fails (``sys.modules["torch"] = None``) passes the contract,
reading, TUI state/drawing, compare and export tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: Test files that import no torch, in-process (their subprocesses may train).
TORCH_FREE = [
    "contract", "reading/test_store.py", "reading/test_summary.py", "reading/test_feed.py",
    "tui/test_tui_state.py", "tui/test_tui_draw.py", "cli/test_compare.py",
    "cli/test_export.py",
]


def test_torch_free_layers_pass_without_torch() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now raises ImportError\n"
        "import pytest\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:randomly',"
        f" '--ignore', {str(Path(__file__))!r}, *{[str(TESTS / t) for t in TORCH_FREE]!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=TESTS.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    m = re.search(r"(\d+) passed", proc.stdout)
    assert m is not None and int(m.group(1)) >= 100, proc.stdout[-500:]
    assert "failed" not in proc.stdout.splitlines()[-1]
