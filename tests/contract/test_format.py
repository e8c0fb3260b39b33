"""The one formatting module (sgdtop.format): every view spells values this way."""

from __future__ import annotations

import math

from sgdtop import format as fmt


def test_numbers() -> None:
    assert fmt.number(None) == fmt.UNKNOWN == "–"
    assert fmt.number(math.nan) == "nan"
    assert fmt.number(math.inf) == "+inf" and fmt.number(-math.inf) == "-inf"
    assert fmt.number(1.23456e-5) == "1.235e-5"
    assert fmt.number(123456.0) == "1.235e5"
    assert fmt.number(3, 3) == "3"
    assert fmt.signed(0.5) == "+0.5" and fmt.signed(-0.5) == "-0.5"
    assert fmt.signed(0.0) == "+0" and fmt.signed(math.nan) == "nan"
    assert fmt.fixed(12.345) == "12.3" and fmt.fixed(None) == "–"
    assert fmt.percent(12.345) == "12.3%" and fmt.percent(math.nan) == "nan"
    assert fmt.count(950) == "950" and fmt.count(12_345) == "12.3k"
    assert fmt.count(4.5e6) == "4.5M" and fmt.count(1.2e9) == "1.2G"


def test_durations() -> None:
    assert fmt.clock(65) == "1:05" and fmt.clock(3725) == "1:02:05"
    assert fmt.clock(None) == "?" and fmt.clock(-1) == "?" and fmt.clock(math.inf) == "?"
    assert fmt.duration(12.4) == "12s" and fmt.duration(185) == "3m05s"
    assert fmt.duration(3725) == "1h02m" and fmt.duration(math.nan) == "?"


def test_symbols() -> None:
    assert fmt.subscript(30) == "₃₀"
    assert fmt.kappa_label(30) == "κ₃₀" and fmt.kappa_label(None) == "κₖ"
    assert fmt.eigen_label(1) == "λ₁"
    assert fmt.setting(0.1234) == "0.123" and fmt.setting(None) == "?"
    assert fmt.setting(128) == "128"
    assert fmt.clip("abcdef", 4) == "abc…" and fmt.clip("abc", 4) == "abc"


def test_run_labels_by_what_differs() -> None:
    settings = [{"lr": 0.1, "batch_size": 32, "model": "mlp"},
                {"lr": 0.01, "batch_size": 32, "model": "mlp"},
                {"lr": 0.01, "batch_size": 32, "model": "mlp"}]
    names = ["a", "b", "c"]
    assert fmt.run_labels(settings, names, {"lr"}) == ["η=0.1", "η=0.01 #1", "η=0.01 #2"]
    assert fmt.run_labels(settings, names, set()) == ["a", "b", "c"]
    assert fmt.run_labels(settings, names, {"model", "lr"}, given=[None, "mine", None]) == [
        "η=0.1 mlp", "mine", "η=0.01 mlp"]


def test_number_or_none() -> None:
    assert fmt.number_or_none(3) == 3.0 and isinstance(fmt.number_or_none(3), float)
    assert fmt.number_or_none(0.5) == 0.5
    assert fmt.number_or_none(True) is None and fmt.number_or_none("1") is None
    assert fmt.number_or_none(None) is None
    assert fmt.number_or_none(10**400) is None  # too large for a float
