"""Leave-one-family-out evaluation of the call-plane detector, and the single-feature
check.

    python -m models.callplane.lofo --cache /tmp/cpcache              # prints the tables
    python -m models.callplane.lofo --cache /tmp/cpcache --write-card # also the card
    python -m models.callplane.lofo --dev    # judged on train-profile days (choosing)

For every family of either class (five box families, eight normal ones) a model is
trained exactly as ``python -m models.callplane.train`` trains the committed one, but
without any SIM of that family in the training days or in the validation day that
sets its threshold; it is then tested on that family's SIMs in held-out days
(profile ``heldout``: parameter bands never drawn in training, seeds never used in
training). Pooled over families, every SIM of the held-out days is judged by the
model that never saw its family: that is the LOFO F1, false-positive rate per SIM-day
and delay from the first outgoing call.

How a SIM is judged here: the detector itself (rules only, no model) is replayed
over each held-out day and every feature vector it computes is recorded with its
event time (``train.collect``); a SIM is reported at the first vector on which an
explicit rule holds or the model's score reaches its threshold. That is what the
stage does live (it stops scoring a SIM once reported; nothing else depends on the
report), so the figures are the detector's, computed once per day instead of one
replay per model.

Positives are box SIMs that placed at least one outgoing call that day (not only
those past the 10-call evidence bar); delay is from that first outgoing call.

Single-feature check: for each feature, a depth-1 decision tree (one threshold) is
fitted on the held-out SIMs themselves (one vector per SIM: its last) and its F1
reported; the best of them says how far one feature alone gets. It is fitted on the
test data on purpose, as the most favourable case for a single feature.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from edge.telecom.callplane.features import FEATURES
from edge.telecom.callplane.rules import certain, device_tell
from models.callplane.train import (
    HERE,
    Scenario,
    Snapshots,
    collect_all,
    family_of,
    fit_excluding,
    scenarios,
)
from simulators.telecom.events import EVASION_LEVELS, NORMAL_FAMILIES

EVAL_SEEDS = (90001, 90002, 90003)
DEV_SEED = 20260602  # a further train-profile day, for --dev
BEGIN = "<!-- lofo:begin -->"
END = "<!-- lofo:end -->"


@dataclass
class FamilyRow:
    family: str
    label: str
    sims: int = 0
    flagged: int = 0
    by_rule: int = 0
    from_first_call: list[float] = field(default_factory=list)
    threshold: float = 0.0


@dataclass
class Pooled:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    sim_days: float = 0.0
    delays: list[float] = field(default_factory=list)

    @property
    def f1(self) -> float:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def first_alerts(clf: Any, thr: float, snaps: Snapshots, only: set[str] | None = None,
                 gate: bool = True) -> dict[str, tuple[float, bool]]:
    """SIM -> (event time of its first report, decided by a rule) for the SIMs in
    ``only`` (all if None); ``gate``: as ``require_device_evidence``."""
    idx = [i for i, s in enumerate(snaps.imsi) if only is None or s in only]
    if not idx:
        return {}
    X = snaps.array()[idx]
    probs = clf.predict_proba(X)[:, 1]
    out: dict[str, tuple[float, bool]] = {}
    for j, i in enumerate(idx):
        s = snaps.imsi[i]
        ts = snaps.ts[i]
        if s in out and out[s][0] <= ts:
            continue
        x = snaps.rows[i]
        rule = certain(x) is not None
        if rule or (probs[j] >= thr and (not gate or device_tell(x))):
            out[s] = (ts, rule)
    return out


def judge_family(fam: str, clf: Any, thr: float,
                 evals: list[tuple[Snapshots, dict[str, Any]]], pooled: Pooled) -> FamilyRow:
    label = "simbox" if fam in EVASION_LEVELS else "normal"
    row = FamilyRow(fam, label, threshold=thr)
    for snaps, truth in evals:
        sims = truth["sims"]
        days = float(truth["config"]["hours"]) / 24.0
        mine = {s for s, t in sims.items() if family_of(t) == fam}
        alerts = first_alerts(clf, thr, snaps, mine)
        for s in mine:
            t = sims[s]
            hit = alerts.get(s)
            if label == "simbox":
                if t.get("first_mo_ts") is None:
                    continue  # never placed a call that day: nothing to find
                row.sims += 1
                if hit is None:
                    pooled.fn += 1
                    continue
                row.flagged += 1
                row.by_rule += int(hit[1])
                d = max(0.0, hit[0] - t["first_mo_ts"])
                row.from_first_call.append(d)
                pooled.tp += 1
                pooled.delays.append(d)
            else:
                if t.get("first_ts") is None:
                    continue
                row.sims += 1
                pooled.sim_days += days
                if hit is not None:
                    row.flagged += 1
                    row.by_rule += int(hit[1])
                    pooled.fp += 1  # one-day scenarios: one FP SIM-day per flagged SIM
    return row


def single_feature_f1(evals: list[tuple[Snapshots, dict[str, Any]]]
                      ) -> list[tuple[str, float, float]]:
    """(feature, F1 of the best one-threshold split box vs normal, threshold), best
    first, on one vector per SIM (its last snapshot)."""
    from sklearn.metrics import f1_score
    from sklearn.tree import DecisionTreeClassifier

    rows: list[list[float]] = []
    ys: list[int] = []
    for snaps, truth in evals:
        last: dict[str, int] = {}
        for i, s in enumerate(snaps.imsi):
            last[s] = i
        for s, i in last.items():
            rows.append(snaps.rows[i])
            ys.append(int(truth["sims"].get(s, {"label": "normal"})["label"] == "simbox"))
    X = np.asarray(rows, dtype=np.float32)
    y = np.asarray(ys)
    out = []
    for k, name in enumerate(FEATURES):
        col = X[:, k:k + 1]
        tree = DecisionTreeClassifier(max_depth=1, class_weight="balanced", random_state=0)
        tree.fit(col, y)
        pred = tree.predict(col)
        thr = float(tree.tree_.threshold[0]) if tree.tree_.node_count > 1 else float("nan")
        out.append((name, float(f1_score(y, pred, zero_division=0)), thr))
    out.sort(key=lambda r: -r[1])
    return out


def _m(xs: list[float]) -> str:
    if not xs:
        return "-"
    v = statistics.median(xs)
    return f"{v:.0f} s" if v < 600 else f"{v / 60:.1f} min"


def _p90(xs: list[float]) -> str:
    if not xs:
        return "-"
    v = sorted(xs)[min(len(xs) - 1, int(0.9 * len(xs)))]
    return f"{v:.0f} s" if v < 600 else f"{v / 60:.1f} min"


def markdown(rows: list[FamilyRow], pooled: Pooled, single: list[tuple[str, float, float]],
             header: str) -> str:
    w5 = sum(1 for d in pooled.delays if d <= 300) / len(pooled.delays) if pooled.delays else 0
    fp_rate = pooled.fp / pooled.sim_days if pooled.sim_days else 0.0
    lines = [header, "", "Pooled over families (each SIM judged by the model trained "
             "without its family):", "",
             "| metric | value |", "|---|---|",
             f"| per-SIM precision / recall / F1 | {pooled.precision:.4f} / "
             f"{pooled.recall:.4f} / {pooled.f1:.4f} |",
             f"| box SIMs found / box SIMs that placed a call | {pooled.tp} / "
             f"{pooled.tp + pooled.fn} |",
             f"| false-positive SIM-days / active normal SIM-days | {pooled.fp} / "
             f"{pooled.sim_days:g} |",
             f"| false-positive rate per SIM-day | {100 * fp_rate:.4f} % |",
             f"| median / p90 delay from a box SIM's first outgoing call | "
             f"{_m(pooled.delays)} / {_p90(pooled.delays)} |",
             f"| reported within 5 min of the first call | {100 * w5:.1f} % |",
             "", "Per family held out (its threshold chosen without it):", "",
             "| family held out | class | SIMs | flagged | by a rule | median / p90 "
             "delay from first call | threshold |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.family} | {r.label} | {r.sims} | {r.flagged} | {r.by_rule} | "
                     f"{_m(r.from_first_call)} / {_p90(r.from_first_call)} | "
                     f"{r.threshold:.4f} |")
    lines += ["", "Single-feature check (depth-1 tree per feature, fitted on the held-out "
              "SIMs themselves, box vs normal, one vector per SIM): the best features",
              "", "| feature | best single-split F1 | split at |", "|---|---|---|"]
    for name, f1, thr in single[:8]:
        lines.append(f"| {name} | {f1:.4f} | {thr:.4g} |")
    return "\n".join(lines) + "\n"


class _Committed:
    """A committed model folder (model.onnx + model.json) as a classifier."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        self.contract = orjson.loads((folder / "model.json").read_bytes())
        self.session = ort.InferenceSession(str(folder / "model.onnx"),
                                            providers=["CPUExecutionProvider"])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {"features": X.astype(np.float32)})[1])


