"""The event kinds as the pipeline sees them: every kind has one documented record type
(the codec itself is tested in test_schema.py and test_schema_fuzz.py)."""

from __future__ import annotations

from sgdtop.schema import KINDS, RECORD_TYPES, RecordBase


def test_every_kind_is_documented() -> None:
    assert {"run_start", "step", "eval", "spectrum", "spectrum_progress", "dense_spectrum",
            "loss_slice", "neurons", "log", "run_end"} == set(KINDS)
    assert [cls.kind for cls in RECORD_TYPES] == list(KINDS)  # one record type per kind
    for cls in RECORD_TYPES:
        doc = cls.__doc__ or ""
        # a dataclass without a docstring gets a generated "Name(t, step, ...)" one
        assert doc and doc != RecordBase.__doc__ and not doc.startswith(f"{cls.__name__}("), \
            cls.kind


def test_every_kind_is_shown_or_deliberately_ignored_by_the_log() -> None:
    """The headless log has a case for each kind it prints (a kind added to the schema
    must be decided on here)."""
    import inspect

    from sgdtop.logsink import IGNORED_KINDS, LogSink

    source = inspect.getsource(LogSink.handle)
    shown = {cls.kind for cls in RECORD_TYPES if f"case {cls.__name__}()" in source}
    assert shown | IGNORED_KINDS == set(KINDS) and not shown & IGNORED_KINDS
