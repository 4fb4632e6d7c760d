"""Downlink validation and atomic application (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import Config, DownlinkSection
from edge.downlink.handler import DownlinkHandler
from edge.downlink.runtime import RuntimeConfig
from edge.downlink.signing import sign
from edge.downlink.watchlist import WatchlistStore, current_watchlist

T = "afe/v1/s1/a1/down/"


def _handler(tmp: Path, **kw: object) -> tuple[DownlinkHandler, Config]:
    cfg = Config()
    dl = DownlinkSection(max_bytes=2048, **kw)  # type: ignore[arg-type]
    h = DownlinkHandler(dl, prefix="afe/v1", site="s1", agent="a1",
                        watchlists=WatchlistStore(tmp, check_s=0.0),
                        runtime=RuntimeConfig(cfg, tmp))
    return h, cfg


def test_each_bad_message_is_rejected_with_its_reason(tmp_path: Path) -> None:
    h, _ = _handler(tmp_path)
    cases = {
        "malformed JSON": (T + "command", b'{"id": "c1", "command": '),
        "too large": (T + "command", orjson.dumps({"id": "c2", "command": "ping",
                                                   "args": {"x": "y" * 5000}})),
        "schema": (T + "config", orjson.dumps({"id": "c3", "set": {"a.b": [1, 2]}})),
        "unknown command 'selfdestruct'": (T + "command",
                                           orjson.dumps({"id": "c4",
                                                         "command": "selfdestruct"})),
        "unknown downlink topic": (T + "firmware", b"{}"),
    }
    for want, (topic, payload) in cases.items():
        ack = h.handle(topic, payload, b"corr-" + want[:4].encode())
        assert not ack.ok and want in ack.reason, (want, ack)
        assert ack.id is not None  # the correlation id, or the message's own id
    wrong = h.handle(T + "command", orjson.dumps({"id": "c5", "command": "ping",
                                                  "extra": 1}))
    assert "schema" in wrong.reason and "extra" in wrong.reason and wrong.id == "c5"
    assert h.handle(T + "command", b"[1,2]").reason.startswith("schema: expected a JSON object")
    ok = h.handle(T + "command", orjson.dumps({"id": "c6", "command": "ping"}))
    assert ok.ok and ok.result == {"pong": True}
    again = h.handle(T + "command", orjson.dumps({"id": "c6", "command": "ping"}))
    assert not again.ok and "duplicate id" in again.reason
    assert h.counters == {"accepted": 1, "rejected": 8}
    body = orjson.loads(ok.to_json())
    assert body["id"] == "c6" and body["ok"] is True and body["kind"] == "command"


def test_watchlist_signed_stored_atomically_and_versioned(tmp_path: Path) -> None:
    key = "k" * 32
    h, _ = _handler(tmp_path, watchlist_key=key)
    reader = WatchlistStore(tmp_path, check_s=0.0)  # a detector's own instance
    msg = {"id": "w1", "version": 3, "id_type": "imsi",
           "entries": ["h1:" + "a" * 32, "h1:" + "b" * 32]}
    unsigned = h.handle(T + "watchlist", orjson.dumps(msg))
    assert not unsigned.ok and "signature required" in unsigned.reason
    forged = h.handle(T + "watchlist", orjson.dumps({**msg, "sig": sign(msg, "x" * 32)}))
    assert not forged.ok and forged.reason == "bad signature"
    assert reader.current().version == 0
    ok = h.handle(T + "watchlist", orjson.dumps({**msg, "sig": sign(msg, key)}))
    assert ok.ok and ok.result == {"version": 3, "entries": 2}
    wl = reader.current()
    assert wl.version == 3 and ("h1:" + "a" * 32) in wl and wl.id_type == "imsi"
    old = {"id": "w2", "version": 3, "entries": []}
    stale = h.handle(T + "watchlist", orjson.dumps({**old, "sig": sign(old, key)}))
    assert not stale.ok and "not newer" in stale.reason
    assert current_watchlist(tmp_path).version == 3
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_config_update_all_or_nothing(tmp_path: Path) -> None:
    h, cfg = _handler(tmp_path)
    before = cfg.detectors.ipplane.threshold
    bad = h.handle(T + "config", orjson.dumps({"id": "k1", "set": {
        "detectors.ipplane.threshold": 0.5, "detectors.callplane.min_calls": -3}}))
    assert not bad.ok and "min_calls" in bad.reason
    assert cfg.detectors.ipplane.threshold == before  # nothing applied
    locked = h.handle(T + "config", orjson.dumps({"id": "k2", "set": {
        "mqtt.host": "evil.example"}}))
    assert not locked.ok and "not changeable at runtime" in locked.reason
    ok = h.handle(T + "config", orjson.dumps({"id": "k3", "version": 5, "set": {
        "detectors.ipplane.threshold": 0.5, "mqtt.heartbeat_s": 15}}))
    assert ok.ok, ok.reason
    assert cfg.detectors.ipplane.threshold == 0.5 and cfg.mqtt.heartbeat_s == 15.0
    # survives a restart
    cfg2 = Config()
    RuntimeConfig(cfg2, tmp_path)
    assert cfg2.detectors.ipplane.threshold == 0.5


def test_signed_commands_when_command_key_set(tmp_path: Path) -> None:
    h, _ = _handler(tmp_path, command_key="c" * 32)
    msg = {"id": "s1", "command": "ping"}
    assert "signature required" in h.handle(T + "command", orjson.dumps(msg)).reason
    assert h.handle(T + "command", orjson.dumps({**msg, "sig": sign(msg, "c" * 32)})).ok


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_KEYS = st.sampled_from(["id", "command", "args", "set", "version", "entries", "sig",
                         "id_type", "x"]) | _TEXT


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["config", "watchlist", "command", "x"]),
       payload=st.one_of(st.binary(max_size=600),
                         st.recursive(st.none() | st.booleans() |
                                      st.integers(-2**63, 2**63 - 1) | _TEXT,
                                      lambda c: st.lists(c, max_size=4) |
                                      st.dictionaries(_KEYS, c, max_size=4),
                                      max_leaves=20).map(orjson.dumps)))
def test_hostile_messages_never_raise_or_change_state(tmp_path_factory: object,
                                                      kind: str, payload: bytes) -> None:
    tmp = tmp_path_factory.mktemp("h")  # type: ignore[attr-defined]
    h, cfg = _handler(tmp, watchlist_key="w" * 32, command_key="c" * 32)
    snapshot = repr(cfg)
    ack = h.handle(T + kind, payload, b"\xff\xfe")
    assert not ack.ok and ack.reason
    assert repr(cfg) == snapshot
    assert h.watchlists.current().version == 0