def judge_full(folder: Path, evals: list[tuple[Snapshots, dict[str, Any]]]) -> str:
    """One committed model (all families, its own threshold, the gate) over the
    days: per-SIM P/R/F1, false-positive SIM-days, flagged per family."""
    m = _Committed(folder)
    thr = float(m.contract["threshold"])
    pooled = Pooled()
    flagged: dict[str, int] = {}
    total: dict[str, int] = {}
    for snaps, truth in evals:
        alerts = first_alerts(m, thr, snaps)
        days = float(truth["config"]["hours"]) / 24.0
        for s, t in truth["sims"].items():
            fam = family_of(t)
            hit = alerts.get(s)
            if t["label"] == "simbox":
                if t.get("first_mo_ts") is None:
                    continue
                if hit is None:
                    pooled.fn += 1
                else:
                    pooled.tp += 1
                    pooled.delays.append(max(0.0, hit[0] - t["first_mo_ts"]))
            elif t.get("first_ts") is not None:
                pooled.sim_days += days
                pooled.fp += hit is not None
            else:
                continue
            total[fam] = total.get(fam, 0) + 1
            flagged[fam] = flagged.get(fam, 0) + (hit is not None)
    rate = 100 * pooled.fp / pooled.sim_days if pooled.sim_days else 0.0
    fams = ", ".join(f"{f} {flagged[f]}/{total[f]}" for f in sorted(total))
    return (f"{m.contract['version']} (threshold {thr}): P {pooled.precision:.4f} R "
            f"{pooled.recall:.4f} F1 {pooled.f1:.4f}; box SIMs {pooled.tp}/"
            f"{pooled.tp + pooled.fn}; false-positive SIM-days {pooled.fp}/"
            f"{pooled.sim_days:g} = {rate:.4f} %; median delay {_m(pooled.delays)}\n"
            f"  flagged per family: {fams}\n")


