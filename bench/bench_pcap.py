"""Benchmark: the offline capture path against tshark on the same SIP+RTP captures.

Generates seeded SIP+RTP+GoIP captures of several sizes with the pcap simulator,
then for each size measures, in this one run:
- ``edge-agent replay --pcap F`` (the whole pipeline: fast reader, decoding, SIP/RTP
  parsing, per-endpoint state and detection, reports to JSONL): packets per second
  and the peak RSS of the process;
- ``tshark -r F -T fields -e sip.Method -e sip.Call-ID -e sip.User-Agent``: packets
  per second extracting the same SIP fields;
- the fast source alone in this process (``FastPcapSource``), for reference;
- and the simulator's own generation rate.
With ``--encap erspan2,mpls`` the same capture (same seed, same packets) is also
written with every frame inside each of those tunnels, and replayed and fed to
tshark the same way, so the tunnel cost reads as a ratio to the plain replay.

Run by hand:  python bench/bench_pcap.py [--sizes 250000,500000,1000000] [--workdir DIR]
              [--encap erspan2,mpls]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_measured(cmd: list[str], err_file: Path, env: dict[str, str] | None = None
                 ) -> tuple[float, int, int, float]:
    """(wall seconds, peak RSS in MiB, exit code, CPU seconds user + system) of a child
    process; stderr to a file."""
    t0 = time.perf_counter()
    with open(err_file, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        print(f"command failed ({rc}): {' '.join(cmd)}\n"
              f"{err_file.read_text(errors='replace')[-2000:]}", file=sys.stderr)
    return dt, usage.ru_maxrss // 1024, rc, usage.ru_utime + usage.ru_stime


def installed_env() -> dict[str, str]:
    """The agent's environment as installed: the project's modules byte-compiled (pip
    does that on install; this shell sets PYTHONDONTWRITEBYTECODE, which would make every
    start compile ~120 modules from source, ~0.45 CPU s that a deployed agent never pays)."""
    import compileall

    root = Path(__file__).resolve().parents[1]
    for pkg in ("edge", "drivers", "models", "firmware_bridge", "simulators"):
        compileall.compile_dir(root / pkg, quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def reference(pcap: Path) -> None:
    """scapy's full dissection and scapy's raw reader on the first frames of ``pcap``."""
    from itertools import islice

    from scapy.all import PcapReader  # with every layer registered: full dissection

    from drivers.capture.pcapfile import PcapFileSource

    n = 20_000
    t0 = time.perf_counter()
    with PcapReader(str(pcap)) as r:
        k = sum(1 for _ in islice(r, n))
    print(f"scapy full dissection: {k / (time.perf_counter() - t0):,.0f} pkt/s ({k:,} frames)")
    n = 200_000
    t0 = time.perf_counter()
    k = sum(1 for _ in islice(iter(PcapFileSource(pcap)), n))
    print(f"scapy RawPcapReader -> Frame (no decoding): "
          f"{k / (time.perf_counter() - t0):,.0f} pkt/s ({k:,} frames)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="250000,500000,1000000")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--encap", default="",
                    help="also replay the capture wrapped in these tunnels (comma list of "
                         "simulators.telecom.pcap_encap.KINDS, e.g. erspan2,mpls)")
    ap.add_argument("--reference", action="store_true",
                    help="also time scapy's full dissection and its raw reader (first frames)")
    args = ap.parse_args()

    from drivers.capture.fastpcap import FastPcapSource
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pcap-"))
    work.mkdir(parents=True, exist_ok=True)
    agent = shutil.which("edge-agent") or str(Path(sys.executable).parent / "edge-agent")
    tshark = shutil.which("tshark")
    rows: list[tuple[Any, ...]] = []
    env = installed_env()
    variants = [None, *[k for k in args.encap.split(",") if k]]
    for n, encap in [(int(x), v) for x in args.sizes.split(",") for v in variants]:
        tag = f"-{encap}" if encap else ""
        pcap = work / f"sip-rtp-{n}{tag}.pcap"
        t0 = time.perf_counter()
        res = simulate_pcap(PcapSimConfig(seed=args.seed, duration_s=3600.0, max_packets=n,
                                          encap=encap),
                            pcap, work / f"sip-rtp-{n}{tag}.truth.json")
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        src = FastPcapSource(pcap)
        recs = sum(1 for _ in src)
        src_s = time.perf_counter() - t0
        out = work / f"reports-{n}.jsonl"
        log = work / f"replay-{n}.log"
        load0 = os.getloadavg()[0]
        rep_s, rss, rc, rep_cpu = run_measured([agent, "replay", "--pcap", str(pcap), "--out",
                                                str(out), "--quiet"], log, env)
        m = re.search(r"replayed [\d,]+ records in ([\d.]+) s", log.read_text(errors="replace"))
        pipe_s = float(m.group(1)) if m else float("nan")  # without interpreter start-up
        ts_s = ts_cpu = float("nan")
        if tshark and not args.no_tshark:
            ts_s, _, _, ts_cpu = run_measured([tshark, "-r", str(pcap), "-T", "fields",
                                               "-e", "sip.Method", "-e", "sip.Call-ID",
                                               "-e", "sip.User-Agent"], work / "tshark.log")
        load1 = os.getloadavg()[0]
        reports = sum(1 for _ in open(out)) if out.exists() else 0
        rows.append((f"{n:,}{' ' + encap if encap else ''}", pcap.stat().st_size >> 20, res.packets / gen_s, n / src_s, recs,
                     n / rep_s, n / pipe_s, rss, reports, rc,
                     n / ts_s if ts_s == ts_s else float("nan"), rep_cpu, ts_cpu,
                     f"{load0:.1f}-{load1:.1f}"))
        print(f"{rows[-1][0]:>16} pkts: sim {res.packets / gen_s:>9,.0f}/s "
              f"| source {n / src_s:>9,.0f}/s "
              f"({recs:,} records) | replay {n / rep_s:>9,.0f}/s (pipeline {n / pipe_s:,.0f}/s)"
              f", RSS {rss} MiB, {reports} reports, rc {rc} | tshark {rows[-1][10]:>8,.0f}/s"
              f" | CPU s replay {rep_cpu:.2f} tshark {ts_cpu:.2f} | load {rows[-1][-1]}",
              flush=True)
    print()
    print("| packets | file MiB | sim gen pkt/s | FastPcapSource pkt/s | records out | "
          "edge-agent replay pkt/s (whole process) | (pipeline only) | replay peak RSS MiB | "
          "tshark fields pkt/s | replay / tshark (wall) | CPU s replay / tshark | "
          "replay / tshark (CPU) | load average |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, mib, gen, src_r, recs, rep, pipe, rss, _reports, _rc, tsr, rc_, tc_, ld in rows:
        print(f"| {n} | {mib} | {gen:,.0f} | {src_r:,.0f} | {recs:,} | {rep:,.0f} | "
              f"{pipe:,.0f} | {rss} | {tsr:,.0f} | {rep / tsr:.1f}x | {rc_:.2f} / {tc_:.2f} | "
              f"{tc_ / rc_:.1f}x | {ld} |")
    if args.reference and rows:
        reference(pcap)
    print(f"\n(files in {work}; python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
