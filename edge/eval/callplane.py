"""Score call-plane reports against a simulator truth file.

In: the agent's reports (JSONL, pseudonymised), the truth JSON written by
``edge-sim events --truth`` and the site's privacy key (to pseudonymise the truth's
identifiers the same way). Out: a :class:`CallPlaneScore` with per-SIM precision,
recall, F1, false alarms per active SIM per day, detection delay, and the same per
evasion level and per hard-negative persona; :func:`markdown` renders the tables.

Definitions (also in models/callplane/README.md):
- positive: a SIM-box SIM whose evidence time is defined (it placed at least
  ``evidence_calls`` outgoing calls); a flagged box SIM without it still counts as
  a true positive, an unflagged one is not counted as missed;
- false positive: a flagged SIM whose truth label is ``normal``;
- false-positive rate per SIM-day: false-positive SIM-days (a normal SIM alerted at
  least once within one simulated day of its scenario) divided by active normal
  SIM-days (each scenario's active normal SIMs times its simulated days), summed over
  scenarios. Summing the SIM counts of several scenarios already counts SIM-days:
  dividing that sum again by the summed days (as an earlier version did) understated
  the rate by the number of scenarios;
- delay: first ``simbox.sim`` report time minus the SIM's evidence time (alerts before
  that count as 0 and are counted as ``early``); ``from_first_call``: first report
  time minus the SIM's first outgoing call (the figure that says how long a box line
  worked before it was reported).
"""

from __future__ import annotations

import calendar
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from edge.report.pseudonym import Pseudonymiser


def parse_rfc3339(s: str) -> float:
    """'2026-01-01T00:01:02.345Z' -> epoch seconds."""
    main, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


@dataclass
class LevelRow:
    name: str
    sims: int = 0
    detected: int = 0
    delays: list[float] = field(default_factory=list)
    from_first_call: list[float] = field(default_factory=list)
    below_bar: int = 0  # box SIMs that never reached the evidence bar
    below_bar_flagged: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.sims if self.sims else 0.0


@dataclass
class CallPlaneScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    positives: int = 0
    active_normal: int = 0
    days: float = 0.0
    sim_days: float = 0.0  # active normal SIMs x simulated days, summed over scenarios
    fp_sim_days: int = 0  # (normal SIM, simulated day) pairs with at least one alert
    from_first_call: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    early: int = 0
    levels: dict[str, LevelRow] = field(default_factory=dict)
    personas: dict[str, list[int]] = field(default_factory=dict)  # name -> [sims, fp]
    devices: int = 0
    devices_detected: int = 0
    device_reports: int = 0
    device_reports_mixed: int = 0
    flagged_no_evidence: int = 0
    scenarios: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return (self.positives - self.fn) / self.positives if self.positives else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fp_rate_per_sim_day(self) -> float:
        return self.fp_sim_days / self.sim_days if self.sim_days else 0.0

    def delay_stats(self, delays: list[float] | None = None) -> dict[str, float | None]:
        d = sorted(self.delays if delays is None else delays)
        if not d:
            return {"median_s": None, "p90_s": None, "within_5min": None}
        return {"median_s": round(statistics.median(d), 1),
                "p90_s": round(d[min(len(d) - 1, int(0.9 * len(d)))], 1),
                "within_5min": round(sum(1 for x in d if x <= 300) / len(d), 4)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenarios": self.scenarios, "precision": round(self.precision, 4),
            "recall": round(self.recall, 4), "f1": round(self.f1, 4), "tp": self.tp,
            "fp": self.fp, "fn": self.fn, "positives": self.positives,
            "active_normal_sims": self.active_normal, "days": self.days,
            "active_normal_sim_days": self.sim_days, "fp_sim_days": self.fp_sim_days,
            "fp_rate_per_active_sim_day": self.fp_rate_per_sim_day,
            "delay": self.delay_stats(),
            "delay_from_first_call": self.delay_stats(self.from_first_call),
            "early_alerts": self.early,
            "flagged_box_sims_without_evidence": self.flagged_no_evidence,
            "levels": {k: {"sims": v.sims, "detected": v.detected,
                           "recall": round(v.recall, 4), **self.delay_stats(v.delays),
                           "median_from_first_call_s": round(statistics.median(
                               v.from_first_call), 1) if v.from_first_call else None,
                           "below_evidence_bar": v.below_bar,
                           "below_evidence_bar_flagged": v.below_bar_flagged}
                       for k, v in sorted(self.levels.items())},
            "personas": {k: {"sims": v[0], "false_positives": v[1]}
                         for k, v in sorted(self.personas.items())},
            "devices": self.devices, "devices_detected": self.devices_detected,
            "device_reports": self.device_reports,
            "device_reports_mixing_devices": self.device_reports_mixed,
        }


