"""Live settings: every key a downlink config update accepts changes behaviour after
the acknowledgement, applied on the pipeline thread."""

from __future__ import annotations

import copy
import logging
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from edge.assembly import assemble, make_sinks
from edge.config import Config, get_key, parse_config
from edge.downlink.envelope import seal
from edge.downlink.handler import DownlinkHandler
from edge.downlink.runtime import RUNTIME_KEYS, RuntimeConfig
from edge.downlink.watchlist import WatchlistStore
from edge.pipeline import merge_by_time
from edge.report.sinks import MemorySink
from edge.report.topics import downlink_topic, heartbeat_topic, response_topic
from edge.security import signing
from edge.settings import Settings, connect_runtime
from simulators.broker import LocalBroker
from simulators.subscriber import ReportSubscriber

ISSUER = signing.generate_private_key()
KEYS = signing.trusted_keys([signing.public_key_text(ISSUER)])
T = "afe/v1/s1/a1/down/"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulators.telecom.events import EventSimConfig, write_events

    ev = tmp_path_factory.mktemp("day") / "day.jsonl"
    write_events(EventSimConfig(seed=811, subscribers=600, hours=4, simbox_devices=2), ev)
    return ev


@pytest.fixture(scope="module")
def masked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two masked GoIPs (no signature at all): only the behaviour model finds them."""
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    d = tmp_path_factory.mktemp("cap")
    simulate_pcap(PcapSimConfig(seed=813, duration_s=420.0, softphones=2, ipphones=1,
                                pbx_trunks=1, goip_plain=0, goip_masked=2,
                                simbank_clients=0, lines=4, rtp=False),
                  d / "m.pcap", d / "m.truth.json")
    return d / "m.pcap"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, day: Path) -> list[dict[str, Any]]:
    """The day's reports without any update (the runs below differ only by one)."""
    return _replay(tmp_path_factory.mktemp("base"), {"events": [day]}, None)[0]


def _cfg(tmp: Path) -> Config:
    return parse_config(f'[agent]\nsite = "s1"\nid = "a1"\ndata_dir = "{tmp}/d"\n'
                        'status_interval_s = 1800\n'
                        '[privacy]\nkey = "settings-test-key-001"\n')


def _replay(tmp: Path, inputs: dict[str, list[Path]],
            changes: dict[str, Any] | None) -> tuple[list[dict[str, Any]], Any]:
    """Replay ``inputs``; with ``changes``, a signed config update arrives on another
    thread (as from the MQTT link) and the run goes on once it is queued. Returns the
    reports and the acknowledgement."""
    cfg = _cfg(tmp)
    mem = MemorySink()
    agent = assemble(cfg, mode="replay", sinks=[mem], inputs=inputs)
    ack: list[Any] = []
    if changes is not None:
        handler = DownlinkHandler(cfg.downlink, prefix="afe/v1", site="s1", agent="a1",
                                  watchlists=WatchlistStore(tmp), state_dir=tmp, keys=KEYS,
                                  runtime=RuntimeConfig(cfg, tmp))
        assert agent.settings is not None
        connect_runtime(handler.runtime, agent.settings)
        msg = seal("config", orjson.dumps({"id": "u1", "version": 1, "set": changes}), ISSUER)
        th = threading.Thread(target=lambda: ack.append(handler.handle(T + "config", msg)))
        th.start()
        deadline = time.monotonic() + 5
        while not agent.settings.pending() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert agent.settings.pending() and not ack  # the ack waits for the pipeline
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    if changes is not None:
        th.join(5)
        assert ack and ack[0].ok, ack
    return mem.reports, (ack[0] if ack else None)


def _kinds(reports: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in reports if r["kind"] == kind]


