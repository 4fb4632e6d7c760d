"""End to end: simulated events -> replay -> MQTT (a mosquitto this test starts) -> subscriber."""

from __future__ import annotations

from pathlib import Path

from edge.cli.agent import main as agent_main
from edge.report.schema import validation_errors
from simulators.subscriber import ReportSubscriber
from simulators.telecom.events import EventSimConfig, write_events


def test_replay_reports_reach_subscriber(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    ev = tmp_path / "ev.jsonl"
    write_events(EventSimConfig(seed=5, subscribers=500, hours=4), ev)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f"""
[agent]
site = "bs-0042"
id = "gw1"
data_dir = "{tmp_path}/data"

[mqtt]
enabled = true
port = {broker.port}
""")
    sub = ReportSubscriber("127.0.0.1", broker.port, "afe/v1/bs-0042/gw1/report/#")
    out = tmp_path / "reports.jsonl"
    try:
        assert agent_main(["replay", "--config", str(cfg), "--events", str(ev), "--out",
                           str(out), "--mqtt", "--quiet"]) == 0
        written = out.read_bytes().splitlines()
        assert sub.wait_for(len(written), timeout_s=30)
    finally:
        sub.close()
    assert sub.bad == 0
    got = {r["id"]: r for r in sub.reports}
    import orjson

    sent = {orjson.loads(x)["id"] for x in written}
    assert sent <= set(got)
    assert any(r["kind"] == "simbox.sim" for r in got.values())
    for r in got.values():
        assert validation_errors(r) == []
        assert r["site"] == "bs-0042" and r["agent"] == "gw1"
