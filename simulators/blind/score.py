"""Score an agent's SIM-box reports against a blind truth file.

``python -m simulators.blind.score --truth DIR/truth.json --reports REPORTS.jsonl
--site-key-from CONFIG_OR_DATA_DIR [--json]``

The agent's ``simbox.sim`` reports name SIMs by pseudonym,
``"h1:" + hex(HMAC-SHA256(site_key, "imsi:" + digits))[:32]`` (README, Pseudonymisation);
the scorer computes the same over the truth IMSIs with the site key and prints per-SIM
precision / recall / F1, recall per box family, false positives per normal family, the
false-positive rate per active normal SIM-day and the delay from a box SIM's first
outgoing call to its first report (event time). Written, like the generator, without
reading the project's own scorer.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import datetime

DAY = 86400.0


class ScoreError(ValueError):
    """The inputs cannot be scored (no key, no matching pseudonyms, bad files)."""


def pseudonym(key: bytes, domain: str, value: str) -> str:
    return "h1:" + hmac.new(key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def imsi_pseudonym(key: bytes, imsi: str) -> str:
    return pseudonym(key, "imsi", "".join(ch for ch in imsi if ch.isdigit()))


def key_candidates(source: str) -> list[tuple[str, bytes]]:
    """The site key as the agent may hold it: from a TOML config (``privacy.key``,
    ``privacy.key_file`` or ``<data_dir>/privacy.key``), a data directory or a key file.
    A key file's bytes are tried raw, stripped and hex-decoded."""
    files: list[str] = []
    out: list[tuple[str, bytes]] = []
    if os.path.isdir(source):
        files = [os.path.join(source, "privacy.key"), os.path.join(source, "edge-data", "privacy.key")]
    elif source.endswith(".toml"):
        with open(source, "rb") as fh:
            cfg = tomllib.load(fh)
        base = os.path.dirname(os.path.abspath(source))
        priv = cfg.get("privacy", {})
        if isinstance(priv.get("key"), str):
            out.append(("privacy.key", priv["key"].encode()))
        if isinstance(priv.get("key_file"), str):
            files.append(os.path.join(base, priv["key_file"]))
        data_dir = cfg.get("agent", {}).get("data_dir", "edge-data")
        files.append(os.path.join(base, data_dir, "privacy.key"))
    else:
        files = [source]
    for path in files:
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as fh:
            raw = fh.read()
        out.append((f"{path} (raw)", raw))
        out.append((f"{path} (stripped)", raw.strip()))
        try:
            out.append((f"{path} (hex)", bytes.fromhex(raw.strip().decode())))
        except ValueError:
            pass
    if not out:
        raise ScoreError(f"no site key found from {source!r} (config privacy.key/key_file, or privacy.key in the data dir)")
    return out


@dataclass
class Report:
    subject: str
    ts: float


def read_reports(path: str) -> tuple[list[Report], int]:
    """(simbox.sim reports, number of simbox.device reports)."""
    sims: list[Report] = []
    devices = 0
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rep = json.loads(line)
            except json.JSONDecodeError as e:
                raise ScoreError(f"{path}:{n}: not JSON ({e})") from None
            kind = rep.get("kind")
            if kind == "simbox.device":
                devices += 1
            if kind != "simbox.sim":
                continue
            subj = rep.get("subject") or {}
            ts = datetime.fromisoformat(str(rep["ts"]).replace("Z", "+00:00")).timestamp()
            sims.append(Report(str(subj.get("id", "")), ts))
    return sims, devices


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    unmatched_reports: int = 0
    key_source: str = ""
    per_box_family: dict[str, tuple[int, int]] = field(default_factory=dict)  # found, total
    per_normal_family: dict[str, tuple[int, int]] = field(default_factory=dict)  # flagged, total
    fp_sim_days: int = 0
    active_normal_sim_days: int = 0
    delays_s: list[float] = field(default_factory=list)
    box_sims_with_mo: tuple[int, int] = (0, 0)  # found, total
    device_reports: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fp_rate_sim_day(self) -> float:
        return self.fp_sim_days / self.active_normal_sim_days if self.active_normal_sim_days else 0.0

    def as_dict(self) -> dict[str, object]:
        d = sorted(self.delays_s)
        return {
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
            "recall": round(self.recall, 4), "f1": round(self.f1, 4),
            "recall_per_box_family": {k: {"found": a, "total": b} for k, a, b in _rows(self.per_box_family)},
            "fp_per_normal_family": {k: {"flagged": a, "total": b} for k, a, b in _rows(self.per_normal_family)},
            "fp_sim_days": self.fp_sim_days, "active_normal_sim_days": self.active_normal_sim_days,
            "fp_rate_per_active_normal_sim_day": round(self.fp_rate_sim_day, 6),
            "box_sims_with_outgoing_calls": {"found": self.box_sims_with_mo[0], "total": self.box_sims_with_mo[1]},
            "delay_s": {"n": len(d), "median": statistics.median(d) if d else None,
                        "p90": d[int(0.9 * (len(d) - 1))] if d else None},
            "unmatched_reports": self.unmatched_reports, "simbox_device_reports": self.device_reports,
            "key_source": self.key_source,
        }


