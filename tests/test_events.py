"""The event schema and JSON Lines codec."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sgdtop.events import (
    KINDS,
    SCHEMA_VERSION,
    EventError,
    SchemaVersionError,
    decode,
    encode,
    make_event,
    read_events,
)


def _spectrum(**over: object):
    fields = dict(eigenvalues=[3.0, -2.0, 1.0], residuals=[1e-6, 1e-5, 1e-4],
                  converged=[True, True, False], spectral_norm=3.0, cond_k=3.0, lr=0.1,
                  momentum=0.9, eta_lambda1=0.3, stability_limit=38.0, hvps=40, seconds=0.5,
                  warm=False)
    fields.update(over)
    return make_event("spectrum", 1.5, step=10, epoch=0, **fields)


def test_roundtrip_keeps_every_field() -> None:
    ev = _spectrum()
    back = decode(encode(ev))
    assert back == ev
    assert back.step == 10 and back.epoch == 0 and back["eigenvalues"] == [3.0, -2.0, 1.0]


def test_non_finite_floats_are_tagged_not_bare() -> None:
    ev = _spectrum(spectral_norm=math.nan, eigenvalues=[math.inf, -math.inf, 1.0])
    line = encode(ev)
    assert "NaN" not in line and "Infinity" not in line
    json.loads(line)  # strict JSON
    back = decode(line)
    assert math.isnan(back["spectral_norm"])
    assert back["eigenvalues"][:2] == [math.inf, -math.inf]


def test_bare_nan_is_rejected() -> None:
    line = encode(_spectrum()).replace('"spectral_norm": 3.0', '"spectral_norm": NaN')
    with pytest.raises(EventError, match="bare NaN"):
        decode(line)


def test_missing_field_and_unknown_kind() -> None:
    with pytest.raises(EventError, match="lacks field"):
        make_event("eval", 0.0, train_loss=1.0)
    with pytest.raises(EventError, match="unknown event kind"):
        make_event("nope", 0.0)


def test_newer_version_is_a_clear_error() -> None:
    obj = json.loads(encode(_spectrum()))
    obj["v"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match="newer"):
        decode(json.dumps(obj))


def test_read_tolerates_truncated_tail_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [encode(_spectrum()) for _ in range(3)]
    text = lines[0] + "garbage\n" + lines[1] + lines[2][:20]
    path = tmp_path / "events.jsonl"
    path.write_text(text)
    res = read_events(path)
    assert len(res.events) == 2
    assert res.truncated_tail
    assert [b.lineno for b in res.bad_lines] == [2]


def test_every_kind_is_documented() -> None:
    assert set(KINDS) >= {"run_start", "step", "eval", "spectrum", "dense_spectrum",
                          "neurons", "log", "run_end"}
