"""The wire format's value layer: JSON with tagged non-finite floats, parsed defensively.

Events are JSON Lines (``docs/design.md``, "Events"). JSON has no NaN or infinity, so a
non-finite float is written as ``{"$float": "nan"}``, ``{"$float": "inf"}`` or
``{"$float": "-inf"}`` wherever it appears (also inside lists and objects) and read back as
a ``float``.

:func:`parse_json` never raises anything but :class:`WireError`: bad UTF-8, bad JSON, bare
``NaN``, nesting deeper than :data:`MAX_DEPTH`, integers beyond Python's digit limit all
become a :class:`WireError` with a one-line reason. The coercers (:func:`as_float`,
:func:`as_int`, ...) check one field's type and raise :class:`WireError` naming the field.

Standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Final

FLOAT_TAG: Final[str] = "$float"
#: Deepest nesting of arrays/objects accepted in one line (the deepest real event nests 3).
MAX_DEPTH: Final[int] = 64

_TAG_VALUES: Final[dict[str, float]] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class WireError(ValueError):
    """A value that is not what the schema says (bad JSON, wrong type, missing field)."""


def encode_value(x: object) -> object:
    """``x`` with every non-finite float replaced by its tag (recursively)."""
    if isinstance(x, float):
        if math.isfinite(x):
            return x
        return {FLOAT_TAG: "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
    if isinstance(x, Mapping):
        return {str(k): encode_value(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [encode_value(v) for v in x]
    return x


def dumps(obj: Mapping[str, object]) -> str:
    """One JSON line (no newline) with non-finite floats tagged."""
    return json.dumps(encode_value(obj), allow_nan=False, ensure_ascii=False)


def _decode_hook(obj: dict[str, object]) -> object:
    if len(obj) == 1 and FLOAT_TAG in obj:
        tag = obj[FLOAT_TAG]
        if isinstance(tag, str) and tag in _TAG_VALUES:
            return _TAG_VALUES[tag]
        raise WireError(f"bad non-finite float tag {tag!r}")
    return obj


def _reject_constant(name: str) -> object:
    raise WireError(f"bare {name} is not JSON (non-finite floats must be tagged)")


def _depth_ok(text: str) -> bool:
    """Whether the brackets of ``text`` (outside strings) nest at most MAX_DEPTH deep.
    A cheap pre-check: only lines with many brackets are scanned."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return True
    depth = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


_DECODER: Final[json.JSONDecoder] = json.JSONDecoder(object_hook=_decode_hook,
                                                      parse_constant=_reject_constant)


def parse_json(line: str | bytes) -> object:
    """Parse one JSON line with tagged floats; raise only :class:`WireError`."""
    if isinstance(line, bytes | bytearray):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"not UTF-8 (byte {exc.start})") from None
    if not _depth_ok(line):
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return _DECODER.decode(line)
    except json.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:  # pragma: no cover - _depth_ok catches it first
        raise WireError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. Python's limit on the digits of an int
        raise WireError(f"not readable JSON: {str(exc).splitlines()[0][:120]}") from None


# --- field coercers --------------------------------------------------------------------------

def as_float(x: object, name: str) -> float:
    """A JSON number (int or float, not bool) as a float; ints too large for a float fail."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise WireError(f"'{name}' must be a number, got {type(x).__name__}")
    try:
        return float(x)
    except OverflowError:
        raise WireError(f"'{name}' is too large for a float") from None


def as_int(x: object, name: str) -> int:
    """A JSON integer (not bool, not float)."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise WireError(f"'{name}' must be an integer, got {type(x).__name__}")
    return x


def as_bool(x: object, name: str) -> bool:
    if not isinstance(x, bool):
        raise WireError(f"'{name}' must be true or false, got {type(x).__name__}")
    return x


def as_str(x: object, name: str) -> str:
    if not isinstance(x, str):
        raise WireError(f"'{name}' must be a string, got {type(x).__name__}")
    return x


def as_dict(x: object, name: str) -> dict[str, object]:
    if not isinstance(x, dict):
        raise WireError(f"'{name}' must be an object, got {type(x).__name__}")
    return x


def as_list(x: object, name: str) -> list[object]:
    if not isinstance(x, list):
        raise WireError(f"'{name}' must be a list, got {type(x).__name__}")
    return x
