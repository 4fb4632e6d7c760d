"""Event-time bounds (edge/timeguard.py): poison timestamps over UDP, in followed files
and in replay are counted malformed and never move event time (issue 9)."""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge.assembly import assemble
from edge.config import Config, load_config
from edge.live import run_live
from edge.pipeline import Pipeline, merge_by_time
from edge.records import Malformed
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import JsonlSink
from edge.telecom.callplane.build import build_stages
from edge.timeguard import CONFIRM_RECORDS, MAX_EPOCH, GuardedSource
from simulators.telecom.events import EventSimConfig, EventSimulator
from tests.edge.test_live import _wait_bound

BASE = 1_767_225_600.0
TEN_YEARS = 10 * 365 * 86_400.0
POISON = [1e17, 1.79e308, float("nan"), float("inf"), -5.0, MAX_EPOCH + 1]


@dataclass
class Rec:
    ts: Any


class ListSource:
    name = "list"

    def __init__(self, recs: list[Any]) -> None:
        self.recs = recs

    def __iter__(self) -> Any:
        return iter(self.recs)

    def counters(self) -> dict[str, int | float]:
        return {}

    def close(self) -> None:
        pass


def _feed(stamps: list[Any], **kw: Any) -> tuple[list[Any], GuardedSource]:
    g = GuardedSource(ListSource([Rec(t) for t in stamps]), live=False, **kw)
    return list(g), g


def _ok(out: list[Any]) -> list[float]:
    return [r.ts for r in out if type(r) is Rec]


@pytest.mark.parametrize("poison", POISON)
def test_poison_first_record_does_not_set_the_feed_time(poison: float) -> None:
    stamps = [poison] + [BASE + i for i in range(20)]
    out, g = _feed(stamps)
    assert _ok(out) == [BASE + i for i in range(20)]
    bad = [r for r in out if type(r) is Malformed]
    assert len(bad) == 1 and bad[0].ts is None and "ts" in bad[0].reason
    assert g.counters()["ts_rejected"] == 1


def test_ten_years_ahead_mid_feed_is_dropped_and_the_feed_goes_on() -> None:
    stamps = [BASE + i for i in range(30)] + [BASE + TEN_YEARS] + \
        [BASE + 30 + i for i in range(30)]
    out, g = _feed(stamps)
    assert _ok(out) == sorted(set(stamps) - {BASE + TEN_YEARS})
    assert g.ts_rejected == 1 and "+315" in next(
        r.reason for r in out if type(r) is Malformed)


def test_a_real_gap_is_followed_once_confirmed() -> None:
    gap = 3 * 86_400.0
    stamps = [BASE + i for i in range(20)] + [BASE + gap + i for i in range(100)]
    out, g = _feed(stamps)
    assert _ok(out) == stamps  # held, then released in order: nothing lost
    assert g.ts_rejected == 0 and g.jumps_followed == 1


def test_a_short_burst_of_outliers_is_rejected_when_the_feed_returns() -> None:
    burst = [BASE + 5 * 86_400.0 + i for i in range(CONFIRM_RECORDS - 1)]
    stamps = [BASE + i for i in range(20)] + burst + [BASE + 20 + i for i in range(5)]
    out, g = _feed(stamps)
    assert _ok(out) == [BASE + i for i in range(25)]
    assert g.ts_rejected == len(burst)


def test_malformed_records_with_impossible_ts_lose_it() -> None:
    recs = [Rec(BASE + i) for i in range(10)] + [Malformed("s", "line 11", "imsi bad", 1e300)]
    out = list(GuardedSource(ListSource(recs), live=False))
    assert out[-1].ts is None and out[-1].reason.startswith("imsi bad; ts")


def test_live_sources_are_bounded_by_the_wall_clock() -> None:
    now = [BASE]
    recs = [Rec(BASE - 1e6), Rec(BASE + 599), Rec(BASE + 601), Rec(float("nan"))]
    g = GuardedSource(ListSource(recs), live=True, max_future_s=600, clock=lambda: now[0])
    out = list(g)
    assert [type(r) for r in out] == [Rec, Rec, Malformed, Malformed]
    assert "ahead of the wall clock" in out[2].reason
    g = GuardedSource(ListSource(recs[:1]), live=True, max_past_s=3600,
                      clock=lambda: now[0])
    assert "behind the wall clock" in next(iter(g)).reason


# ----------------------------------------------------------------------------- end to end


def _sim_lines() -> list[bytes]:
    sim = EventSimulator(EventSimConfig(seed=31337, subscribers=300, simbox_devices=2,
                                        ports_per_device=4, hours=3, evasion=("naive",)))
    return [orjson.dumps(e) for e in sim.events()]


def _detections(sources: list[Any], out: Path) -> list[dict[str, Any]]:
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(b"timeguard-key-0001"),
                   ids=IdFactory("s/a/x"), sinks=[JsonlSink(out)])
    pipe = Pipeline(build_stages(Config()), rep, status_interval_s=3600)
    pipe.run(merge_by_time(sources))
    rep.close()
    return [r for r in map(orjson.loads, out.read_bytes().splitlines())
            if r["kind"] != "agent.status"]


