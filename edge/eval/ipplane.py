"""Scoring IP-plane ``goip.endpoint`` detections against a simulator's truth file.

Truth schema (shared with simulators/telecom/pcap.py, see notes): ``{"seed", "params",
"endpoints": [{"ip", "label", "persona", "positive", ...}]}``. :func:`score` matches
detections (subject ``ip``, before pseudonymisation) to truth endpoints and returns
per-label recall, the false alarms on negatives and the detection delay.
:func:`run_packets` runs a detector stage over records through the agent's own
pipeline loop (:func:`edge.pipeline.run_stages`: routing, ticks on event time, flush),
so what is scored is what the agent would report.

``python -m edge.eval.ipplane --seeds 9001-9005 --profile heldout`` prints the figures
for held-out scenarios of the behaviour generator (``--stress`` adds the hard personas,
human-paced boxes and call-centre trunks, in their held-out parameter ranges); ``--pcap F --truth T`` scores a
labelled capture from the pcap simulator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.detection import Detection

KIND = "goip.endpoint"
MASKED = ("goip_masked",)
PLAIN = ("goip_plain",)


@dataclass
class IpPlaneScore:
    """What one or more scenarios scored; add scores with ``+``."""

    positives: dict[str, int] = field(default_factory=dict)  # label -> endpoints
    found: dict[str, int] = field(default_factory=dict)  # label -> detected endpoints
    negatives: dict[str, int] = field(default_factory=dict)
    false_alarms: dict[str, int] = field(default_factory=dict)
    unknown_subjects: int = 0  # detections on addresses the truth does not list
    delays_s: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    false_alarm_ips: list[str] = field(default_factory=list)
    behaviour_only: dict[str, int] = field(default_factory=dict)  # found with no signature

    def __add__(self, o: IpPlaneScore) -> IpPlaneScore:
        def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}

        return IpPlaneScore(add(self.positives, o.positives), add(self.found, o.found),
                            add(self.negatives, o.negatives),
                            add(self.false_alarms, o.false_alarms),
                            self.unknown_subjects + o.unknown_subjects,
                            self.delays_s + o.delays_s, self.missed + o.missed,
                            self.false_alarm_ips + o.false_alarm_ips,
                            add(self.behaviour_only, o.behaviour_only))

    def recall(self, labels: Iterable[str] | None = None) -> float:
        labs = list(labels) if labels is not None else list(self.positives)
        n = sum(self.positives.get(x, 0) for x in labs)
        return sum(self.found.get(x, 0) for x in labs) / n if n else float("nan")

    @property
    def n_false_alarms(self) -> int:
        return sum(self.false_alarms.values())

    @property
    def n_negatives(self) -> int:
        return sum(self.negatives.values())

    def summary(self) -> dict[str, Any]:
        d = sorted(self.delays_s)
        return {
            "recall_all": round(self.recall(), 4),
            "recall_plain": round(self.recall(PLAIN), 4),
            "recall_masked": round(self.recall(MASKED), 4),
            "recall_by_label": {k: f"{self.found.get(k, 0)}/{v}"
                                for k, v in sorted(self.positives.items())},
            "false_alarms": self.n_false_alarms,
            "negatives": self.n_negatives,
            "false_alarm_rate": round(self.n_false_alarms / self.n_negatives, 4)
            if self.n_negatives else 0.0,
            "false_alarms_by_label": {k: f"{self.false_alarms.get(k, 0)}/{v}"
                                      for k, v in sorted(self.negatives.items())},
            "found_by_behaviour_only": {k: f"{self.behaviour_only.get(k, 0)}/{v}"
                                        for k, v in sorted(self.positives.items())},
            "unknown_subjects": self.unknown_subjects,
            "median_delay_s": round(d[len(d) // 2], 1) if d else None,
        }


def score(detections: Iterable[Detection], truth: dict[str, Any]) -> IpPlaneScore:
    """Match ``goip.endpoint`` detections to the truth's endpoints by address."""
    eps = {e["ip"]: e for e in truth.get("endpoints", [])}
    start = float(truth.get("start", 0.0))
    first: dict[str, float] = {}
    signed: set[str] = set()
    unknown = 0
    for d in detections:
        if d.kind != KIND or d.subject.type != "ip":
            continue
        if d.subject.id not in eps:
            unknown += 1
            continue
        first.setdefault(d.subject.id, d.ts)
        if any("signature" in e.features for e in d.evidence):
            signed.add(d.subject.id)
    s = IpPlaneScore(unknown_subjects=unknown)
    for ip, e in eps.items():
        lab = str(e.get("label", "?"))
        if e.get("positive"):
            s.positives[lab] = s.positives.get(lab, 0) + 1
            if ip in first:
                s.found[lab] = s.found.get(lab, 0) + 1
                s.delays_s.append(first[ip] - start)
                if ip not in signed:
                    s.behaviour_only[lab] = s.behaviour_only.get(lab, 0) + 1
            else:
                s.missed.append(f"{ip} {lab}/{e.get('persona', '')}")
        else:
            s.negatives[lab] = s.negatives.get(lab, 0) + 1
            if ip in first:
                s.false_alarms[lab] = s.false_alarms.get(lab, 0) + 1
                s.false_alarm_ips.append(f"{ip} {lab}")
    return s