def test_settings_apply_on_the_pipeline_thread_only() -> None:
    cfg = Config()
    s = Settings(cfg)
    seen: list[tuple[int, dict[str, Any]]] = []
    s.subscribe(["detectors.ipplane.threshold"], lambda ch: seen.append(
        (threading.get_ident(), ch)))
    with pytest.raises(ValueError, match="not changeable at runtime: mqtt.host"):
        s.subscribe(["mqtt.host"], lambda ch: None)
    result: list[bool] = []
    th = threading.Thread(target=lambda: result.append(
        s.submit({"detectors.ipplane.threshold": 0.7}, wait_s=5)))
    th.start()
    time.sleep(0.05)
    assert cfg.detectors.ipplane.threshold is None and not result  # not applied yet
    while not s.pending():
        time.sleep(0.001)
    assert s.apply_pending() == 1
    th.join(5)
    assert result == [True] and cfg.detectors.ipplane.threshold == 0.7
    assert seen == [(threading.get_ident(), {"detectors.ipplane.threshold": 0.7})]
    # unanswered: the submitter is told, the change still applies at the next turn
    assert threading.Thread(target=lambda: result.append(
        s.submit({"agent.status_interval_s": 5.0}, wait_s=0.05))).start() is None
    time.sleep(0.2)
    assert result[-1] is False and s.apply_pending() == 1
    assert cfg.agent.status_interval_s == 5.0


def test_every_runtime_key_has_a_behaviour_test() -> None:
    # the keys below are each exercised in this module; a new runtime key (the core's
    # or one a domain declares) needs a test
    from edge.settings import runtime_keys

    assert runtime_keys() == RUNTIME_KEYS == {"agent.log_level", "agent.status_interval_s", "mqtt.heartbeat_s",
                            "detectors.callplane.threshold", "detectors.callplane.min_calls",
                            "detectors.ipplane.threshold"}


def test_status_interval_after_the_ack(tmp_path: Path, day: Path,
                                      baseline: list[dict[str, Any]]) -> None:
    before = baseline
    after, ack = _replay(tmp_path / "b", {"events": [day]}, {"agent.status_interval_s": 600})
    assert ack.result["applied"] == {"agent.status_interval_s": 600.0}
    n0, n1 = len(_kinds(before, "agent.status")), len(_kinds(after, "agent.status"))
    assert n1 >= 2.5 * n0 and n0 >= 6  # 4 h: every 30 min before, every 10 min after


def test_callplane_threshold_after_the_ack(tmp_path: Path, day: Path,
                                          baseline: list[dict[str, Any]]) -> None:
    before = baseline
    after, _ = _replay(tmp_path / "b", {"events": [day]},
                       {"detectors.callplane.threshold": 1.0})
    by_model = [r for r in _kinds(before, "simbox.sim") if r["model"] is not None]
    assert by_model  # the model decided some of them before ...
    assert not [r for r in _kinds(after, "simbox.sim") if r["model"] is not None]  # not now


def test_callplane_min_calls_after_the_ack(tmp_path: Path, day: Path,
                                          baseline: list[dict[str, Any]]) -> None:
    before = baseline
    after, _ = _replay(tmp_path / "b", {"events": [day]},
                       {"detectors.callplane.min_calls": 100_000})
    # No SIM reaches 100,000 calls: only SIMs whose device or cell group already gives
    # evidence are judged (from detectors.callplane.early_min_calls calls), the many
    # ordinary SIMs that reach the default 6 calls no longer are
    judged_before, judged_after = _counter(before, "callplane.scored"), \
        _counter(after, "callplane.scored")
    assert 0 < judged_after < judged_before / 2
    subjects = {r["subject"]["id"] for r in _kinds(after, "simbox.sim")}
    assert subjects <= {r["subject"]["id"] for r in _kinds(before, "simbox.sim")}


def _counter(reports: list[dict[str, Any]], name: str) -> float:
    """A counter of the run's last status report (its evidence carries the counters)."""
    feats = _kinds(reports, "agent.status")[-1]["evidence"][0]["features"]
    assert name in feats, f"no counter {name} in the status report"
    return float(feats[name])


def test_ipplane_threshold_after_the_ack(tmp_path: Path, masked: Path) -> None:
    before, _ = _replay(tmp_path / "a", {"pcap": [masked]}, None)
    raised, _ = _replay(tmp_path / "b", {"pcap": [masked]},
                        {"detectors.ipplane.threshold": 1.0})
    assert len(_kinds(before, "goip.endpoint")) == 2
    assert all(r["model"] is not None for r in _kinds(before, "goip.endpoint"))
    # a threshold of 1.0: the model decides nothing any more; what is still reported
    # rests on the relay rule, and its evidence says the model's score was below
    assert not [r for r in _kinds(raised, "goip.endpoint") if r["model"] is not None]
    for r in _kinds(raised, "goip.endpoint"):
        reasons = [e["reason"] for e in r["evidence"]]
        assert any(x.startswith("relay:") for x in reasons), reasons
        assert any("below its threshold 1.0000" in x for x in reasons), reasons