def _rows(table: dict[str, tuple[int, int]]) -> list[tuple[str, int, int]]:
    return [(k, a, b) for k, (a, b) in sorted(table.items())]


def score(truth: dict[str, object], reports: list[Report], keys: list[tuple[str, bytes]]) -> Score:
    """Match reports to truth SIMs with whichever key candidate names the most of them."""
    sims = truth["sims"]
    assert isinstance(sims, dict)
    subjects = {r.subject for r in reports}
    best: tuple[int, str, dict[str, str]] = (-1, "", {})
    for name, key in keys:
        table = {imsi_pseudonym(key, imsi): imsi for imsi in sims}
        hits = len(subjects & table.keys())
        if hits > best[0]:
            best = (hits, name, table)
    hits, key_name, table = best
    if reports and hits == 0:
        raise ScoreError(f"none of the {len(subjects)} SIM reports names a SIM of the truth file: "
                         "wrong site key (give the agent's config or data dir)?")
    t0 = float(truth["t0"])  # type: ignore[arg-type]
    first_report: dict[str, float] = {}
    flagged_days: set[tuple[str, int]] = set()
    s = Score(key_source=key_name)
    for r in reports:
        imsi = table.get(r.subject)
        if imsi is None:
            s.unmatched_reports += 1
            continue
        first_report[imsi] = min(r.ts, first_report.get(imsi, r.ts))
        flagged_days.add((imsi, int((r.ts - t0) // DAY)))
    box_fam: dict[str, list[int]] = {}
    norm_fam: dict[str, list[int]] = {}
    mo_found = mo_total = 0
    for imsi, info in sims.items():
        flagged = imsi in first_report
        fam = str(info["family"])
        if info["class"] == "simbox":
            row = box_fam.setdefault(fam, [0, 0])
            row[1] += 1
            if flagged:
                s.tp += 1
                row[0] += 1
            else:
                s.fn += 1
            if info.get("first_mo_ts") is not None:
                mo_total += 1
                if flagged:
                    mo_found += 1
                    s.delays_s.append(first_report[imsi] - float(info["first_mo_ts"]))
        else:
            row = norm_fam.setdefault(fam, [0, 0])
            row[1] += 1
            s.active_normal_sim_days += len(info.get("active_days", [])) or 1
            if flagged:
                s.fp += 1
                row[0] += 1
    s.fp_sim_days = sum(1 for imsi, _ in flagged_days if sims[imsi]["class"] != "simbox")
    s.per_box_family = {k: (v[0], v[1]) for k, v in box_fam.items()}
    s.per_normal_family = {k: (v[0], v[1]) for k, v in norm_fam.items()}
    s.box_sims_with_mo = (mo_found, mo_total)
    return s


def render(s: Score) -> str:
    d = s.as_dict()
    lines = [f"per SIM: precision {s.precision:.3f}  recall {s.recall:.3f}  F1 {s.f1:.3f}  "
             f"(tp {s.tp}, fp {s.fp}, fn {s.fn})",
             "recall per box family:"]
    lines += [f"  {k:<16} {a:>4}/{b:<4} {a / b if b else 0:.2f}" for k, a, b in _rows(s.per_box_family)]
    lines.append("false positives per normal family (flagged/SIMs):")
    lines += [f"  {k:<16} {a:>4}/{b:<5}" for k, a, b in _rows(s.per_normal_family)]
    lines.append(f"false-positive rate per active normal SIM-day: {s.fp_sim_days}/{s.active_normal_sim_days}"
                 f" = {100 * s.fp_rate_sim_day:.3f} %")
    delay = d["delay_s"]
    assert isinstance(delay, dict)
    if delay["n"]:
        lines.append(f"delay first outgoing call -> first report: median {delay['median'] / 60:.1f} min, "
                     f"p90 {delay['p90'] / 60:.1f} min (n={delay['n']}; box SIMs with outgoing calls found "
                     f"{s.box_sims_with_mo[0]}/{s.box_sims_with_mo[1]})")
    else:
        lines.append("delay: no box SIM found")
    lines.append(f"unmatched simbox.sim reports: {s.unmatched_reports}; simbox.device reports: {s.device_reports}; "
                 f"key: {s.key_source}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m simulators.blind.score", description=__doc__.split("\n\n")[0],
        epilog="example: python -m simulators.blind.score --truth /tmp/b1/truth.json "
               "--reports /tmp/b1/reports.jsonl --site-key-from /tmp/b1/site.toml")
    ap.add_argument("--truth", required=True)
    ap.add_argument("--reports", required=True)
    ap.add_argument("--site-key-from", required=True, metavar="CONFIG_OR_DATA_DIR")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args(argv)
    try:
        with open(a.truth, encoding="utf-8") as fh:
            truth = json.load(fh)
        reports, n_dev = read_reports(a.reports)
        s = score(truth, reports, key_candidates(a.site_key_from))
    except (OSError, ScoreError, KeyError, tomllib.TOMLDecodeError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 2
    s.device_reports = n_dev
    print(json.dumps(s.as_dict(), indent=1) if a.json else render(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