def write_card(text: str) -> None:
    card = HERE / "README.md"
    body = card.read_text("utf-8")
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in body:
        body = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, body,
                      flags=re.S)
    else:
        body += "\n" + block + "\n"
    card.write_text(body, "utf-8")


def _header(seed: int, eval_seeds: str, subscribers: int, boxes: int,
            trees: int | None = None, row_step: int = 1) -> str:
    train_sc, val_sc = scenarios(seed, quick=False)
    cmd = "python -m models.callplane.lofo --write-card"
    if eval_seeds != ",".join(map(str, EVAL_SEEDS)):
        cmd += f" --eval-seeds {eval_seeds}"
    note = ""
    if trees or row_step > 1:
        cmd += f" --trees {trees or 120} --row-step {row_step}"
        note = (f" Each left-out model has {trees or 120} trees and is trained on "
                f"one training row in {row_step} (the committed model: 120 trees, every row), "
                f"for time on a shared box.")
    return (f"Leave-one-family-out: `{cmd}` (training days: seeds {train_sc[0].seed}-"
            f"{train_sc[-1].seed}, profile train, validation seed {val_sc.seed}; held-out "
            f"days: seeds {eval_seeds}, profile heldout, {subscribers} subscribers and "
            f"{boxes} boxes of 1-32 ports each, 24 h).{note}")


