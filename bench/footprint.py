"""Footprint of a running agent: idle RSS with every model loaded, CPU per input rate.

Starts ``edge-agent run`` (UDP events in, reports to a JSONL file, metrics off) as
systemd would (a NOTIFY_SOCKET to learn when it is ready), reads its RSS once idle,
then sends base-station events at each ``--rates`` for ``--seconds`` and prints the
CPU seconds it used per wall second. The budget (README) is idle RSS < 120 MiB and
< 25 % of a core at 1,000 events/s.

    python bench/footprint.py --rates 1000,5000,20000
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson


def proc_cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python bench/footprint.py")
    ap.add_argument("--rates", default="1000,5000,20000", help="events/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per rate")
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="afe-footprint-"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = d / "agent.toml"
    conf.write_text(f'[agent]\ndata_dir = "{d}/state"\n[inputs.events]\n'
                    f'udp_listen = "127.0.0.1:{port}"\n[outputs.jsonl]\npath = "{d}/r.jsonl"\n')
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(str(d / "notify.sock"))
    ns.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(d / "notify.sock"))
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli.agent", "run", "--config",
                             str(conf)], env=env, stderr=subprocess.DEVNULL)
    try:
        while b"READY=1" not in ns.recv(4096):
            pass
        time.sleep(3)
        print(f"idle RSS with the call-plane and IP-plane models loaded: "
              f"{proc_rss_mib(proc.pid):.1f} MiB (budget 120)")
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t_ev = time.time()
        print("| events/s | CPU s per s | RSS MiB after |\n|---:|---:|---:|")
        for rate in (int(r) for r in a.rates.split(",")):
            n = int(rate * a.seconds)
            batch = max(1, rate // 100)
            cpu0, t0 = proc_cpu_s(proc.pid), time.monotonic()
            for i in range(0, n, batch):
                lines = []
                for j in range(i, min(n, i + batch)):
                    imsi = f"46007{j % 50_000:010d}"
                    lines.append(orjson.dumps({
                        "ts": t_ev, "type": "call_start" if j % 2 == 0 else "call_end",
                        "imsi": imsi, "imei": f"86{j % 50_000:012d}", "cell": "46000-1-1",
                        "dir": "mo", "peer": f"8613{j % 99991:09d}", "call_id": f"c{j // 2}",
                        **({"duration_s": 30} if j % 2 else {})}))
                    t_ev += 1.0 / rate
                tx.sendto(b"\n".join(lines), ("127.0.0.1", port))
                time.sleep(max(0.0, t0 + (i + batch) / rate - time.monotonic()))
            wall = time.monotonic() - t0
            print(f"| {rate:,} | {(proc_cpu_s(proc.pid) - cpu0) / wall:.3f} | "
                  f"{proc_rss_mib(proc.pid):.1f} |")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
