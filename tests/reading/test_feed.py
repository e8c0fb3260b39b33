"""The event pipeline without processes: the drain loop, replay pacing, end reasons and
the skipped-lines wording (sgdtop.feed)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from runs_fixtures import high_lr_run, write_jsonl

from sgdtop.feed import (
    MAX_REPLAY_GAP_S,
    EndKind,
    ReplayFeed,
    drain,
    replay_delay,
    skipped_lines_warning,
)
from sgdtop.schema import BadLine, Record, RunEnd


def test_drain_hands_every_record_to_the_sinks_and_says_how_it_ended() -> None:
    records = high_lr_run().events
    got: list[Record] = []
    end = drain(ReplayFeed(records, source="x"), got.append)
    assert got == records
    assert end.kind is EndKind.RUN_END and end.status == "completed"
    assert isinstance(end.run_end, RunEnd)
    cut = drain(ReplayFeed(records[:10], source="x"), got.append)
    assert cut.kind is EndKind.NO_RUN_END and "no run_end" in cut.describe()


def test_a_closed_stdout_stops_the_feed_once_and_ends_quietly() -> None:
    records = high_lr_run().events
    stops: list[str] = []
    seen: list[Record] = []

    def sink(rec: Record) -> None:
        if len(seen) == 3:
            raise BrokenPipeError
        seen.append(rec)

    feed = ReplayFeed(records, source="x")
    end = drain(feed, sink, on_closed_stdout=lambda: stops.append("stop"))
    assert end.kind is EndKind.CLOSED_STDOUT and stops == ["stop"] and len(seen) == 3
    assert end.run_end is not None  # the rest was read (the trainer's run_end), not shown


def test_replay_paces_by_the_trainer_clock_capped() -> None:
    assert replay_delay(2.0, 4.0) == 0.5
    assert replay_delay(-1.0, 1.0) == 0.0 and replay_delay(1e6, 1.0) == MAX_REPLAY_GAP_S
    records = high_lr_run().events[:6]
    waits: list[float] = []
    drain(ReplayFeed(records, speed=2.0, sleep=waits.append), lambda rec: None)
    expected = [replay_delay(b.t - a.t, 2.0) for a, b in itertools.pairwise(records)]
    assert waits == pytest.approx([w for w in expected if w > 0])


def test_replay_from_a_file_skips_bad_lines_and_ends_at_a_newer_schema(tmp_path: Path) -> None:
    path = write_jsonl(high_lr_run().events, tmp_path / "events.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    newer = json.loads(lines[4]) | {"v": 9}
    path.write_text("".join([*lines[:2], "{bad\n", *lines[2:4], json.dumps(newer) + "\n",
                             *lines[4:]]))
    feed = ReplayFeed.from_file(path)
    got: list[Record] = []
    end = drain(feed, got.append)
    assert len(got) == 4 and end.kind is EndKind.NEWER_SCHEMA
    assert end.bad is not None and end.bad.line_no == 6 and end.bad.version == 9
    assert f"{path} line 6" in end.describe()
    assert [b.line_no for b in feed.bad_lines if not b.newer] == [3]


def test_skipped_lines_are_one_warning_with_the_exact_count() -> None:
    bad = [BadLine(n, "not JSON") for n in (3, 8, 9, 12, 20)]
    assert skipped_lines_warning("f", []) is None
    assert skipped_lines_warning("f", [BadLine(2, "v", newer=True)]) is None
    one = skipped_lines_warning("f", bad[:1])
    assert one == "sgdtop: warning: f: skipped 1 unreadable line (3): not JSON"
    many = skipped_lines_warning("f", bad, total=40)
    assert many is not None and "skipped 40 unreadable lines (3, 8, 9 and 37 more)" in many
