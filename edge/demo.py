"""``edge-agent demo``: the whole slice on embedded defaults.

Simulators generate a site's base-station events (with a truth file), the agent
replays them through its pipeline and reports over MQTT to a broker (its own on a
free port unless one is given), a subscriber standing in for the authority receives
the reports, and the demo prints what arrived and how it compares with the truth,
matching pseudonyms with the site key as an authority would.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from edge.assembly import assemble, make_sinks
from edge.config import Config
from edge.pipeline import merge_by_time
from edge.report.pseudonym import Pseudonymiser
from edge.report.topics import report_topic


def run_demo(*, broker: str | None, subscribers: int, hours: float, seed: int,
             workdir: Path, pcap_s: float = 480.0, out: Any = None) -> int:
    from simulators.broker import LocalBroker
    from simulators.subscriber import ReportSubscriber
    from simulators.telecom.events import EventSimConfig, write_events
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    out = out or sys.stdout
    workdir.mkdir(parents=True, exist_ok=True)
    events = workdir / "events.jsonl"
    truth_path = workdir / "events.truth.json"
    t0 = time.perf_counter()
    n = write_events(EventSimConfig(seed=seed, subscribers=subscribers, hours=hours),
                     events, truth_path)
    print(f"[1/4] simulated {subscribers:,} subscribers for {hours:g} h: {n:,} events "
          f"-> {events} ({time.perf_counter() - t0:.1f} s)", file=out)
    t0 = time.perf_counter()
    pcap = workdir / "backhaul.pcap"
    pcap_truth_path = workdir / "backhaul.truth.json"
    res = simulate_pcap(PcapSimConfig(seed=seed, duration_s=max(pcap_s, 1.0)), pcap,
                        pcap_truth_path)
    print(f"      simulated {pcap_s:g} s of backhaul traffic (softphones, IP phones, PBX "
          f"trunks, GoIP gateways, a SIM bank; some inside GTP-U): {res.packets:,} packets "
          f"-> {pcap} ({time.perf_counter() - t0:.1f} s)", file=out)

    own = None
    if broker:
        host, _, port_s = broker.rpartition(":")
        host, port = host or "127.0.0.1", int(port_s)
    else:
        own = LocalBroker().start()
        host, port = own.host, own.port
    print(f"[2/4] MQTT broker at {host}:{port}" + (" (started for the demo)" if own else ""),
          file=out)
    try:
        cfg = Config()
        cfg = replace(cfg, agent=replace(cfg.agent, site="demo-site", id="demo-agent",
                                         data_dir=workdir / "edge-data"),
                      mqtt=replace(cfg.mqtt, enabled=True, host=host, port=port))
        reports_path = workdir / "reports.jsonl"
        reports_path.unlink(missing_ok=True)
        topic = report_topic(cfg.mqtt.topic_prefix, cfg.agent.site, "+", "#")
        sub = ReportSubscriber(host, port, topic, client_id=f"demo-authority-{seed}")
        sinks = make_sinks(cfg, out=reports_path, mqtt=True, stdout=False)
        agent = assemble(cfg, mode="demo", sinks=sinks,
                         inputs={"events": [events], "pcap": [pcap]})
        print("[3/4] agent replaying the event feed and the capture through its pipeline ...", file=out)
        t1 = time.perf_counter()
        agent.pipeline.run(merge_by_time(agent.sources))
        agent.close()
        dt = time.perf_counter() - t1
        sent = sum(agent.reporter.count_by_kind.values())
        got_all = sub.wait_for(sent, timeout_s=60)
        sub.close()
        alerts = [r for r in sub.reports if not r["kind"].startswith("agent.")]
        print(f"      {agent.pipeline.records:,} records in {dt:.2f} s "
              f"({agent.pipeline.records / max(dt, 1e-9):,.0f} records/s); "
              f"{sent} reports published", file=out)
        print(f"[4/4] subscriber on '{topic}' received {len(sub.reports)} of {sent} reports"
              + ("" if got_all else " (NOT ALL ARRIVED)"), file=out)
        shown = _pick(alerts, 15)
        for r in shown:
            ev = r["evidence"][0]
            feats = ", ".join(f"{k}={v}" for k, v in list(ev["features"].items())[:5])
            print(f"  {r['ts']} {r['severity']:>8} {r['kind']:<14} "
                  f"{r['subject']['type']}={r['subject']['id']}  score={r['score']:.2f}\n"
                  f"      why: {ev['reason']} ({feats})", file=out)
        if len(alerts) > len(shown):
            print(f"  ... and {len(alerts) - len(shown)} more alerts (all in {reports_path})",
                  file=out)
        _score(alerts, truth_path, pcap_truth_path, agent.pseudonymiser, out)
        return 0 if got_all else 1
    finally:
        if own is not None:
            own.stop()


def _pick(alerts: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first alerts in time, with every kind represented."""
    ordered = sorted(alerts, key=lambda r: (r["ts"], r["kind"]))
    firsts: dict[str, dict[str, Any]] = {}
    for r in ordered:
        firsts.setdefault(r["kind"], r)
    picked = list(firsts.values())
    picked += [r for r in ordered if r not in picked][: max(0, n - len(picked))]
    return sorted(picked, key=lambda r: (r["ts"], r["kind"]))


def _score(alerts: list[dict[str, Any]], truth_path: Path, pcap_truth_path: Path,
           pseudo: Pseudonymiser, out: Any) -> None:
    """Match pseudonymised subjects against the truth, holding the site key."""
    truth = orjson.loads(truth_path.read_bytes())
    by_pseudonym = {pseudo.pseudonym("imsi", imsi): info for imsi, info in truth["sims"].items()}
    flagged = {r["subject"]["id"] for r in alerts if r["kind"] == "simbox.sim"}
    tp = sum(1 for p in flagged if by_pseudonym.get(p, {}).get("label") == "simbox")
    positives = sum(1 for i in truth["sims"].values() if i["label"] == "simbox")
    print(f"truth check (authority side, matching pseudonyms with the site key):\n"
          f"  call plane: {tp} of {positives} SIM-box SIMs flagged, {len(flagged) - tp} "
          f"false alarms among {len(truth['sims']) - positives:,} ordinary SIMs", file=out)
    ptruth = orjson.loads(pcap_truth_path.read_bytes())
    eps = {pseudo.pseudonym("ip", e["ip"]): e for e in ptruth["endpoints"]}
    hit = {r["subject"]["id"] for r in alerts if r["kind"] == "goip.endpoint"}
    pos = [e for e in ptruth["endpoints"] if e["positive"]]
    tp_ip = sum(1 for p in hit if eps.get(p, {}).get("positive"))
    print(f"  IP plane:   {tp_ip} of {len(pos)} GoIP / SIM-bank endpoints flagged, "
          f"{len(hit) - tp_ip} false alarms among {len(eps) - len(pos)} ordinary VoIP "
          f"endpoints", file=out)
