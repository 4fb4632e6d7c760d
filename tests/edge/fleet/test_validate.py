"""The collector's fast report check gives jsonschema's verdict on the report schema."""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import orjson

from edge.fleet.validate import report_errors
from edge.report.schema import validation_errors
from simulators.fleet_day import make_day
from simulators.fleet_load import FleetLoad, LoadSpec

_ODD: list[Any] = [None, True, 0, -1, 1.5, 2, "", "x", "A" * 26, [], {}, ["ops", "ops"],
                   ["nope"], {"type": "imsi"}, "f1:" + "a" * 32, "2026-12-01T00:00:00.000Z",
                   "a" * 65, "simbox", "bs 1"]


def _reports() -> list[dict[str, Any]]:
    out = [m.report for m in make_day(seed=2, background=40).messages]
    fl = FleetLoad("127.0.0.1", 1, LoadSpec(boxes=6, sites=3, depot_share=0.5))
    out += [orjson.loads(fl.make_report(fl.boxes[i % 6], time.time())[1]) for i in range(60)]
    return out


def _paths(d: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(r: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    m = copy.deepcopy(r)
    path = rng.choice(_paths(m))
    parent: Any = m
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    what = rng.random()
    if what < 0.2 and isinstance(parent, dict):
        del parent[last]
    elif what < 0.3 and isinstance(parent, dict):
        parent[rng.choice(["extra", "fleet_id", "related", "detector"])] = rng.choice(_ODD)
    else:
        parent[last] = copy.deepcopy(rng.choice(_ODD))
    return m


def test_fast_check_agrees_with_jsonschema() -> None:
    rng = random.Random(17)
    reports = _reports()
    for r in reports:
        assert report_errors(r) == [] and validation_errors(r) == []
    disagreements = []
    invalid = 0
    for i in range(3000):
        m = _mutate(reports[i % len(reports)], rng)
        fast, ref = bool(report_errors(m)), bool(validation_errors(m))
        invalid += ref
        if fast != ref:
            disagreements.append((m, report_errors(m), validation_errors(m)))
    assert not disagreements, disagreements[:3]
    assert invalid > 1500  # the mutations do hit the schema
