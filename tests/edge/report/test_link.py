"""The durable link against a real mosquitto: presence, heartbeat, bounds while the
broker is down, the downlink round trip, and rc=4 on the plain sink."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import Config, MqttSection
from edge.downlink.envelope import seal
from edge.report.durable import build_link
from edge.report.link import MqttLink
from edge.report.outbox import Outbox
from edge.report.topics import (
    downlink_topic,
    heartbeat_topic,
    report_filter,
    response_topic,
    status_topic,
)
from edge.security import signing
from simulators.broker import LocalBroker
from simulators.subscriber import ReportSubscriber

CHILD = Path(__file__).with_name("agent_child.py")


def _cfg(port: int, **kw: object) -> MqttSection:
    base: dict[str, object] = dict(enabled=True, host="127.0.0.1", port=port,
                                   backoff_base_s=0.05, backoff_cap_s=0.3,
                                   connect_timeout_s=2.0, heartbeat_s=0.5,
                                   drain_timeout_s=5.0)
    base.update(kw)
    return MqttSection(**base)  # type: ignore[arg-type]


def _rep(i: int, severity: str = "high", kind: str = "simbox.sim") -> dict[str, object]:
    return {"id": f"R{i:025d}", "kind": kind, "severity": severity, "pad": "x" * 400}


def test_presence_birth_will_heartbeat(tmp_path: Path) -> None:
    with LocalBroker(extra_conf="log_type all") as b:
        status = ReportSubscriber(b.host, b.port, status_topic("afe/v1", "s1", "a1"),
                                  client_id="st")
        hb = ReportSubscriber(b.host, b.port, heartbeat_topic("afe/v1", "s1", "a1"),
                              client_id="hb")
        # a real agent process, killed without warning: the broker sends its will
        child = subprocess.Popen([sys.executable, str(CHILD), b.host, str(b.port),
                                  str(tmp_path / "c"), "50", "1000", "stay"],
                                 stdout=subprocess.PIPE)
        assert child.stdout is not None
        assert status.wait_for(1, 10)
        birth = status.reports[0]
        assert birth["state"] == "online" and birth["boot_seq"] == 1
        assert birth["versions"]["paho"] and len(birth["config_hash"]) == 64
        assert child.stdout.readline().strip() == b"done", b.log_text()[-3000:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert status.wait_for(2, 10)
        assert status.reports[1]["state"] == "offline"
        assert status.reports[1]["reason"] == "lost"
        # an in-process link: heartbeat fields, then a clean close says "shutdown"
        cfg = Config()
        cfg.agent.site, cfg.agent.id, cfg.agent.data_dir = "s1", "a1", tmp_path / "c"
        cfg.mqtt = _cfg(b.port)
        link = build_link(cfg)
        link.set_counters_provider(lambda: {"callplane.sims": 7})
        assert status.wait_for(3, 10)
        assert status.reports[2]["state"] == "online" and status.reports[2]["boot_seq"] == 2
        assert hb.wait_for(1, 5)
        h = hb.reports[0]
        assert {"depth", "oldest_pending_age_s", "drops", "bytes"} <= set(h["outbox"])
        assert {"rss_bytes", "cpu_s", "disk_free_bytes"} <= set(h["process"])
        assert h["process"]["rss_bytes"] > 10_000_000
        assert "last_ack" in h["link"] and h["counters"] == {"callplane.sims": 7}
        link.close()
        assert status.wait_for(4, 10)
        assert status.reports[3]["state"] == "offline"
        assert status.reports[3]["reason"] == "shutdown"
        # the retained value is the latest state
        late = ReportSubscriber(b.host, b.port, status_topic("afe/v1", "s1", "a1"),
                                client_id="late")
        assert late.wait_for(1, 5) and late.reports[0]["reason"] == "shutdown"
        for s in (status, hb, late):
            s.close()


def test_bounds_while_broker_down_then_drain(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Broker down: the outbox fills to its cap, drops health, then low, keeps the
    alerts, counts every drop; when the broker comes up everything kept arrives."""
    b = LocalBroker(persistence=True).start()
    # the receiving side's persistent session exists (and is saved) before the outage
    sub = ReportSubscriber(b.host, b.port, report_filter("afe/v1"), client_id="b",
                           session_expiry_s=600)
    time.sleep(2.2)
    b.kill()
    ob = Outbox(tmp_path / "ob.sqlite", max_bytes=640_000)  # ~300 kB of it for rows
    with caplog.at_level(logging.WARNING):
        link = MqttLink(_cfg(b.port), ob, site="s1", agent="a1", data_dir=tmp_path)
        n = 0
        for sev, kind, k in (("info", "agent.status", 150), ("low", "simbox.sim", 150),
                             ("high", "simbox.sim", 450)):
            for _ in range(k):
                link.publish(_rep(n, sev, kind), orjson.dumps(_rep(n, sev, kind)))
                n += 1
        st = ob.stats()
        assert st.bytes <= st.max_bytes
        assert st.by_class["health"] == 0 and st.by_class["alert"] == 450
        assert st.drops["health.cap"] == 150 and st.drops.get("low.cap", 0) > 0
        assert "alert.cap" not in st.drops
        assert not link.connected.is_set()
        assert "broker unreachable" in caplog.text and "dropped" in caplog.text
        assert link.counters()["dropped"] == sum(st.drops.values())
        kept = {p.id for p in _all(ob)}
        b.start()
        try:
            assert link.wait_connected(10)
            assert link.wait_drained(20)
            assert sub.wait_distinct(len(kept), 10)
            assert set(sub.ids) == kept
        finally:
            sub.close()
            link.close()
            b.stop()


