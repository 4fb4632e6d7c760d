"""Collector pieces without a broker: config loading, bad input isolated and kept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from edge.errors import ConfigError
from edge.fleet.collector import Collector, _Msg, subscriptions
from edge.fleet.config import FleetConfig, load_fleet_config, with_overrides
from edge.fleet.migrate import migrate
from edge.report.ids import IdFactory
from tests.edge.fleet.test_store import report, topic


def test_config_file_keys_types_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "fleet.toml"
    f.write_text('[fleet]\nname = "c7"\n[fleet.mqtt]\nport = 8883\nshare_group = "g"\n'
                 '[fleet.db]\nbatch_wait_s = 1\n')
    cfg = load_fleet_config(f)
    assert (cfg.name, cfg.mqtt.port, cfg.mqtt.share_group, cfg.db.batch_wait_s) == \
        ("c7", 8883, "g", 1.0)
    assert cfg.client_id == "afe-collector-c7"
    assert with_overrides(cfg, mqtt_port=1, dsn="x").mqtt.port == 1
    assert subscriptions(cfg)[0] == ("$share/g/afe/v1/+/+/report/#", 1)
    for bad, key in (('[fleet.mqtt]\nprot = 1\n', "fleet.mqtt.prot"),
                     ('[fleet.mqtt]\nport = "x"\n', "fleet.mqtt.port"),
                     ('[fleet]\nmqtt = 3\n', "fleet.mqtt")):
        f.write_text(bad)
        with pytest.raises(ConfigError) as exc:
            load_fleet_config(f)
        assert exc.value.key == key


def test_rows_postgres_refuses_are_isolated_and_kept_as_rejects(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
    c = Collector(with_overrides(FleetConfig(), dsn=dsn, name="u"))
    ids = IdFactory("u")
    now = datetime.now(UTC)
    good = report(ids.next(now.timestamp()), now.timestamp())
    nul = report(ids.next(now.timestamp()), now.timestamp()).replace(
        b'"reason":"r"', b'"reason":"r\\u0000"')   # valid JSON, refused by jsonb
    msgs = [_Msg(i, 0, topic(), p, None, 0, now) for i, p in
            enumerate((good, nul, b"not json"))]
    assert c.process(msgs, threading.Event())
    s = c.stats
    assert (s.stored.reports, s.stored.rejects, s.isolated) == (1, 2, 1)
    with psycopg.connect(dsn) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM rejects ORDER BY id")]
        assert conn.execute("SELECT count(*) FROM reports").fetchone()[0] == 1
    assert any("database refused" in r for r in reasons)
    assert any("not JSON" in r for r in reasons)
