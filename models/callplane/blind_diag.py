"""Why the call-plane detector misses (or flags) the SIMs of a blind generator's run.

    python -m models.callplane.blind_diag --run DIR [--vectors F.npz] [--train-seed S --cache C]

``DIR`` holds ``events.jsonl`` and ``truth.json`` of ``simulators.blind.events``. The
events are replayed through the real decoder and the detector (rules only, alerts
off, as ``models.callplane.lofo`` does for held-out days) and every judged feature
vector is recorded; the committed model then scores them and each SIM gets the
verdict the live stage would give it (first vector on which a rule holds, or the
score reaches the threshold with a device tell, ``require_device_evidence``), or the
reason it got none:

- ``not_judged``: never judged (fewer than ``min_calls`` outgoing calls in 24 h and no
  early device or group evidence);
- ``gate_open_low_score``: some vector had a device tell, none reached the threshold;
- ``score_no_gate``: some vector reached the threshold, none had a device tell;
- ``never_together``: both happened, never on one vector; ``neither``: neither did.

Printed (markdown): one row per box (its truth parameters, found / why missed, the
block and group sizes the detector measured, scores), the normal families flagged
and by which tell, a counterfactual (the missed SIMs' best vectors with the box-size
features capped at our simulator's box size: does the score then pass?) and, with
``--train-seed``, the same size features on a training-profile day of our simulator.
Diagnosis only: nothing here feeds training or thresholds.

``--patch`` replays with one experimental change applied in-process (pure modules only:
run with ``AFE_NATIVE=0``; nothing is changed on disk): ``recheck`` (group evidence
re-checked on every outgoing call below ``min_calls``, not on the 3rd only), ``chain``
(IMEI blocks as chains of consecutive known serials, gap <= 2, instead of aligned
buckets of 100), ``recent`` (the block's hour view reads its 64 most recently seen
SIMs, not the 64 lowest IMSIs). ``--totals`` prints per-SIM precision/recall/F1.
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from drivers.events.decoder import EventDecoder
from edge.config import CallPlaneSection
from edge.records import BaseStationEvent
from edge.telecom.callplane.detector import CallPlaneDetector
from edge.telecom.callplane.features import FEATURES, INDEX
from edge.telecom.callplane.rules import (
    LINK_TELL_KNOWN,
    LINK_TELL_SIMS,
    _group,
    certain,
    device_tell,
)

SIZE_FEATURES = ("block_imsis", "block_concurrent_mo", "cohort_sims", "cohort_dialers",
                 "cohort_concurrent_mo")
CAP = 8.0  # our simulator's mean ports per box (ports_per_device)
SHOWN = ("mo_24h", "mt_24h", "max_imsis_per_imei", "block_imsis", "block_concurrent_mo",
         "block_mo_share", "cohort_sims", "cohort_dialers")


@dataclass
class Vectors:
    rows: np.ndarray  # float32[n, len(FEATURES)]
    imsi: list[str]
    ts: list[float]


def replay(events: Path, cfg: CallPlaneSection | None = None) -> Vectors:
    """Every feature vector the detector judged while replaying ``events``."""
    rows: list[list[float]] = []
    imsis: list[str] = []
    tss: list[float] = []

    def hook(imsi: str, ts: float, x: list[float]) -> None:
        rows.append(x)
        imsis.append(imsi)
        tss.append(ts)

    det = CallPlaneDetector(cfg or CallPlaneSection(rules_only=True), None, on_scored=hook,
                            alerts=False)
    dec = EventDecoder("blind-diag")
    next_tick = -1.0
    with events.open("rb") as f:
        for n, line in enumerate(f, 1):
            rec = dec.decode_line(line, n)
            if isinstance(rec, BaseStationEvent):
                det.feed(rec)
                if rec.ts >= next_tick:
                    det.tick(rec.ts)
                    next_tick = rec.ts + 1.0
    det.flush(next_tick)
    arr = np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURES))
    return Vectors(arr, imsis, tss)


def load_vectors(run: Path, cache: Path | None) -> Vectors:
    if cache is not None and cache.exists():
        z = np.load(cache)
        return Vectors(z["rows"], [str(s) for s in z["imsi"]], [float(t) for t in z["ts"]])
    v = replay(run / "events.jsonl")
    if cache is not None:
        np.savez(cache, rows=v.rows, imsi=np.asarray(v.imsi), ts=np.asarray(v.ts))
    return v


def apply_patch(name: str) -> None:
    """Apply one experiment of ``--patch`` to the pure modules (see the docstring)."""
    from edge import native
    from edge.telecom.callplane import detector, features, state

    if native.active():
        raise SystemExit("--patch needs the pure modules: run with AFE_NATIVE=0")
    if name == "recheck":
        def group_evidence(self: Any, imsi: str, st: Any, now: float, mo_n: int) -> bool:
            if st.flags & state.GROUP:
                return True
            if mo_n < 3 or not self.cohort.tells(imsi, st, self.tables, now):
                return False
            st.flags |= state.GROUP
            return True
        detector.CallPlaneDetector._group_evidence = group_evidence  # type: ignore[method-assign]
    elif name == "chain":
        def block_imeis(self: Any, imei: str) -> list[str]:
            devs, body = self.imeis, imei[:14]
            out = [body] if body in devs else []
            try:
                serial = int(body[8:])
            except ValueError:
                return out
            for step in (1, -1):
                s, miss = serial, 0
                while miss <= 2 and len(out) < 200:
                    s += step
                    k = f"{body[:8]}{s:06d}"
                    if 0 <= s <= 999_999 and k in devs:
                        out.append(k)
                        miss = 0
                    else:
                        miss += 1
            return out
        state.EntityTables.block_imeis = block_imeis  # type: ignore[method-assign]
    elif name == "recent":
        orig = features.block_view

        def block_view(st: Any, block: set[str], tables: Any, now: float) -> Any:
            cap = features.MAX_BLOCK_SIMS
            if len(block) > cap:
                sims = tables.sims
                block = set(sorted(block, key=lambda k: -(sims[k].last if k in sims
                                                          else -math.inf))[:cap])
            return orig(st, block, tables, now)
        features.block_view = block_view
    else:
        raise SystemExit(f"unknown --patch {name!r}")


def totals(v: Vectors, truth: dict[str, Any], model: Any) -> str:
    """Per-SIM precision / recall / F1 of the offline verdicts, false alarms per family."""
    ver = verdicts(v, model.predict_proba(v.rows), float(model.contract["threshold"]))
    sims = truth["sims"]
    flagged = {s for s, r in ver.items() if r.how == "model" or r.how.startswith("rule:")}
    boxes = {s for s, t in sims.items() if t["class"] == "simbox"}
    tp, fp, fn = len(flagged & boxes), len(flagged - boxes), len(boxes - flagged)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    fams = collections.Counter(sims[s]["family"] for s in flagged - boxes)
    return (f"box SIMs found {tp}/{tp + fn}, false alarms {fp} {dict(fams.most_common())}; "
            f"P {p:.3f} R {r:.3f} F1 {f1:.3f}\n")


def tells(x: list[float]) -> list[str]:
    """The device or group tells of ``rules.device_tell`` that hold on ``x``."""
    i = INDEX
    out = []
    if x[i["imeis_per_imsi"]] >= 2:
        out.append("several_imeis")
    if x[i["max_imsis_per_imei"]] >= 2:
        out.append("shared_imei")
    if (x[i["block_imsis"]] >= 3 and x[i["block_mo_share"]] == 1.0
            and x[i["device_mo_per_sim"]] >= 1):
        out.append("block")
    if x[i["slow_attach_only"]] == 1 and x[i["auth_cv"]] > 0:
        out.append("slow_attach")
    if x[i["luhn_bad"]] == 1:
        out.append("luhn")
    if x[i["module_tac"]] == 1:
        out.append("module_tac")
    if _group(x):
        out.append("group")
    if x[i["link_cell_sims"]] >= LINK_TELL_SIMS and x[i["known_peer_share"]] < LINK_TELL_KNOWN:
        out.append("links")
    return out


@dataclass
class Verdict:
    how: str  # "rule:<name>", "model", or a reason for no report (module docstring)
    row: int | None  # the deciding vector, or the best-scored one


def verdicts(v: Vectors, probs: np.ndarray, thr: float) -> dict[str, Verdict]:
    per: dict[str, list[int]] = collections.defaultdict(list)
    for k, s in enumerate(v.imsi):
        per[s].append(k)
    out: dict[str, Verdict] = {}
    for s, ks in per.items():
        ks.sort(key=lambda k: v.ts[k])
        any_p = any_t = False
        for k in ks:
            x = v.rows[k].tolist()
            hit = certain(x)
            if hit is not None:
                out[s] = Verdict("rule:" + hit.name, k)
                break
            ok_p, ok_t = bool(probs[k] >= thr), device_tell(x)
            if ok_p and ok_t:
                out[s] = Verdict("model", k)
                break
            any_p |= ok_p
            any_t |= ok_t
        else:
            how = ("never_together" if any_p and any_t else "score_no_gate" if any_p
                   else "gate_open_low_score" if any_t else "neither")
            out[s] = Verdict(how, max(ks, key=lambda k: probs[k]))
    return out


def _med(xs: Any) -> str:
    xs = list(xs)
    return f"{statistics.median(xs):.3g}" if xs else "-"


def report(v: Vectors, truth: dict[str, Any], model: Any) -> str:
    thr = float(model.contract["threshold"])
    probs = model.predict_proba(v.rows) if len(v.rows) else np.zeros(0)
    ver = verdicts(v, probs, thr)
    sims = truth["sims"]
    boxes = {b["box"]: b for b in truth["boxes"]}
    group_of = np.array([sims.get(s, {}).get("group") if sims.get(s, {}).get("class")
                         == "simbox" else None for s in v.imsi], dtype=object)
    bi, bc = INDEX["block_imsis"], INDEX["block_concurrent_mo"]
    lines = [f"threshold {thr:.3f}; {len(v.rows)} judged vectors", "",
             "| box | family | channels | SIMs | found (rule/model) | not judged | gate open, "
             "score < thr | score >= thr, no tell | other | block_imsis med | "
             "block_concurrent_mo med / share > 10 | p med (bcm <= 10 / > 10) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(boxes):
        b = boxes[name]
        mine = [s for s, t in sims.items() if t.get("group") == name]
        c = collections.Counter(ver[s].how if s in ver else "not_judged" for s in mine)
        rule = sum(n for h, n in c.items() if h.startswith("rule:"))
        other = c["never_together"] + c["neither"]
        sel = group_of == name
        if sel.any():
            bcm = v.rows[sel, bc]
            hi = bcm > 10
            p = probs[sel]
            size = (f"{np.median(v.rows[sel, bi]):.0f} | {np.median(bcm):.0f} / "
                    f"{100 * hi.mean():.0f} % | {_med(p[~hi])} / {_med(p[hi])}")
        else:
            size = "- | - | -"
        lines.append(f"| {name} | {b['family']} | {b['channels']} | {len(mine)} | "
                     f"{rule + c['model']} ({rule}/{c['model']}) | {c['not_judged']} | "
                     f"{c['gate_open_low_score']} | {c['score_no_gate']} | {other} | {size} |")
    lines += ["", "Normal SIMs flagged (the tells open on the deciding vector; medians of it):",
              "", "| family | SIMs | flagged | tells | " + " | ".join(SHOWN) + " |",
              "|---|---|---|---|" + "---|" * len(SHOWN)]
    fams: dict[str, list[str]] = collections.defaultdict(list)
    for s, t in sims.items():
        if t["class"] == "normal":
            fams[t["family"]].append(s)
    for fam in sorted(fams):
        hits = [ver[s] for s in fams[fam] if s in ver and (ver[s].how == "model"
                                                           or ver[s].how.startswith("rule:"))]
        if not hits:
            continue
        rows = [v.rows[h.row].tolist() for h in hits if h.row is not None]
        tc = collections.Counter(t for x in rows for t in tells(x))
        lines.append(f"| {fam} | {len(fams[fam])} | {len(hits)} | "
                     f"{', '.join(f'{k} {n}' for k, n in tc.most_common())} | "
                     + " | ".join(_med(x[INDEX[f]] for x in rows) for f in SHOWN) + " |")
    lines += ["", f"Counterfactual: box SIMs missed with the gate open, their best vector with "
              f"{', '.join(SIZE_FEATURES)} capped at {CAP:g} (our simulator's mean box): "
              "how many would then reach the threshold.", "",
              "| box | channels | missed, gate open | p med | pass with sizes capped | p med |",
              "|---|---|---|---|---|---|"]
    for name in sorted(boxes):
        ks = [ver[s].row for s, t in sims.items() if t.get("group") == name and s in ver
              and ver[s].how == "gate_open_low_score"]
        idx = [k for k in ks if k is not None]
        if not idx:
            continue
        x0 = v.rows[idx].copy()
        x1 = x0.copy()
        for f in SIZE_FEATURES:
            x1[:, INDEX[f]] = np.minimum(x1[:, INDEX[f]], CAP)
        p0, p1 = model.predict_proba(x0), model.predict_proba(x1)
        lines.append(f"| {name} | {boxes[name]['channels']} | {len(idx)} | {_med(p0)} | "
                     f"{int((p1 >= thr).sum())} | {_med(p1)} |")
    return "\n".join(lines) + "\n"


def train_ranges(seed: int, cache: Path | None, model: Any = None) -> str:
    """The size features on one training-profile day of our simulator: boxes against the
    normal families that reach the same values."""
    from models.callplane.train import Scenario, collect_cached, family_of

    snaps, truth = collect_cached(Scenario(seed, 5000, 20, 8, 24.0, "train"), cache)
    x = snaps.array()
    sims = truth["sims"]
    fam = np.array([family_of(sims.get(s, {})) for s in snaps.imsi])
    box = np.array([sims.get(s, {}).get("label") == "simbox" for s in snaps.imsi])
    sizes = sorted(len(d["imsis"]) for d in truth.get("devices", {}).values())
    ports = sorted(len(d.get("imeis", [])) for d in truth.get("devices", {}).values())
    lines = [f"Training-profile day seed {seed} (5,000 subscribers, 20 boxes): SIMs per box "
             f"{sizes}, IMEIs per box {ports}.", "",
             "| feature | box vectors p50 / p99 / max | vectors > 10: boxes / normal (top families) |",
             "|---|---|---|"]
    for f in (*SIZE_FEATURES, "max_imsis_per_imei"):
        c = x[:, INDEX[f]]
        b = c[box]
        hi = c > 10
        top = collections.Counter(fam[hi & ~box]).most_common(3)
        lines.append(f"| {f} | {np.percentile(b, 50):.0f} / {np.percentile(b, 99):.0f} / "
                     f"{b.max():.0f} | {int((hi & box).sum())} / {int((hi & ~box).sum())} "
                     f"({', '.join(f'{k} {n}' for k, n in top)}) |")
    if model is not None:
        box_sims = {k for k, t in sims.items() if t.get("label") == "simbox"
                    and t.get("first_mo_ts") is not None}
        lines += ["", f"The same day judged with the size features capped at {CAP:g} (what a "
                  "clip at inference would cost):", "",
                  "| sizes | box SIMs found | false alarms (families) |", "|---|---|---|"]
        for cap in (None, CAP):
            x2 = x.copy()
            if cap is not None:
                for f in SIZE_FEATURES:
                    x2[:, INDEX[f]] = np.minimum(x2[:, INDEX[f]], cap)
            ver = verdicts(Vectors(x2, list(snaps.imsi), list(snaps.ts)),
                           model.predict_proba(x2), float(model.contract["threshold"]))
            flagged = {k for k, r in ver.items() if r.how == "model" or r.how.startswith("rule:")}
            fp = collections.Counter(family_of(sims[k]) for k in flagged - box_sims)
            lines.append(f"| {'as measured' if cap is None else f'capped at {cap:g}'} | "
                         f"{len(flagged & box_sims)}/{len(box_sims)} | {sum(fp.values())} "
                         f"({', '.join(f'{k} {n}' for k, n in fp.most_common())}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="events.jsonl + truth.json")
    ap.add_argument("--vectors", type=Path, help="cache the judged vectors here (.npz)")
    ap.add_argument("--model", type=Path, help="model folder (default: the committed one)")
    ap.add_argument("--train-seed", type=int, help="also show a training-profile day")
    ap.add_argument("--cache", type=Path, help="snapshot cache for --train-seed")
    ap.add_argument("--patch", choices=("recheck", "chain", "recent"),
                    help="replay with this experiment applied (AFE_NATIVE=0)")
    ap.add_argument("--totals", action="store_true", help="only the overall figures")
    args = ap.parse_args(argv)
    if args.patch:
        apply_patch(args.patch)
    from models.loader import MODELS_DIR, load_model

    model = load_model(args.model or MODELS_DIR / "callplane", expect_features=FEATURES)
    truth = orjson.loads((args.run / "truth.json").read_bytes())
    vec = load_vectors(args.run, args.vectors)
    print(totals(vec, truth, model) if args.totals else report(vec, truth, model))
    if args.train_seed is not None:
        print(train_ranges(args.train_seed, args.cache, model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
