"""Every report the agent emits validates against report.schema.json."""

from __future__ import annotations

from pathlib import Path

import orjson

from edge.cli.agent import main as agent_main
from edge.detection import Detection, Evidence, ModelInfo, Subject
from edge.report.ids import IdFactory, encode_ulid
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.schema import validation_errors
from edge.report.sinks import MemorySink
from simulators.telecom.events import EventSimConfig, write_events


def test_replayed_reports_validate(tmp_path: Path) -> None:
    events = tmp_path / "ev.jsonl"
    write_events(EventSimConfig(seed=11, subscribers=400, hours=4), events)
    out = tmp_path / "reports.jsonl"
    assert agent_main(["replay", "--events", str(events), "--out", str(out), "--quiet"]) == 0
    reports = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    kinds = {r["kind"] for r in reports}
    assert "agent.status" in kinds and "simbox.sim" in kinds
    for r in reports:
        assert validation_errors(r) == [], r
    ids = [r["id"] for r in reports]
    assert len(set(ids)) == len(ids)


def test_schema_rejects_broken_reports() -> None:
    sink = MemorySink()
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(b"k" * 16),
                   ids=IdFactory("x"), sinks=[sink])
    good = rep.report(Detection(5.0, "goip.endpoint", "high", 0.97, Subject("ip", "10.1.1.1"),
                                [Evidence("sig", {"ua": "dble"})], ["telecom", "police"],
                                model=ModelInfo("m", "1", "0" * 64)))
    assert validation_errors(good) == []
    for mutate in (
        lambda r: r.pop("route"),
        lambda r: r.update(score=1.5),
        lambda r: r.update(severity="urgent"),
        lambda r: r.update(id="not-a-ulid"),
        lambda r: r.update(extra=1),
        lambda r: r["subject"].pop("pseudonymised"),
        lambda r: r.update(model={"name": "m"}),
    ):
        bad = orjson.loads(orjson.dumps(good))
        mutate(bad)
        assert validation_errors(bad), bad


def test_ids_sort_by_time() -> None:
    assert encode_ulid(1, 0) < encode_ulid(2, 0) < encode_ulid(2, 1)
    f = IdFactory("ns")
    a, b = f.next(100.0), f.next(100.0)
    assert a != b and a[:10] == b[:10]
    assert IdFactory("ns").next(100.0) == a  # deterministic in replay
