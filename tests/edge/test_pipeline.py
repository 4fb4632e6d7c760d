"""The pipeline on its own: routing by type, detections to stages then the reporter,
commands to actuators and their outcomes back, failures counted and survived."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from edge.actuators import DryRunActuator, outcome
from edge.detection import Detection, Evidence, Subject
from edge.pipeline import Pipeline
from edge.records import Command, CommandOutcome
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import MemorySink


@dataclass(slots=True)
class Ping:
    ts: float
    n: int


@dataclass(slots=True)
class Pong:
    ts: float
    n: int


class Base:
    consumes: tuple[type, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[Any] = []

    def feed(self, item: Any) -> Sequence[Any]:
        self.seen.append(item)
        return ()

    def tick(self, now: float) -> Sequence[Any]:
        return ()

    def flush(self, now: float) -> Sequence[Any]:
        return ()

    def counters(self) -> dict[str, int | float]:
        return {"seen": len(self.seen)}


class Doubler(Base):
    """Ping -> Pong; every third Pong makes a Detection."""

    consumes = (Ping,)

    def feed(self, item: Ping) -> Sequence[Any]:
        self.seen.append(item)
        return (Pong(item.ts, item.n * 2),)


class Detector(Base):
    consumes = (Pong,)

    def feed(self, item: Pong) -> Sequence[Any]:
        self.seen.append(item)
        if item.n % 3 == 0:
            return (det(item.ts, f"x{item.n}"),)
        return ()


class Responder(Base):
    """Consumes detections and outcomes; answers each detection with a Command."""

    consumes = (Detection, CommandOutcome)

    def __init__(self, name: str, target: str, deadline_s: float = 5.0) -> None:
        super().__init__(name)
        self.target = target
        self.deadline_s = deadline_s
        self.outcomes: list[CommandOutcome] = []

    def feed(self, item: Any) -> Sequence[Any]:
        if isinstance(item, CommandOutcome):
            if item.correlation_id.startswith(self.name + "-"):  # its own commands only
                self.outcomes.append(item)
            return ()
        self.seen.append(item)
        return (Command(ts=item.ts, target=self.target, action="block",
                        args={"id": item.subject.id}, deadline=item.ts + self.deadline_s,
                        correlation_id=f"{self.name}-{len(self.seen)}", origin=self.name),)


class Raises(Base):
    def __init__(self, name: str, consumes: tuple[type, ...]) -> None:
        super().__init__(name)
        self.consumes = consumes

    def feed(self, item: Any) -> Sequence[Any]:
        raise RuntimeError("boom")

    def tick(self, now: float) -> Sequence[Any]:
        raise RuntimeError("tick boom")


class Later:
    """An asynchronous actuator: acts on the next poll."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: list[Command] = []
        self.polls = 0

    def submit(self, cmd: Command) -> Sequence[CommandOutcome]:
        self.pending.append(cmd)
        return ()

    def poll(self, now: float) -> Sequence[CommandOutcome]:
        self.polls += 1
        out = [outcome(c, "acted", now, latency_s=now - c.ts) for c in self.pending]
        self.pending.clear()
        return out

    def counters(self) -> dict[str, int | float]:
        return {"polls": self.polls}

    def close(self) -> None:
        pass


class BadSink(MemorySink):
    name = "bad"

    def publish(self, report: dict[str, Any], payload: bytes) -> None:
        raise OSError(28, "No space left on device")


def det(ts: float, ident: str) -> Detection:
    return Detection(ts=ts, kind="test.hit", severity="high", score=0.9,
                     subject=Subject("device", ident), evidence=[Evidence("because")],
                     route=["ops"], detector="detector")


def make(stages: list[Any], actuators: Sequence[Any] = (),
         sinks: Sequence[Any] | None = None) -> tuple[Pipeline, MemorySink]:
    mem = MemorySink()
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(b"k" * 32),
                   ids=IdFactory("t"), sinks=[*(sinks or ()), mem])
    return Pipeline(stages, rep, actuators=actuators, status_interval_s=1000.0), mem


def kinds(mem: MemorySink) -> list[str]:
    return [r["kind"] for r in mem.reports]


def status(mem: MemorySink) -> dict[str, Any]:
    return mem.reports[-1]["evidence"][0]["features"]  # type: ignore[no-any-return]


def test_outputs_are_routed_by_type_and_detections_reach_stages_before_the_reporter() -> None:
    order: list[str] = []

    class Watch(Base):
        consumes = (Detection,)

        def feed(self, item: Detection) -> Sequence[Any]:
            order.append(f"stage:{item.subject.id}")
            return ()

    class Sink(MemorySink):
        def publish(self, report: dict[str, Any], payload: bytes) -> None:
            order.append(f"sink:{report['kind']}")

    d, x, w = Doubler("d"), Detector("x"), Watch("w")
    p, mem = make([d, x, w], sinks=[Sink()])
    p.run([Ping(float(i), i) for i in range(1, 7)])
    assert [r.n for r in x.seen] == [2, 4, 6, 8, 10, 12]
    assert [r["subject"]["id"] for r in mem.reports if r["kind"] == "test.hit"] == \
        ["x6", "x12"]
    assert order[:4] == ["stage:x6", "sink:test.hit", "stage:x12", "sink:test.hit"]
    st = status(mem)
    # Pongs are outputs, not inputs: records counts what came in from the stream
    assert st["records"] == 6 + 6 and st["detections"] == 2
    assert st["d.seen"] == 6 and st["x.seen"] == 6
    assert "commands" not in st  # no command ever: the status is as before


def test_unrouted_records_are_counted() -> None:
    p, mem = make([Doubler("d")])
    p.run([Pong(1.0, 1), Ping(2.0, 1)])
    assert p.unrouted == {"Pong": 2}