def test_log_level_after_the_ack(tmp_path: Path, day: Path) -> None:
    root = logging.getLogger()
    old = root.level
    try:
        root.setLevel(logging.WARNING)
        _replay(tmp_path, {"events": [day]}, {"agent.log_level": "debug"})
        assert logging.getLogger("edge.anything").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(old)


def test_over_mqtt_heartbeat_and_status_change_after_the_ack(tmp_path: Path) -> None:
    """The real path: a signed update over MQTT, acked by the link after the pipeline
    thread (here: this test's loop, as in edge-agent run) applied it."""
    with LocalBroker() as b:
        cfg = _cfg(tmp_path)
        cfg.mqtt.enabled, cfg.mqtt.port, cfg.mqtt.heartbeat_s = True, b.port, 3600.0
        cfg.security.issuer_keys = [signing.public_key_text(ISSUER)]
        agent = assemble(cfg, mode="run", sinks=make_sinks(cfg))
        link = agent.reporter.sinks[0]
        acks = ReportSubscriber(b.host, b.port, response_topic("afe/v1", "s1", "a1"),
                                client_id="ops-acks")
        hb = ReportSubscriber(b.host, b.port, heartbeat_topic("afe/v1", "s1", "a1"),
                              client_id="ops-hb")
        try:
            assert link.wait_connected(10)
            time.sleep(0.3)  # the agent's SUBSCRIBE is in
            n_hb = len(hb.reports)
            ops = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            ops.connect(b.host, b.port)
            ops.loop_start()
            body = {"id": "live-1", "version": 1,
                    "set": {"mqtt.heartbeat_s": 1.0, "agent.status_interval_s": 5.0}}
            ops.publish(downlink_topic("afe/v1", "s1", "a1", "config"),
                        seal("config", orjson.dumps(body), ISSUER), qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 10
            while not acks.reports and time.monotonic() < deadline:
                agent.pipeline.apply_settings()  # the live loop's turn
                time.sleep(0.02)
            assert acks.reports and acks.reports[0]["ok"], acks.reports
            assert agent.pipeline.status_interval_s == 5.0  # applied before the ack
            assert hb.wait_for(n_hb + 2, 6)  # heartbeats every second now, not hourly
            ops.loop_stop()
            ops.disconnect()
        finally:
            acks.close()
            hb.close()
            agent.close()


# -- null: back to the value the agent started with -------------------------------

_NON_DEFAULT: dict[str, Any] = {
    "agent.log_level": "error", "agent.status_interval_s": 600.0, "mqtt.heartbeat_s": 5.0,
    "detectors.callplane.threshold": 1.0, "detectors.callplane.min_calls": 100_000,
    "detectors.ipplane.threshold": 1.0,
}


def _signed(version: int, changes: dict[str, Any]) -> bytes:
    return seal("config", orjson.dumps({"id": f"u{version}", "version": version,
                                        "set": changes}), ISSUER)


def test_every_runtime_key_has_a_reset_case() -> None:
    assert set(_NON_DEFAULT) == RUNTIME_KEYS


@pytest.mark.parametrize("key", sorted(_NON_DEFAULT))
def test_null_resets_a_key_through_the_signed_downlink(tmp_path: Path, key: str) -> None:
    """A signed update with ``null`` removes the runtime override: the key is back to
    its started value in the ack, in the live config, for the pipeline's subscribers,
    and after a restart."""
    root = logging.getLogger()
    old_level = root.level
    try:
        cfg = _cfg(tmp_path)
        started = get_key(cfg, key)
        settings = Settings(copy.deepcopy(cfg))
        seen: list[dict[str, Any]] = []
        settings.subscribe([key], seen.append)
        runtime = RuntimeConfig(cfg, tmp_path)
        connect_runtime(runtime, settings)
        handler = DownlinkHandler(cfg.downlink, prefix="afe/v1", site="s1", agent="a1",
                                  watchlists=WatchlistStore(tmp_path), state_dir=tmp_path,
                                  keys=KEYS, runtime=runtime)
        ack = handler.handle(T + "config", _signed(1, {key: _NON_DEFAULT[key]}))
        assert ack.ok, ack
        assert get_key(cfg, key) != started and get_key(settings.cfg, key) != started
        ack = handler.handle(T + "config", _signed(2, {key: None}))
        assert ack.ok, ack
        assert ack.result["applied"] == {key: started}  # the value it is back to
        assert get_key(cfg, key) == started and get_key(settings.cfg, key) == started
        assert seen[-1] == {key: started}
        stored = orjson.loads((tmp_path / "runtime-config.json").read_bytes())
        assert stored == {"version": 2, "set": {}}
        again = _cfg(tmp_path)  # a restart: the reset holds
        RuntimeConfig(again, tmp_path)
        assert get_key(again, key) == started
        if key == "agent.log_level":
            assert root.level == logging.INFO  # the started level, not "error"
    finally:
        root.setLevel(old_level)


def test_null_and_values_together_and_refusals(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    runtime = RuntimeConfig(cfg, tmp_path)
    runtime.apply({"detectors.callplane.threshold": 0.9, "mqtt.heartbeat_s": 7.0})
    got = runtime.apply({"detectors.callplane.threshold": None, "mqtt.heartbeat_s": 9.0})
    assert got == {"detectors.callplane.threshold": None, "mqtt.heartbeat_s": 9.0}
    assert runtime.overrides == {"mqtt.heartbeat_s": 9.0}
    with pytest.raises(ValueError, match="not changeable at runtime: mqtt.host"):
        runtime.apply({"mqtt.host": None})  # null is no way around the allowed keys
    assert cfg.mqtt.heartbeat_s == 9.0 and cfg.detectors.callplane.threshold is None


def _replay_updates(tmp: Path, inputs: dict[str, list[Path]],
                    updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replay after signed updates handled on the pipeline thread before the run (so
    they apply at once, in order); every ack must be ok."""
    cfg = _cfg(tmp)
    mem = MemorySink()
    agent = assemble(cfg, mode="replay", sinks=[mem], inputs=inputs)
    handler = DownlinkHandler(cfg.downlink, prefix="afe/v1", site="s1", agent="a1",
                              watchlists=WatchlistStore(tmp), state_dir=tmp, keys=KEYS,
                              runtime=RuntimeConfig(cfg, tmp))
    assert agent.settings is not None
    connect_runtime(handler.runtime, agent.settings)
    for i, changes in enumerate(updates, 1):
        ack = handler.handle(T + "config", _signed(i, changes))
        assert ack.ok, ack
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    return mem.reports


def test_detector_keys_reset_after_the_ack(tmp_path: Path, day: Path, masked: Path,
                                           baseline: list[dict[str, Any]]) -> None:
    """Set, then null: the detectors behave as with no update at all."""
    changed = _replay_updates(tmp_path / "c", {"events": [day]},
                              [{"detectors.callplane.threshold": 1.0,
                                "detectors.callplane.min_calls": 100_000,
                                "agent.status_interval_s": 600}])
    reset = _replay_updates(tmp_path / "r", {"events": [day]},
                            [{"detectors.callplane.threshold": 1.0,
                              "detectors.callplane.min_calls": 100_000,
                              "agent.status_interval_s": 600},
                             {"detectors.callplane.threshold": None,
                              "detectors.callplane.min_calls": None,
                              "agent.status_interval_s": None}])

    def shape(reports: list[dict[str, Any]]) -> tuple[int, int, int, float]:
        sims = _kinds(reports, "simbox.sim")
        return (len(sims), len([r for r in sims if r["model"] is not None]),
                len(_kinds(reports, "agent.status")), _counter(reports, "callplane.scored"))

    assert shape(changed) != shape(baseline)
    assert shape(reset) == shape(baseline)
    ip_changed = _replay_updates(tmp_path / "ic", {"pcap": [masked]},
                                 [{"detectors.ipplane.threshold": 1.0}])
    ip_reset = _replay_updates(tmp_path / "ir", {"pcap": [masked]},
                               [{"detectors.ipplane.threshold": 1.0},
                                {"detectors.ipplane.threshold": None}])
    assert not [r for r in _kinds(ip_changed, "goip.endpoint") if r["model"] is not None]
    reset_eps = _kinds(ip_reset, "goip.endpoint")
    assert len(reset_eps) == 2 and all(r["model"] is not None for r in reset_eps)  # own threshold again