def _replay_sources(path: Path) -> list[Any]:
    return assemble(Config(), mode="replay", sinks=[], inputs={"events": [path]},
                    domains=["telecom"]).sources


def test_ten_years_ahead_event_no_longer_blinds_replay(tmp_path: Path) -> None:
    lines = _sim_lines()
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    mid = orjson.loads(lines[len(lines) // 20])
    mid["ts"] += TEN_YEARS
    poisoned = tmp_path / "poisoned.jsonl"
    poisoned.write_bytes(b"\n".join(lines[:len(lines) // 20] + [orjson.dumps(mid)]
                                    + lines[len(lines) // 20:]) + b"\n")
    want = _detections(_replay_sources(clean), tmp_path / "a.jsonl")
    assert len(want) >= 4
    # the finding: unguarded, one such event stops every later detection
    from drivers.events.sources import JsonlEventFile

    blind = _detections([JsonlEventFile(poisoned)], tmp_path / "b.jsonl")
    assert len(blind) < len(want)
    srcs = _replay_sources(poisoned)
    got = _detections(srcs, tmp_path / "c.jsonl")
    assert [(d["kind"], d["subject"]["id"]) for d in got] == \
        [(d["kind"], d["subject"]["id"]) for d in want]
    assert srcs[0].counters()["ts_rejected"] == 1


def _poison_lines() -> list[bytes]:
    imsi = "460009999999999"
    lines = []
    for i, bad in enumerate([1e17, 1.79e308, BASE + TEN_YEARS]):
        lines.append(orjson.dumps({"ts": bad, "type": "call_start", "imsi": imsi,
                                   "peer": f"8613{i:09d}"}))
    lines.append(b'{"ts": 1e400, "type": "attach", "imsi": "460009999999999"}')
    for i in range(40):
        common = {"imsi": imsi, "imei": "86000000000001", "cell": "46000-1-1", "dir": "mo",
                  "peer": f"8613{i:09d}", "call_id": f"c{i}"}
        lines.append(orjson.dumps({"ts": BASE + i * 60, "type": "call_start", **common}))
        lines.append(orjson.dumps({"ts": BASE + i * 60 + 30, "type": "call_end", **common,
                                   "duration_s": 20}))
    return lines


def _run_agent(cfg_path: Path, out: Path, send: Any = None, wait_s: float = 1.0,
               port: int | None = None) -> dict:
    cfg = load_config(cfg_path)
    stop = threading.Event()
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.setdefault("rc", run_live(cfg, stop=stop)))
    t.start()
    if port is not None:
        _wait_bound(port)
    else:
        time.sleep(0.4)
    if send is not None:
        send()
    time.sleep(wait_s)
    stop.set()
    t.join(15)
    assert not t.is_alive(), "agent did not stop"
    assert box.get("rc") == 0, "agent crashed"
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    final = [r for r in reports if r["kind"] == "agent.status"][-1]
    assert final["evidence"][0]["features"]["final"] is True
    return final["evidence"][0]["features"]  # type: ignore[no-any-return]


def test_poison_datagrams_over_udp_are_counted_not_fatal(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "reports.jsonl"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[agent]\nsite = "s"\nid = "a"\ndata_dir = "{tmp_path}/data"\n'
                   f'[inputs.events]\nudp_listen = "127.0.0.1:{port}"\n'
                   f'[outputs.jsonl]\npath = "{out}"\n')

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for ln in _poison_lines():
                tx.sendto(ln, ("127.0.0.1", port))
                time.sleep(0.002)

    feats = _run_agent(cfg, out, send, port=port)
    src = f"source.events:udp:{port}"
    assert feats[f"{src}.ts_rejected"] == 3       # 1e17, 1.79e308, ten years ahead
    assert feats["malformed"] == 4                 # + 1e400 (not a finite number)
    assert feats[f"{src}.decoded"] == 83
    assert all(math.isfinite(v) for v in feats.values() if isinstance(v, float))


def test_poison_in_a_followed_file_survives_restarts(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"\n".join(_poison_lines()) + b"\n")
    for run in range(2):  # the followed file is read again from the start
        out = tmp_path / f"reports{run}.jsonl"
        cfg = tmp_path / "agent.toml"
        cfg.write_text(f'[agent]\nsite = "s"\nid = "a"\ndata_dir = "{tmp_path}/data"\n'
                       f'[inputs.events]\nfiles = ["{feed}"]\nfollow = true\n'
                       f'[outputs.jsonl]\npath = "{out}"\n')
        feats = _run_agent(cfg, out)
        assert feats["source.events:feed.jsonl.ts_rejected"] == 3
        assert feats["malformed"] == 4


@pytest.mark.parametrize("ts", [1e17, 1.79e308, float("nan"), float("inf"), -1.0])
def test_reporter_refuses_impossible_times_with_a_clear_error(ts: float) -> None:
    """Second line of defence: formatting 1e17 raised OverflowError in the reporter."""
    from edge.detection import Detection, Subject

    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(b"timeguard-key-0001"),
                   ids=IdFactory("s/a/x"), sinks=[])
    det = Detection(ts=ts, kind="agent.status", severity="info", score=0.0,
                    subject=Subject("agent", "a"), evidence=[], route=["ops"])
    with pytest.raises(ValueError, match="impossible"):
        rep.build(det)
