"""Fuzzing the boundary decoder: tens of thousands of mutated real lines, none may raise."""

from __future__ import annotations

import json
import random

from schema_samples import sample_records

from sgdtop.schema import BadLine, RecordBase, decode_line, encode

#: Mutations per run (each a fresh mutated line through decode_line).
N_MUTATIONS = 30_000

_HOSTILE_VALUES: list[object] = [
    None, True, False, 0, -1, 2**70, 10**400, 1e308, -1e308, "", "x" * 1000, [], [[[]]], {},
    {"$float": "nan"}, {"$float": "bogus"}, {"$float": 1}, [1, "a", None], {"a": [1, {}]},
    [1.5] * 50, "NaN", "\u0000", "\ud7ff",
]


def _mutate_bytes(rng: random.Random, line: bytes) -> bytes:
    b = bytearray(line)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[pos:pos] = rng.choice([b"[", b"{", b"]", b"}", b'"', b",", b":", b"\\", b"e9",
                                     b"9" * 30, b"NaN", b"-", b"\xff", b"\x00"])
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 8)]
        elif op == 3:
            b = b[:pos]
        else:
            b = b[:pos] + b[pos:] * 2
    return bytes(b)


def _mutate_object(rng: random.Random, obj: dict[str, object]) -> dict[str, object]:
    obj = dict(obj)
    keys = list(obj)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        key = rng.choice(keys)
        if op == 0:
            obj[key] = rng.choice(_HOSTILE_VALUES)
        elif op == 1:
            obj.pop(key, None)
        elif op == 2 and isinstance(obj.get(key), list):
            lst = list(obj[key])  # type: ignore[arg-type]
            if lst:
                lst[rng.randrange(len(lst))] = rng.choice(_HOSTILE_VALUES)
            obj[key] = lst
        else:
            obj[rng.choice(["v", "kind", "t", "step", "epoch"])] = rng.choice(_HOSTILE_VALUES)
    return obj


def test_fuzzed_lines_never_raise() -> None:
    rng = random.Random(20261201)
    lines = [encode(r) for r in sample_records()]
    objects = [json.loads(line) for line in lines]
    counts = {"record": 0, "bad": 0}
    for i in range(N_MUTATIONS):
        if i % 2:
            src = lines[rng.randrange(len(lines))].encode()
            item = decode_line(_mutate_bytes(rng, src), i)
        else:
            obj = _mutate_object(rng, objects[rng.randrange(len(objects))])
            try:
                text = json.dumps(obj)
            except ValueError:  # a value json itself cannot write (e.g. 10**400 digits ok)
                continue
            item = decode_line(text, i)
        if isinstance(item, BadLine):
            assert item.line_no == i and item.reason and "\n" not in item.reason
            counts["bad"] += 1
        else:
            assert isinstance(item, RecordBase)
            # a record that decoded must encode again and decode to the same record
            again = decode_line(encode(item))  # type: ignore[arg-type]
            assert type(again) is type(item)
            counts["record"] += 1
    assert counts["bad"] > N_MUTATIONS // 4 and counts["record"] > N_MUTATIONS // 50
