"""``edge-agent replay`` over event files with bad lines: counted, named, skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from edge.cli.agent import main as agent_main

GOOD = {"ts": 1767225600.5, "type": "attach", "imsi": "460001234567890",
        "imei": "35209900176148", "auth_ms": 40}


def _status(out: Path) -> dict[str, object]:
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    finals = [r for r in reports if r["kind"] == "agent.status"
              and r["evidence"][0]["features"]["final"]]
    assert len(finals) == 1
    return finals[0]["evidence"][0]["features"]  # type: ignore[no-any-return]


def test_bad_lines_are_counted_named_and_skipped(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        orjson.dumps(GOOD),
        b"this is not json",
        b"[1, 2, 3]",
        orjson.dumps({"type": "attach", "imsi": "460001234567890"}),  # no ts
        orjson.dumps({**GOOD, "imsi": "12ab"}),
        orjson.dumps({**GOOD, "type": "teleport"}),  # unknown type: ignored, not malformed
        orjson.dumps({**GOOD, "colour": "red"}),  # unknown field: counted, kept
        orjson.dumps({**GOOD, "ts": "yesterday"}),
        b"",
        b"\xff\xfe garbage bytes",
        orjson.dumps({**GOOD, "ts": GOOD["ts"] + 1}),
    ]
    ev = tmp_path / "ev.jsonl"
    ev.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "r.jsonl"
    with caplog.at_level(logging.WARNING):
        assert agent_main(["replay", "--events", str(ev), "--out", str(out), "--quiet"]) == 0
    feats = _status(out)
    src = "source.events:ev.jsonl"
    assert feats[f"{src}.decoded"] == 3
    assert feats[f"{src}.malformed"] == 6
    assert feats[f"{src}.unknown_type"] == 1
    assert feats[f"{src}.unknown_fields"] == 1
    assert feats["malformed"] == 6
    logged = caplog.text
    for n in (2, 3, 4, 5, 8, 10):
        assert f"ev.jsonl line {n}:" in logged
    assert "missing ts" in logged and "imsi is not 15 digits" in logged


def test_replay_is_deterministic(tmp_path: Path) -> None:
    from simulators.telecom.events import EventSimConfig, write_events

    ev = tmp_path / "ev.jsonl"
    write_events(EventSimConfig(seed=3, subscribers=300, hours=3), ev)
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}.jsonl"
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[agent]\nid = "a1"\ndata_dir = "{tmp_path}/d"\n')
        assert agent_main(["replay", "--config", str(cfg), "--events", str(ev),
                           "--out", str(out), "--quiet"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0]


def test_missing_input_is_a_clear_error(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = agent_main(["replay", "--events", str(tmp_path / "nope.jsonl"), "--out",
                     str(tmp_path / "r.jsonl")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_replay_mqtt_needs_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = tmp_path / "e.jsonl"
    feed.write_text("")
    rc = agent_main(["replay", "--events", str(feed), "--out", str(tmp_path / "r.jsonl"),
                     "--mqtt"])
    assert rc == 2 and "--config" in capsys.readouterr().err
