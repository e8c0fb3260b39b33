"""The event contract: one typed record per event kind and the one line codec.

Layer rules (``docs/design.md``): standard library only; every producer builds these
records and every consumer reads their attributes.
"""

from sgdtop.schema.codec import (
    BadLine,
    ReadResult,
    decode_line,
    encode,
    iter_lines,
    newer_schema_message,
    read_events,
    skipped_lines_message,
)
from sgdtop.schema.records import (
    BY_KIND,
    KINDS,
    LOG_LEVELS,
    LOG_SOURCES,
    RECORD_TYPES,
    RUN_STATUSES,
    SCHEMA_VERSION,
    DenseSpectrum,
    Eval,
    Log,
    LogLevel,
    LogSource,
    LossSlice,
    NeuronLayer,
    Neurons,
    Record,
    RecordBase,
    RunEnd,
    RunStart,
    RunStatus,
    Spectrum,
    SpectrumProgress,
    Step,
)
from sgdtop.schema.wire import WireError

__all__ = [
    "BY_KIND", "KINDS", "LOG_LEVELS", "LOG_SOURCES", "RECORD_TYPES", "RUN_STATUSES",
    "SCHEMA_VERSION", "BadLine", "DenseSpectrum", "Eval", "Log", "LogLevel", "LogSource",
    "LossSlice", "NeuronLayer", "Neurons", "ReadResult", "Record", "RecordBase", "RunEnd",
    "RunStart", "RunStatus", "Spectrum", "SpectrumProgress", "Step", "WireError",
    "decode_line", "encode", "iter_lines", "newer_schema_message", "read_events",
    "skipped_lines_message",
]