def _combine(args: argparse.Namespace) -> int:
    """Union of runs over disjoint families (the same days): rows side by side,
    pooled counts summed."""
    order = {f: i for i, f in enumerate((*EVASION_LEVELS, *NORMAL_FAMILIES))}
    rows: list[FamilyRow] = []
    pooled = Pooled()
    single: list[tuple[str, float, float]] = []
    for part in args.combine.split(","):
        d = orjson.loads(Path(part).read_bytes())
        rows += [FamilyRow(**r) for r in d["rows"]]
        p = d["pooled"]
        pooled.tp += p["tp"]
        pooled.fn += p["fn"]
        pooled.fp += p["fp"]
        pooled.sim_days += p["sim_days"]
        pooled.delays += p["delays"]
        single = single or [tuple(x) for x in d["single"]]  # type: ignore[misc]
    rows.sort(key=lambda r: order.get(r.family, 99))
    text = markdown(rows, pooled, single, _header(args.seed, args.eval_seeds,
                                                  args.subscribers, args.boxes,
                                                  args.trees, args.row_step))
    print(text)
    if args.write_card:
        write_card(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20260101, help="first training seed")
    ap.add_argument("--eval-seeds", default=",".join(map(str, EVAL_SEEDS)))
    ap.add_argument("--subscribers", type=int, default=8000, help="per held-out day")
    ap.add_argument("--boxes", type=int, default=15, help="SIM-boxes per held-out day")
    ap.add_argument("--families", default="", help="only these (comma-separated)")
    ap.add_argument("--cache", type=Path, help="reuse feature snapshots here")
    ap.add_argument("--trees", type=int, default=None,
                    help="trees per model (default: as the committed model, 120)")
    ap.add_argument("--row-step", type=int, default=1,
                    help="train each model on every k-th training row (default 1: all)")
    ap.add_argument("--dev", action="store_true",
                    help="judge each family on train-profile days instead of held-out "
                         "ones: the training days, the validation day and seed "
                         f"{DEV_SEED} (its model never fitted on that family's SIMs); "
                         "for choosing changes without looking at held-out days")
    ap.add_argument("--write-card", action="store_true", help="update models/callplane/README")
    ap.add_argument("--save", type=Path, help="write this run's family rows as JSON")
    ap.add_argument("--full-models", default="",
                    help="comma-separated committed model folders (model.onnx + model.json):"
                         " judge each, trained on every family, over the evaluation days "
                         "instead of the leave-one-family-out run")
    ap.add_argument("--combine", default="",
                    help="comma-separated --save files of runs over disjoint families: "
                         "print (and --write-card) their union instead of training")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.combine:
        return _combine(args)
    train_sc, val_sc = scenarios(args.seed, quick=False)
    days = collect_all(train_sc, print, t0, args.cache)
    val = collect_all([val_sc], print, t0, args.cache)[0]
    if args.dev:
        if args.write_card:
            ap.error("--dev figures are for choosing changes, not for the card")
        extra = Scenario(DEV_SEED, val_sc.subscribers, val_sc.boxes, val_sc.ports, 24.0, "train")
        evals = [*days, val, *collect_all([extra], print, t0, args.cache)]
    else:
        eval_sc = [Scenario(int(s), args.subscribers, args.boxes, 8, 24.0, "heldout")
                   for s in args.eval_seeds.split(",") if s]
        evals = collect_all(eval_sc, print, t0, args.cache)
    if args.full_models:
        for folder in args.full_models.split(","):
            print(judge_full(Path(folder), evals), end="")
        return 0
    fams = [f for f in (*EVASION_LEVELS, *NORMAL_FAMILIES)
            if not args.families or f in args.families.split(",")]
    pooled = Pooled()
    rows = []
    for fam in fams:
        clf, thr, _, _ = fit_excluding(days, val, args.seed, False, frozenset({fam}),
                                       args.trees, args.row_step)
        row = judge_family(fam, clf, thr["threshold"], evals, pooled)
        rows.append(row)
        print(f"{fam}: {row.flagged}/{row.sims} flagged, median from first call "
              f"{_m(row.from_first_call)} ({time.time() - t0:.0f} s)", flush=True)
    single = single_feature_f1(evals)
    if args.save:
        args.save.write_bytes(orjson.dumps({
            "rows": [r.__dict__ for r in rows], "pooled": pooled.__dict__,
            "single": single, "args": {k: str(v) for k, v in vars(args).items()}}))
    header = _header(args.seed, args.eval_seeds, args.subscribers, args.boxes,
                     args.trees, args.row_step)
    text = markdown(rows, pooled, single, header)
    print(text)
    if args.write_card:
        write_card(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
