"""The time guard read in blocks (``GuardedSource.iter_blocks``, what replay uses)
gives the records, the rejections and the counters of reading it record by record,
at every record: a block whose stamps all fit is handed on at once, any other goes
record by record, and the state (anchor, feed time, held outliers) carries over."""

from __future__ import annotations

import json
import random
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from drivers.events import sources as sources_mod
from drivers.events.sources import JsonlEventFile
from edge.pipeline import merge_by_time
from edge.timeguard import CONFIRM_RECORDS, GuardedSource

BASE = 1_767_225_600.0
DAY = 86_400.0


def _line(ts: Any, i: int) -> str:
    return json.dumps({"type": "data", "imsi": f"46001{i:010d}", "bytes": 10, "ts": ts})


def _feed(tmp_path: Path, rng: random.Random) -> Path:
    stamps: list[Any] = [1e300] + [BASE + i * 0.5 for i in range(20)]  # poisoned start
    t = BASE + 10
    lines: list[str] = []
    for k in range(4000):
        t += rng.uniform(0, 0.3)
        stamps.append(t)
        r = rng.random()
        if r < 0.002:
            stamps.append(t + 10 * 365 * DAY)  # ten years ahead, alone
        elif r < 0.003:
            stamps.extend(t + 1.5 * DAY + j for j in range(CONFIRM_RECORDS - 1))  # a burst
        elif r < 0.0032:
            stamps.append(t - 2 * DAY)  # far behind, alone
        elif r < 0.0035 or k == 2000:
            t += 3 * DAY  # a real gap, followed once confirmed
        elif r < 0.005:
            stamps.append(t - 0.5)  # late by a little
    for i, ts in enumerate(stamps):
        lines.append(_line(ts, i))
        if i % 997 == 5:
            lines.append('{"type": "data", "imsi": "bad"}')  # Malformed, no ts
        if i % 1499 == 7:
            lines.append("")
    p = tmp_path / "ev.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_give_the_records_and_counters_of_record_by_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(sources_mod, "BLOCK_BYTES", 2048)  # many blocks
    path = _feed(tmp_path, random.Random(seed))
    one = GuardedSource(JsonlEventFile(path), live=False)
    many = GuardedSource(JsonlEventFile(path), live=False)
    a = iter(one)
    b = merge_by_time([many])
    n = 0
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb
        n += 1
        if n % 37 == 0:
            assert one.counters() == many.counters()
    assert one.counters() == many.counters()
    c = one.counters()
    assert c["ts_rejected"] > 0 and c["ts_jumps_followed"] > 0 and c["malformed"] > 0


def test_a_source_without_blocks_and_a_live_guard_go_record_by_record() -> None:
    class Rec:
        def __init__(self, ts: float) -> None:
            self.ts = ts

    class ListSource:
        name = "list"

        def __init__(self, recs: list[Rec]) -> None:
            self.recs = recs

        def __iter__(self) -> Any:
            return iter(self.recs)

        def counters(self) -> dict[str, int]:
            return {}

        def close(self) -> None:
            pass

    recs = [Rec(BASE + i) for i in range(30)] + [Rec(float("nan"))]
    for live in (False, True):
        g = GuardedSource(ListSource(recs), live=live, clock=lambda: BASE + 100)
        out = list(chain.from_iterable(g.iter_blocks()))
        assert [r.ts for r in out[:30]] == [BASE + i for i in range(30)]
        assert out[30].ts is None and g.ts_rejected == 1
