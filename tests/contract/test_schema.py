"""The typed event records and the line codec (sgdtop.schema)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from schema_samples import sample_records

from sgdtop.schema import (
    BY_KIND,
    KINDS,
    SCHEMA_VERSION,
    BadLine,
    Log,
    RunStart,
    Spectrum,
    Step,
    WireError,
    decode_line,
    encode,
    newer_schema_message,
    read_events,
    skipped_lines_message,
)


def _same(a: object, b: object) -> bool:
    """Equality with NaN == NaN (records hold NaN where a value is unknown)."""
    return json.dumps(a.to_wire(), default=str) == json.dumps(b.to_wire(), default=str)  # type: ignore[attr-defined]


def test_every_kind_has_a_sample_and_round_trips() -> None:
    samples = sample_records()
    assert sorted({r.kind for r in samples}) == sorted(KINDS)
    for rec in samples:
        line = encode(rec)
        assert line.endswith("\n") and "\n" not in line[:-1]
        assert "NaN" not in line and "Infinity" not in line
        back = decode_line(line)
        assert type(back) is type(rec)
        assert _same(back, rec)


def test_wire_layout_header_first_and_optionals_left_out() -> None:
    step = Step(t=1.0, step=2, lr=0.1, loss=0.5, examples_per_s=1.0, steps_per_s=2.0)
    obj = json.loads(encode(step))
    assert list(obj)[:4] == ["v", "kind", "t", "step"]
    assert obj["v"] == SCHEMA_VERSION and obj["kind"] == "step"
    assert "epoch" not in obj  # None header fields are left out
    spec = next(r for r in sample_records() if isinstance(r, Spectrum))
    obj = json.loads(encode(spec))
    assert obj["residuals"][2] == {"$float": "inf"}
    assert "batch_norm" in obj


def test_required_none_is_written_as_null() -> None:
    start = next(r for r in sample_records() if isinstance(r, RunStart))
    mon = dataclasses.replace(start, batch_size=None, lr=None)
    obj = json.loads(encode(mon))
    assert obj["batch_size"] is None and obj["lr"] is None
    back = decode_line(encode(mon))
    assert isinstance(back, RunStart) and back.batch_size is None


def test_unknown_keys_are_kept_in_extra() -> None:
    line = ('{"v": 1, "kind": "step", "t": 1, "lr": 0.1, "loss": 1, "examples_per_s": 2,'
            ' "steps_per_s": 3, "future_field": [1, 2]}')
    rec = decode_line(line)
    assert isinstance(rec, Step)
    assert rec.extra == {"future_field": [1, 2]}
    assert json.loads(encode(rec))["future_field"] == [1, 2]
    assert isinstance(rec.t, float) and rec.loss == 1.0 and isinstance(rec.loss, float)


@pytest.mark.parametrize(("line", "reason"), [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"v": 1, "kind": "nope", "t": 0}', "unknown event kind"),
    ('{"v": 0, "kind": "step", "t": 0}', "unknown event schema version"),
    ('{"v": true, "kind": "step", "t": 0}', "unknown event schema version"),
    ('{"kind": "step", "t": 0}', "unknown event schema version"),
    ('{"v": 1, "kind": "step", "t": 0, "lr": 1, "loss": 1, "examples_per_s": 1}',
     "step lacks field 'steps_per_s'"),
    ('{"v": 1, "kind": "step", "t": "0", "lr": 1, "loss": 1, "examples_per_s": 1,'
     ' "steps_per_s": 1}', "'t' must be a number"),
    ('{"v": 1, "kind": "step", "t": 0, "step": 1.5, "lr": 1, "loss": 1,'
     ' "examples_per_s": 1, "steps_per_s": 1}', "'step' must be an integer"),
    ('{"v": 1, "kind": "step", "t": 0, "step": true, "lr": 1, "loss": 1,'
     ' "examples_per_s": 1, "steps_per_s": 1}', "'step' must be an integer"),
    ('{"v": 1, "kind": "step", "t": 0, "lr": [1], "loss": 1, "examples_per_s": 1,'
     ' "steps_per_s": 1}', "'lr' must be a number, got list"),
    ('{"v": 1, "kind": "step", "t": NaN, "lr": 1, "loss": 1, "examples_per_s": 1,'
     ' "steps_per_s": 1}', "bare NaN"),
    ('{"v": 1, "kind": "log", "t": 0, "level": "loud", "message": "x", "source": "stderr"}',
     "'level' must be one of"),
    ('{"v": 1, "kind": "run_end", "t": 0, "status": 3, "message": "x", "steps": 1,'
     ' "seconds": 1}', "'status' must be one of"),
    ('{"v": 1, "kind": "neurons", "t": 0, "dead_pct": 1, "threshold": 1,'
     ' "layers": [{"name": "a"}]}', "lacks field 'units'"),
    ('{"v": 1, "kind": "step", "t": 0, "lr": {"$float": "huge"}, "loss": 1,'
     ' "examples_per_s": 1, "steps_per_s": 1}', "bad non-finite float tag"),
])
def test_bad_lines_say_why(line: str, reason: str) -> None:
    bad = decode_line(line, 7)
    assert isinstance(bad, BadLine)
    assert bad.line_no == 7 and not bad.newer
    assert reason in bad.reason
    assert "\n" not in bad.reason


def test_hostile_values_are_bad_lines_not_exceptions() -> None:
    base = '{"v": 1, "kind": "step", "t": %s, "lr": 1, "loss": 1, "examples_per_s": 1, ' \
           '"steps_per_s": 1}'
    for t in ["1" + "0" * 400, "1" + "0" * 5000, "[" * 100_000 + "]" * 100_000,
              '{"a":' * 50_000 + "1" + "}" * 50_000, "1e400", '"\\ud800"']:
        item = decode_line(base % t)
        if isinstance(item, Step):  # 1e400 is a valid JSON number: +inf
            assert math.isinf(item.t)
        else:
            assert isinstance(item, BadLine)
    assert isinstance(decode_line(b"\xff\xfe"), BadLine)
    assert isinstance(decode_line('{"v": 1, "kind": "run_start", "t": 0, "profile": []}'),
                      BadLine)


def test_newer_schema_is_named_with_file_and_line(tmp_path: Path) -> None:
    bad = decode_line(json.dumps({"v": SCHEMA_VERSION + 1, "kind": "step", "t": 0}), 3)
    assert isinstance(bad, BadLine) and bad.newer and bad.version == SCHEMA_VERSION + 1
    msg = newer_schema_message(tmp_path / "events.jsonl", bad)
    assert msg == (f"{tmp_path / 'events.jsonl'} line 3: written by a newer sgdtop (event "
                   f"schema {SCHEMA_VERSION + 1}; this one reads {SCHEMA_VERSION}): "
                   "upgrade sgdtop")


def test_read_events_counts_bad_lines_and_a_cut_tail(tmp_path: Path) -> None:
    recs = sample_records()
    path = tmp_path / "events.jsonl"
    lines = [encode(r) for r in recs]
    lines.insert(2, "garbage\n")
    lines.insert(4, "\n")
    path.write_text("".join(lines) + encode(recs[1])[:20], encoding="utf-8")
    res = read_events(path)
    assert [r.kind for r in res.records] == [r.kind for r in recs]
    assert res.truncated_tail
    assert [b.line_no for b in res.bad_lines] == [3]
    assert res.newer is None
    msg = skipped_lines_message(path, res.bad_lines)
    assert msg.startswith(f"{path}: skipped 1 unreadable line (3): not JSON")


def test_records_are_immutable_and_typed() -> None:
    log = Log(t=0.0, level="info", message="hi", source="trainer")
    with pytest.raises(AttributeError):
        log.message = "other"  # type: ignore[misc]
    assert BY_KIND["log"] is Log and log.kind == "log" and Log.kind == "log"
    with pytest.raises(WireError):
        Log.from_wire({"t": 0, "level": "info", "message": 5, "source": "trainer"})