def run_packets(stage: Any, records: Iterable[Any], tick_s: float = 1.0) -> list[Detection]:
    """Run ``records`` through the pipeline with ``stage`` as its only stage (the
    agent's loop, not a copy of it); returns the stage's detections."""
    from edge.pipeline import run_stages

    return run_stages([stage], map(as_record, records), tick_s=tick_s)


def as_record(r: Any) -> Any:
    """The agent's :class:`edge.records.Packet` for a simulator's packet record (the
    behaviour generator has its own, with the same fields, so that simulators import
    nothing from edge/); any other record as it is."""
    from edge.records import Packet

    if type(r).__name__ != "Packet" or type(r) is Packet:
        return r
    return Packet(r.ts, r.src, r.dst, r.sport, r.dport, r.proto, r.payload, r.frame,
                  r.source, r.tcp_seq, r.tcp_flags, r.teid, r.eth_src, r.tunnel)


def evaluate_generated(seeds: Iterable[int], profile: str = "heldout",
                       duration_s: float = 1200.0, stage_factory: Any = None,
                       stress: bool = False) -> tuple[IpPlaneScore, dict[str, Any]]:
    """Score the packaged detector on behaviour-generator scenarios (one per seed);
    ``stress`` adds the hard personas (human-like boxes, call centres) in held-out ranges."""
    from simulators.telecom.ipplane_behaviour import STRESS_COUNTS, generate

    total = IpPlaneScore()
    packets = 0
    t0 = time.perf_counter()
    for seed in seeds:
        sc = generate(seed, profile=profile, duration_s=duration_s,
                      counts=dict(STRESS_COUNTS) if stress else None)
        stage = stage_factory() if stage_factory else _default_stage()
        total = total + score(run_packets(stage, sc.packets), sc.truth)
        packets += len(sc.packets)
    return total, {"packets": packets, "seconds": round(time.perf_counter() - t0, 2)}


def evaluate_pcap(pcap: Path, truth_path: Path, stage_factory: Any = None) -> IpPlaneScore:
    """Score the detector on a labelled capture (decoded by the fast pcap reader)."""
    from drivers.capture.fastpcap import FastPcapSource

    truth = json.loads(Path(truth_path).read_text("utf-8"))
    stage = stage_factory() if stage_factory else _default_stage()
    src = FastPcapSource(Path(pcap))
    try:
        return score(run_packets(stage, iter(src)), truth)
    finally:
        src.close()


def _default_stage() -> Any:
    from edge.config import Config
    from edge.telecom.ipplane.build import build_stages

    return build_stages(Config())[0]


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score goip.endpoint detections against truth")
    ap.add_argument("--seeds", default="9001-9005")
    ap.add_argument("--profile", default="heldout", choices=("train", "heldout"))
    ap.add_argument("--duration", type=float, default=1200.0)
    ap.add_argument("--pcap", type=Path)
    ap.add_argument("--truth", type=Path)
    ap.add_argument("--stress", action="store_true",
                    help="add the hard personas (human-like boxes, call centres), held-out ranges")
    a = ap.parse_args(argv)
    if a.pcap:
        if not a.truth:
            ap.error("--pcap needs --truth")
        s = evaluate_pcap(a.pcap, a.truth)
        info: dict[str, Any] = {"pcap": str(a.pcap)}
    else:
        s, info = evaluate_generated(_seeds(a.seeds), a.profile, a.duration, stress=a.stress)
    json.dump({**info, **s.summary(), "missed": s.missed,
               "false_alarm_endpoints": s.false_alarm_ips}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
