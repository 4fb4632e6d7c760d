"""Fleet collector benchmark: N simulated boxes through mosquitto into K collectors.

    nice -n 10 python bench/bench_fleet.py --boxes 1000 --minutes 10 --collectors 2,1

For each collector count: a throwaway PostgreSQL cluster and a mosquitto of its own,
K ``edge-fleet collect`` processes in one shared-subscription group, and the load
generator (simulators/fleet_load.py, this process) playing the boxes: births, a
heartbeat a minute, reports at ``--rate`` per box (Poisson) and bursts (every
``--burst-every-s`` a tenth of the boxes flush ``--burst-size`` reports, as after a
link outage). After the run the generator drains (every report PUBACKed) and the
bench waits until the rows are there. Printed per run: reports published, rows
stored, lost (published ids missing from the table) and doubled (rows - distinct
ids), sustained rate (rows committed per second over the load window, and the best
and worst 10 s), and publish -> committed-row latency p50/p99/max (publish time taken
when the generator hands the report to paho; row time = the insert's
clock_timestamp(), inside the committing transaction).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.fleet.migrate import migrate  # noqa: E402
from simulators.broker import LocalBroker  # noqa: E402
from simulators.fleet_load import FleetLoad, LoadSpec  # noqa: E402
from simulators.postgres import LocalPostgres  # noqa: E402


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_once(n_collectors: int, args: argparse.Namespace, log_dir: Path) -> dict[str, object]:
    with LocalPostgres() as pg, LocalBroker(persistence=True) as broker:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            migrate(conn)
        procs = []
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for i in range(n_collectors):
            log = open(log_dir / f"collector-{n_collectors}-{i}.log", "wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "edge.fleet.cli", "collect", "--dsn", pg.dsn,
                 "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                 "--name", f"bench{i}"], stdout=log, stderr=subprocess.STDOUT, env=env))
            log.close()
        time.sleep(3.0)
        spec = LoadSpec(boxes=args.boxes, sites=max(1, args.boxes // 5),
                        report_rate=args.rate, heartbeat_s=60.0,
                        burst_every_s=args.burst_every_s, burst_share=0.1,
                        burst_size=args.burst_size, seed=11)
        load = FleetLoad(broker.host, broker.port, spec)
        t0 = time.time()
        load.start()
        connected_at = time.time()
        load.run(args.minutes * 60.0)
        t_end = time.time()
        drained = load.drain(120.0)
        published = load.published
        deadline = time.monotonic() + 180.0
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                n = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
                if n >= len(published):
                    break
                time.sleep(1.0)
            rows = conn.execute("SELECT id, extract(epoch FROM stored_at) FROM reports"
                                ).fetchall()
            total = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
            per = dict(conn.execute("SELECT collector, count(*) FROM reports GROUP BY 1"
                                    ).fetchall())
        load.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    stored = {rid: float(at) for rid, at in rows}
    lost = [rid for rid in published if rid not in stored]
    lat = [stored[rid] - t for rid, t in published.items() if rid in stored]
    window = [at for at in stored.values() if connected_at <= at <= t_end]
    buckets: dict[int, int] = {}
    for at in window:
        buckets[int((at - connected_at) // 10)] = buckets.get(int((at - connected_at) // 10),
                                                               0) + 1
    full = [v / 10.0 for k, v in buckets.items() if (k + 1) * 10 <= t_end - connected_at]
    return {
        "collectors": n_collectors, "boxes": args.boxes, "minutes": round((t_end - t0) / 60, 2),
        "offered_rate_per_s": round(args.boxes * args.rate, 1), "published": len(published),
        "stored": len(stored), "lost": len(lost), "doubled": total - len(stored),
        "drained": drained, "per_collector": per,
        "sustained_per_s": round(len(window) / max(1e-9, t_end - connected_at), 1),
        "best_10s_per_s": max(full) if full else None,
        "worst_10s_per_s": min(full) if full else None,
        "latency_p50_ms": round(_pct(lat, 0.50) * 1000, 1),
        "latency_p99_ms": round(_pct(lat, 0.99) * 1000, 1),
        "latency_max_ms": round(max(lat) * 1000, 1) if lat else None,
        "reconnects": load.reconnects, "heartbeats": load.heartbeats,
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="Simulated boxes through mosquitto into K "
                                 "collectors: rate, publish->row latency, rows lost.")
    ap.add_argument("--boxes", type=int, default=1000, help="simulated agents")
    ap.add_argument("--minutes", type=float, default=10.0, help="load duration per run")
    ap.add_argument("--rate", type=float, default=0.5, help="reports per second per box")
    ap.add_argument("--burst-every-s", type=float, default=60.0, help="burst period")
    ap.add_argument("--burst-size", type=int, default=20, help="reports per bursting box")
    ap.add_argument("--collectors", default="2,1", help="collector counts to run, in order")
    ap.add_argument("--out", type=Path, default=None, help="also write the results (JSON)")
    args = ap.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="afe-bench-fleet-"))
    results = []
    for k in [int(x) for x in args.collectors.split(",")]:
        res = run_once(k, args, log_dir)
        print(json.dumps(res), flush=True)
        results.append(res)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    print(f"collector logs in {log_dir}")


if __name__ == "__main__":
    main()
