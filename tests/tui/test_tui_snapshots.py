"""SVG snapshots of the screen at 80×24 and 160×48 (pytest-textual-snapshot; Textual is
pinned exactly in pyproject for these). Deterministic: recorded streams replayed
``instant`` (no wall clock on screen; elapsed is the events' own time).

Update after a deliberate change: ``pytest tests/tui/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest
from tui_fixtures import (
    LARGE,
    SMALL,
    SnapCompare,
    cut_off_run,
    diverging_run,
    normal_run,
    slice_run,
)

from sgdtop.schema import Record
from sgdtop.tui.run import ReplaySource, SgdtopApp


def _app(events: list[Record]) -> SgdtopApp:
    return SgdtopApp(ReplaySource(events, instant=True))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_completed_run(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(_app(normal_run()), terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_diverged_run_with_nan_and_inf(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(_app(diverging_run()), terminal_size=size)


def test_cut_off_run_mid_measurement(snap_compare: SnapCompare) -> None:
    assert snap_compare(_app(cut_off_run()), terminal_size=SMALL)


def test_log_scale_one_measurement_back(snap_compare: SnapCompare) -> None:
    assert snap_compare(_app(normal_run()), press=["left", "l"], terminal_size=LARGE)


def test_help(snap_compare: SnapCompare) -> None:
    assert snap_compare(_app(normal_run()), press=["question_mark"], terminal_size=SMALL)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_loss_slices_panel(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(_app(slice_run()), press=["v"], terminal_size=size)