def load_reports(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                r = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(r, dict) and str(r.get("kind", "")).startswith("simbox."):
                out.append(r)
    return out


def score(reports: list[dict[str, Any]], truth: dict[str, Any], key: bytes,
          into: CallPlaneScore | None = None) -> CallPlaneScore:
    """Add one scenario's reports and truth to ``into`` (a new score if None)."""
    res = into or CallPlaneScore()
    res.scenarios += 1
    ps = Pseudonymiser(key)
    sims: dict[str, Any] = truth["sims"]
    by_pseudo = {ps.pseudonym("imsi", imsi): imsi for imsi in sims}
    cfg = truth.get("config", {})
    start = float(cfg.get("start_ts", 0.0))
    days = float(cfg.get("hours", 24.0)) / 24.0
    first_alert: dict[str, float] = {}
    alert_days: dict[str, set[int]] = {}
    for r in reports:
        subj = r.get("subject", {})
        if r.get("kind") == "simbox.sim" and subj.get("type") == "imsi":
            ident = subj.get("id", "")
            imsi = by_pseudo.get(ident, ident)
            ts = parse_rfc3339(r["ts"])
            if imsi not in first_alert or ts < first_alert[imsi]:
                first_alert[imsi] = ts
            # The simulated day the alert falls in (clamped: a report flushed just
            # after the end belongs to the last day).
            day = min(max(int((ts - start) // 86400.0), 0), max(0, math.ceil(days) - 1))
            alert_days.setdefault(imsi, set()).add(day)
        elif r.get("kind") == "simbox.device":
            res.device_reports += 1
    res.days += days
    for imsi, t in sims.items():
        box = t["label"] == "simbox"
        flagged = imsi in first_alert
        if not box:
            if t.get("first_ts") is None:
                continue
            res.active_normal += 1
            res.sim_days += days
            row = res.personas.setdefault(t["persona"], [0, 0])
            row[0] += 1
            if flagged:
                res.fp += 1
                res.fp_sim_days += len(alert_days[imsi])
                row[1] += 1
            continue
        ev = t.get("evidence_ts")
        if flagged:
            res.tp += 1
        level = res.levels.setdefault(t.get("evasion") or "?", LevelRow(t.get("evasion") or "?"))
        if flagged and t.get("first_mo_ts") is not None:
            d0 = max(0.0, first_alert[imsi] - t["first_mo_ts"])
            level.from_first_call.append(d0)
            res.from_first_call.append(d0)
        if ev is None:
            if t.get("first_mo_ts") is not None:
                level.below_bar += 1
                level.below_bar_flagged += int(flagged)
            if flagged:
                res.flagged_no_evidence += 1
            continue
        level.sims += 1
        res.positives += 1
        if not flagged:
            res.fn += 1
            continue
        level.detected += 1
        d = first_alert[imsi] - ev
        if d < 0:
            res.early += 1
            d = 0.0
        res.delays.append(d)
        level.delays.append(d)
    # Devices: a box is detected when a device report names any of its SIMs or IMEIs.
    imsi_dev = {ps.pseudonym("imsi", s): dev for dev, d in truth.get("devices", {}).items()
                for s in d["imsis"]}
    imei_dev = {ps.pseudonym("imei", i): dev for dev, d in truth.get("devices", {}).items()
                for i in d["imeis"]}
    hit: set[str] = set()
    for r in reports:
        if r.get("kind") != "simbox.device":
            continue
        named = set()
        for s in [r.get("subject", {})] + list(r.get("related", [])):
            m = imsi_dev if s.get("type") == "imsi" else imei_dev
            dev = m.get(s.get("id", ""))
            named.add(dev)
        if len(named - {None}) > 1 or None in named and len(named) > 1:
            res.device_reports_mixed += 1
        hit.update(n for n in named if n is not None)
    res.devices += len(truth.get("devices", {}))
    res.devices_detected += len(hit)
    return res


def markdown(res: CallPlaneScore) -> str:
    """The model card's tables."""
    d = res.as_dict()
    dl = d["delay"]
    lines = [
        "| metric | value |", "|---|---|",
        f"| scenarios (simulated days) | {res.scenarios} ({res.days:g}) |",
        f"| per-SIM precision | {d['precision']:.4f} |",
        f"| per-SIM recall | {d['recall']:.4f} |",
        f"| per-SIM F1 | {d['f1']:.4f} |",
        f"| false positives / active normal SIMs | {res.fp} / {res.active_normal} |",
        f"| false-positive SIM-days / active normal SIM-days | {res.fp_sim_days} / "
        f"{res.sim_days:g} |",
        f"| false-positive rate per active SIM per day | "
        f"{100 * d['fp_rate_per_active_sim_day']:.4f} % |",
        f"| median / p90 delay from a box SIM's first outgoing call | "
        f"{_s(d['delay_from_first_call']['median_s'])} / "
        f"{_s(d['delay_from_first_call']['p90_s'])} |",
        f"| median / p90 delay from the evidence bar | {_s(dl['median_s'])} / "
        f"{_s(dl['p90_s'])} |",
        f"| alerts within 5 min of evidence | {_pct(dl['within_5min'])} |",
        f"| devices detected | {res.devices_detected} / {res.devices} |",
        "", "| evasion level | box SIMs with evidence | detected | recall | median delay "
        "| p90 delay | within 5 min | median time from first call | below evidence bar "
        "(flagged) |", "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in d["levels"].items():
        lines.append(f"| {name} | {v['sims']} | {v['detected']} | {v['recall']:.4f} | "
                     f"{_s(v['median_s'])} | {_s(v['p90_s'])} | {_pct(v['within_5min'])} | "
                     f"{_s(v['median_from_first_call_s'])} | {v['below_evidence_bar']} "
                     f"({v['below_evidence_bar_flagged']}) |")
    lines += ["", "| persona (normal) | active SIMs | false positives |", "|---|---|---|"]
    for name, v in d["personas"].items():
        lines.append(f"| {name} | {v['sims']} | {v['false_positives']} |")
    return "\n".join(lines) + "\n"


def _s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f} s" if x < 600 else f"{x / 60:.1f} min"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"