def _all(ob: Outbox) -> list:
    out, seq = [], 0
    while batch := ob.fetch(seq, 1000):
        out += batch
        seq = batch[-1].seq
    return out


def test_downlink_round_trip(tmp_path: Path) -> None:
    with LocalBroker() as b:
        cfg = Config()
        cfg.agent.site, cfg.agent.id, cfg.agent.data_dir = "s1", "a1", tmp_path
        cfg.mqtt = _cfg(b.port, heartbeat_s=60.0)
        cfg.downlink.max_bytes = 1024
        issuer = signing.generate_private_key()
        cfg.security.issuer_keys = [signing.public_key_text(issuer)]
        link = build_link(cfg)
        acks = ReportSubscriber(b.host, b.port, response_topic("afe/v1", "s1", "a1"),
                                client_id="ops")
        assert link.wait_connected(10)
        time.sleep(0.3)  # the agent's SUBSCRIBE is in
        ops = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        ops.connect(b.host, b.port)
        ops.loop_start()
        def sealed(what: str, body: bytes) -> bytes:
            return seal(what, body, issuer)

        sent = [
            ("command", sealed("command", b'{"id": "m1", "command": '), "malformed JSON"),
            ("command", orjson.dumps({"id": "m2", "command": "ping", "pad": "x" * 2000}),
             "too large"),
            ("config", sealed("config", orjson.dumps({"id": "m3", "set": "threshold=0"})),
             "schema"),
            ("command", sealed("command", orjson.dumps({"id": "m4", "version": 1,
                                                        "command": "rm_rf"})),
             "unknown command"),
            ("command", orjson.dumps({"id": "m6", "version": 2, "command": "ping"}),
             "signature required"),
            ("command", sealed("config", orjson.dumps({"id": "m7", "version": 2,
                                                       "command": "ping"})),
             "bad signature"),  # signed for another kind
            ("command", sealed("command", orjson.dumps({"id": "m5", "version": 3,
                                                        "command": "outbox_stats"})), ""),
        ]
        for i, (what, payload, _) in enumerate(sent):
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = f"corr-{i}".encode()
            ops.publish(downlink_topic("afe/v1", "s1", "a1", what), payload, qos=1,
                        properties=props).wait_for_publish(5)
        assert acks.wait_for(len(sent), 10), acks.reports
        by_corr = {m.properties.CorrelationData.decode(): r  # type: ignore[union-attr]
                   for m, r in zip(acks.messages, acks.reports, strict=True)}
        for i, (_, _, why) in enumerate(sent):
            ack = by_corr[f"corr-{i}"]
            if why:
                assert ack["ok"] is False and why in ack["reason"], ack
            else:
                assert ack["ok"] is True and ack["id"] == "m5", ack
                assert ack["result"]["signed_by"] == signing.key_id(issuer)
                assert ack["result"]["depth"] == 0
        assert link.connected.is_set()  # still up and unchanged after all of it
        ops.loop_stop()
        ops.disconnect()
        acks.close()
        link.close()


def test_plain_sink_rc4_is_queued_not_failed(tmp_path: Path) -> None:
    from edge.report.mqtt_sink import MqttSink

    with LocalBroker() as b:
        sink = MqttSink(_cfg(b.port), site="s1", agent="a1")
        sink._client.reconnect_delay_set(0.05, 0.3)
        b.kill()
        time.sleep(0.3)
        for i in range(5):
            sink.publish(_rep(i), orjson.dumps(_rep(i)))
        c = sink.counters()
        assert c["queued_offline"] == 5 and c["pending"] == 5
        b.start()
        sink.close(timeout_s=10)
        assert sink.counters()["acked"] == 5
