"""No report lost, none doubled: two collectors, kill -9 of one, a broker restart and a
PostgreSQL restart, under a simulated fleet (real mosquitto, real PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from edge.fleet.migrate import migrate
from simulators.broker import LocalBroker
from simulators.fleet_load import FleetLoad, LoadSpec
from simulators.postgres import LocalPostgres
from tests.edge.fleet.helpers import CollectorProc, connects, report_ids, wait_connected


def test_no_loss_no_duplicate_through_kill_broker_and_db_restarts(
        pg_cluster: LocalPostgres, dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
    with LocalBroker(persistence=True) as broker:
        a = CollectorProc("ca", dsn, broker.port, tmp_path).start()
        b = CollectorProc("cb", dsn, broker.port, tmp_path).start()
        try:
            wait_connected(a)
            wait_connected(b)
            load = FleetLoad(broker.host, broker.port, LoadSpec(
                boxes=60, sites=12, report_rate=1.0, heartbeat_s=2.0, burst_every_s=3.0,
                burst_share=0.1, burst_size=20, seed=7))
            load.start()
            load.run(2.0)
            a.kill9()                      # one of two collectors dies mid-stream
            load.run(1.5)
            before = connects(a)
            a.start()                      # and comes back (systemd Restart=always)
            wait_connected(a, before)
            load.run(1.5)
            # Broker restart (persistence on). mosquitto does not restore shared
            # subscriptions from its persistence file (pinned below), so the documented
            # procedure (docs/fleet.md) lets the collectors back in before the boxes;
            # the boxes keep publishing into their queues meanwhile.
            before_a, before_b = connects(a), connects(b)
            broker.stop()
            load.hold = True
            load.run(0.5)
            broker.start()
            wait_connected(a, before_a)    # their SUBACKs are in
            wait_connected(b, before_b)
            load.hold = False
            load.run(2.5)
            pg_cluster.restart("immediate", down_s=1.0)   # PostgreSQL crash + restart
            load.run(2.0)
            assert load.drain(30.0), f"{load.pending()} reports never acknowledged"
            published = set(load.published)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline:
                ids, rows = report_ids(dsn)
                if ids >= published:
                    break
                time.sleep(0.3)
            load.close()
        finally:
            rc_a, rc_b = a.stop(), b.stop()
        ids, rows = report_ids(dsn)
        missing = published - ids
        assert not missing, (f"{len(missing)} of {len(published)} reports lost\n"
                             f"{a.log_text()[-1500:]}\n{b.log_text()[-1500:]}")
        assert ids == published            # nothing that was not published
        assert rows == len(ids)            # no report stored twice
        assert len(published) > 500
        assert (rc_a, rc_b) == (0, 0)
        # both collectors stored a share, and the database outage was lived through
        with psycopg.connect(dsn) as conn:
            per = dict(conn.execute(
                "SELECT collector, count(*) FROM reports GROUP BY collector").fetchall())
            boxes = conn.execute("SELECT count(*) FROM agents WHERE state = 'offline' "
                                 "AND reason = 'shutdown'").fetchone()
        assert per.get("ca", 0) > 0 and per.get("cb", 0) > 0, per
        assert "database unavailable" in a.log_text() + b.log_text()
        assert boxes is not None and boxes[0] == 60


def test_mosquitto_forgets_shared_subscriptions_on_restart() -> None:
    """The broker behaviour the restart procedure works around: a persistent session's
    plain subscription survives a mosquitto restart, its $share subscription does not
    (mosquitto 2.0.11, Debian 12). If this starts failing, mosquitto fixed it and the
    procedure in docs/fleet.md can be relaxed."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    persistent = LocalBroker(persistence=True).start()
    try:
        got: dict[str, list[bytes]] = {"S": [], "N": []}
        clients = {}
        for cid, filt in (("S", "$share/g/t/#"), ("N", "t/#")):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid,
                            protocol=mqtt.MQTTv5)
            c.on_message = lambda cl, u, m, cid=cid: got[cid].append(m.payload)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            c.connect("127.0.0.1", persistent.port, clean_start=False, properties=props)
            c.loop_start()
            c.subscribe(filt, qos=1)
            time.sleep(0.3)
            c.disconnect()
            c.loop_stop()
            clients[cid] = (c, props)
        persistent.stop()
        persistent.start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="P",
                          protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", persistent.port)
        pub.loop_start()
        for i in range(5):
            pub.publish("t/x", str(i), qos=1).wait_for_publish(5)
        for c, props in clients.values():
            c.connect("127.0.0.1", persistent.port, clean_start=False, properties=props)
            c.loop_start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(got["N"]) < 5:
            time.sleep(0.05)
        time.sleep(0.3)
        for c, _ in clients.values():
            c.disconnect()
            c.loop_stop()
        pub.disconnect()
        pub.loop_stop()
        assert len(got["N"]) == 5
        assert got["S"] == []
    finally:
        persistent.stop()