def test_commands_go_to_the_named_actuator_and_outcomes_come_back_as_records() -> None:
    act = DryRunActuator("firewall")
    r = Responder("resp", "firewall")
    p, mem = make([Doubler("d"), Detector("x"), r], actuators=[act])
    p.run([Ping(float(i), i) for i in range(1, 7)])
    assert [c.args["id"] for c in act.commands] == ["x6", "x12"]
    assert [o.status for o in r.outcomes] == ["dry_run", "dry_run"]
    assert [o.correlation_id for o in r.outcomes] == ["resp-1", "resp-2"]
    st = status(mem)
    assert st["commands"] == 2 and st["commands.dry_run"] == 2
    assert st["actuator.firewall.commands"] == 2


def test_unknown_target_is_rejected_and_late_commands_are_not_submitted() -> None:
    act = DryRunActuator("firewall")
    r1 = Responder("r1", "carrier")  # no such actuator
    r2 = Responder("r2", "firewall", deadline_s=-1.0)  # already past its deadline
    p, mem = make([Doubler("d"), Detector("x"), r1, r2], actuators=[act])
    p.run([Ping(3.0, 3)])
    assert act.commands == []
    assert [(o.status, o.target) for o in r1.outcomes] == [("rejected", "carrier")]
    assert "no actuator named 'carrier'" in r1.outcomes[0].detail
    assert [o.status for o in r2.outcomes] == ["too_late"]
    assert status(mem)["commands.rejected"] == 1


def test_asynchronous_outcomes_arrive_on_a_tick() -> None:
    act = Later("station")
    r = Responder("resp", "station")
    p, mem = make([Doubler("d"), Detector("x"), r], actuators=[act])
    p.run([Ping(3.0, 3), Ping(3.5, 1), Ping(5.0, 1)])
    assert [o.status for o in r.outcomes] == ["acted"]
    assert r.outcomes[0].ts == 5.0 and r.outcomes[0].latency_s == pytest.approx(2.0)


def test_a_raising_stage_actuator_and_sink_are_counted_and_survived(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken(DryRunActuator):
        def submit(self, cmd: Command) -> Sequence[CommandOutcome]:
            raise ConnectionError("controller gone")

    bad = Raises("flaky", (Ping,))
    r = Responder("resp", "station")
    p, mem = make([bad, Doubler("d"), Detector("x"), r], actuators=[Broken("station")],
                  sinks=[BadSink()])
    with caplog.at_level(logging.ERROR):
        p.run([Ping(float(i), i) for i in range(1, 40)])
    # everything downstream of the failures still happened
    assert len([k for k in kinds(mem) if k == "test.hit"]) == 13
    assert [o.status for o in r.outcomes] == ["failed"] * 13
    assert "ConnectionError: controller gone" in r.outcomes[0].detail
    st = status(mem)
    # 39 feeds + ticks (one per second of event time after the first)
    assert st["stage.flaky.errors"] == 39 + 38
    assert st["actuator.station.errors"] == 13
    assert st["sink.bad.errors"] == 13  # counted when the final status was built ...
    assert p.failures.counts["sink.bad"] == 14  # ... which then failed there too
    assert st["sink.memory.written"] == 13
    # logged in full three times, then at 10 and 100 failures only
    assert caplog.text.count("stage flaky failed") == 3
    assert "stage flaky has failed 10 times" in caplog.text
    assert caplog.text.count("sink bad failed") == 3


def test_a_detection_that_cannot_be_reported_is_counted_against_its_detector() -> None:
    class Wrong(Base):
        consumes = (Ping,)

        def feed(self, item: Ping) -> Sequence[Any]:
            d = det(item.ts, "y")
            d.severity = "apocalyptic"
            return (d,)

    p, mem = make([Wrong("w")])
    p.run([Ping(1.0, 1), Ping(2.0, 2)])
    assert status(mem)["stage.detector.errors"] == 2


def test_two_actuators_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two actuators"):
        make([], actuators=[DryRunActuator("a"), DryRunActuator("a")])


class Folder(Base):
    """A folding stage: feed_many gets runs of Pings; tick records what it had then."""

    consumes = (Ping,)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.runs: list[int] = []
        self.at_tick: list[tuple[float, int]] = []

    def feed_many(self, items: Sequence[Ping], on_error: Any) -> None:
        self.runs.append(len(items))
        for it in items:
            if it.n == 13:
                on_error(ValueError("thirteen"))
                continue
            self.seen.append(it)

    def tick(self, now: float) -> Sequence[Any]:
        self.at_tick.append((now, len(self.seen)))
        return ()


def test_folding_stages_get_runs_handed_over_before_each_tick() -> None:
    """A stage with feed_many sees every record, in order, and at each tick exactly
    the records a per-record feed would have had by then; its failures count as
    the stage's."""
    f, plain = Folder("f"), Folder("g")
    plain.feed_many = None  # type: ignore[assignment,method-assign]  # per record
    pings = [Ping(1.0 + i * 0.25, i) for i in range(40)]
    p, mem = make([f])
    p.run(pings)
    q, _ = make([plain])
    q.run(pings)
    assert [r.n for r in f.seen] == [i for i in range(40) if i != 13]
    assert sum(f.runs) == 40 and len(f.runs) > 1  # in runs, not one by one
    assert f.at_tick == [(t, n - (n > 13)) for t, n in plain.at_tick]
    assert p.failures.counts == {"stage.f": 1}
    assert status(mem)["f.seen"] == 39
    # Fed one record at a time (live), it is folded at once.
    f2 = Folder("f2")
    r, _ = make([f2])
    r.feed(Ping(5.0, 1))
    assert [x.n for x in f2.seen] == [1]
