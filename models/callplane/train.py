"""Train the call-plane SIM-box model on simulated days; export ONNX + contract.

    python -m models.callplane.train            # full training (a few minutes)
    python -m models.callplane.train --quick    # small, for tests (writes to --out)
    python -m models.callplane.train --check    # retrain, compare with the committed bytes

What it does, deterministically given ``--seed``:
1. simulates training days (``train`` parameter bands, seeds from ``--seed``) with
   every family of both classes;
2. replays each through the real detector (rules only) and records the feature vector
   of every SIM each time the detector scores it, so the model sees exactly the
   vectors it will see live, at every stage of evidence (from a box SIM's first
   judged call on: early snapshots are positives too, so the model learns to
   report from the first minutes);
3. fits a gradient-boosted tree ensemble (scikit-learn), one sample weight budget per
   SIM so chatty SIMs do not dominate;
4. picks the alert threshold on a separate validation day: the lowest score at which
   ordinary and hard-negative SIMs stay under the false-alarm budget;
5. exports ``model.onnx`` (skl2onnx, fixed graph name, sorted opsets, no producer
   strings that vary) and ``model.json`` (features, threshold, sha256, per-feature
   reference of ordinary subscribers for the alert's "why", and the sha256 of the
   ``--quick`` model this code produces, which the test suite retrains and compares).

``exclude`` leaves families out of training and threshold choice (leave-one-family-
out evaluation, :mod:`models.callplane.lofo`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from drivers.events.decoder import EventDecoder
from edge.config import CallPlaneSection
from edge.records import BaseStationEvent
from edge.telecom.callplane.detector import CallPlaneDetector
from edge.telecom.callplane.features import FEATURES
from simulators.telecom.events import EventSimConfig, EventSimulator

HERE = Path(__file__).resolve().parent
NAME = "callplane"
VERSION = "2.4.0"
THIN_S = 600.0
FP_BUDGET = 0.0002  # validation false alarms per active SIM per day (under half the target)
UNGATED_BUDGET = 10 * FP_BUDGET  # share of negatives the bare score may pass (the floor)


@dataclass
class Scenario:
    seed: int
    subscribers: int
    boxes: int
    ports: int
    hours: float = 24.0
    profile: str = "train"
    warmup_h: float = 0.0
    """Hours simulated before the day (``hours`` more in all) whose vectors are not
    kept: the detector starts with the feed, so after them its windows are full, as
    on an agent that has been running (a cold day alone is what an agent sees only
    on its first day)."""

    def sim_config(self) -> EventSimConfig:
        return EventSimConfig(seed=self.seed, subscribers=self.subscribers,
                              simbox_devices=self.boxes, ports_per_device=self.ports,
                              hours=self.hours + self.warmup_h, profile=self.profile,
                              warmup_h=self.warmup_h)


@dataclass
class Snapshots:
    rows: list[list[float]] = field(default_factory=list)
    imsi: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)

    def array(self) -> np.ndarray:
        return np.asarray(self.rows, dtype=np.float32).reshape(-1, len(FEATURES))


def replay_events(sim: EventSimulator) -> Iterator[BaseStationEvent]:
    """The simulator's events through the real JSONL decoder (same bytes as a file)."""
    dec = EventDecoder("train")
    dumps = orjson.dumps
    for n, ev in enumerate(sim.events(), 1):
        rec = dec.decode_line(dumps(ev), n)
        if isinstance(rec, BaseStationEvent):
            yield rec


def collect(sc: Scenario, cfg: CallPlaneSection | None = None) -> tuple[Snapshots, dict[str, Any]]:
    """Feature snapshots of every SIM the detector scored during the scenario."""
    cfg = cfg or CallPlaneSection(rules_only=True)
    snaps = Snapshots()
    sim = EventSimulator(sc.sim_config())
    begin = sim.cfg.start_ts + 3600.0 * sc.warmup_h

    def hook(imsi: str, ts: float, x: list[float]) -> None:
        if ts < begin:
            return  # the warm-up: filling the windows
        snaps.rows.append(x)
        snaps.imsi.append(imsi)
        snaps.ts.append(ts)

    det = CallPlaneDetector(cfg, None, on_scored=hook, alerts=False)
    next_tick = -1.0
    for ev in replay_events(sim):
        det.feed(ev)
        if ev.ts >= next_tick:
            det.tick(ev.ts)
            next_tick = ev.ts + 1.0
    det.flush(next_tick)
    return snaps, sim.truth()


def family_of(t: dict[str, Any]) -> str:
    return str(t.get("family") or t.get("evasion") or t.get("persona") or "?")


def label_rows(snaps: Snapshots, truth: dict[str, Any], exclude: frozenset[str] = frozenset()
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(X, y, weight, imsi) with one weight budget per SIM; SIMs of ``exclude``d
    families are left out. Every snapshot of a box SIM is a positive (the detector
    only judges a SIM after outgoing calls: from then on it is working as a box)."""
    sims = truth["sims"]
    keep: list[int] = []
    y: list[int] = []
    last: dict[str, float] = {}
    kept: dict[str, int] = {}
    normal = {"label": "normal"}
    for i, imsi in enumerate(snaps.imsi):
        t = sims.get(imsi, normal)
        if exclude and family_of(t) in exclude:
            continue
        # Thin: neighbouring snapshots of one SIM are near-duplicates.
        # Early snapshots (a SIM's first few judgements, on little evidence) are where
        # busy people and young boxes look alike: keep those dense, thin the rest more.
        early = kept.get(imsi, 0) < 6
        thin = 0.0 if early else (THIN_S if t["label"] == "simbox" else 3 * THIN_S)
        if snaps.ts[i] - last.get(imsi, -1e18) < thin:
            continue
        last[imsi] = snaps.ts[i]
        kept[imsi] = kept.get(imsi, 0) + 1
        y.append(1 if t["label"] == "simbox" else 0)
        keep.append(i)
    X = snaps.array()[keep] if keep else np.zeros((0, len(FEATURES)), np.float32)
    ids = [snaps.imsi[i] for i in keep]
    counts: dict[str, int] = {}
    for s in ids:
        counts[s] = counts.get(s, 0) + 1
    w = np.asarray([1.0 / counts[s] for s in ids], dtype=np.float64)
    return X, np.asarray(y, dtype=np.int64), w, ids


def fit(X: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int, quick: bool,
        trees: int | None = None) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    pos = w[y == 1].sum()
    neg = w[y == 0].sum()
    w = w.copy()
    if pos > 0:
        w[y == 1] *= neg / pos  # balance the classes
    clf = GradientBoostingClassifier(
        n_estimators=trees or (40 if quick else 120), max_depth=3, learning_rate=0.1,
        subsample=0.5, min_samples_leaf=20, random_state=seed)
    clf.fit(X, y, sample_weight=w)
    return clf


def onnx_bytes(clf: Any) -> bytes:
    """The ONNX serialisation, byte-for-byte reproducible: a fixed graph name (skl2onnx
    otherwise names the graph after a random id), opsets in sorted order, no
    producer version strings."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(clf, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                          options={id(clf): {"zipmap": False}},
                          target_opset={"": 17, "ai.onnx.ml": 3}, name=NAME)
    onx.graph.name = NAME
    onx.producer_name = "afe-train"
    onx.producer_version = VERSION
    onx.doc_string = ""
    ops = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in ops:
        o = onx.opset_import.add()
        o.domain, o.version = domain, version
    return bytes(onx.SerializeToString(deterministic=True))


def export_onnx(clf: Any, path: Path) -> None:
    path.write_bytes(onnx_bytes(clf))


def per_sim_max(probs: np.ndarray, ids: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p, s in zip(probs, ids, strict=True):
        if p > out.get(s, -1.0):
            out[s] = float(p)
    return out


def choose_threshold(clf: Any, val: Snapshots, truth: dict[str, Any],
                     exclude: frozenset[str] = frozenset(), gate: bool = True,
                     budget: float = FP_BUDGET) -> dict[str, Any]:
    """Lowest threshold keeping negatives under ``budget`` per active SIM (validation
    day, families in ``exclude`` left out), and with ``gate`` (the detector's
    ``require_device_evidence``) at least the bare score's threshold under
    ``UNGATED_BUDGET``. SIMs the explicit rules already flag do not count against
    the model: they are reported either way."""
    from edge.telecom.callplane.rules import certain, device_tell

    X = val.array()
    probs = clf.predict_proba(X)[:, 1] if len(X) else np.zeros(0)
    if gate:  # the detector ignores the score of a SIM without a device tell
        probs = probs * np.asarray([device_tell(x) for x in val.rows], dtype=np.float64)
    mx = per_sim_max(probs, val.imsi)
    sims = truth["sims"]
    ruled = {s for s, x in zip(val.imsi, val.rows, strict=True) if certain(x) is not None}
    keep = {s for s, t in sims.items() if not (exclude and family_of(t) in exclude)}
    neg = sorted((p for s, p in mx.items() if s in keep and s not in ruled
                  and sims.get(s, {}).get("label") != "simbox"), reverse=True)
    active = sum(1 for s in keep if sims[s]["label"] != "simbox"
                 and sims[s].get("first_ts") is not None)
    allowed = int(budget * active)
    thr = 0.5
    if len(neg) > allowed:
        thr = max(thr, min(0.995, neg[allowed] + 1e-4))
    if gate:
        # Floor: the score itself must be rare among all negatives (under
        # UNGATED_BUDGET), whatever the gate lets through. Without it, a gate that
        # passes few validation negatives lets the threshold fall towards 0.5 and a
        # family the validation day does not hold (left out, or new) floods in.
        thr = max(thr, choose_threshold(clf, val, truth, exclude, gate=False,
                                        budget=UNGATED_BUDGET)["threshold"])
    boxes = [s for s, t in sims.items() if s in keep and t["label"] == "simbox"
             and t.get("first_mo_ts") is not None]
    caught = sum(1 for s in boxes if mx.get(s, 0.0) >= thr or s in ruled)
    fps = sum(1 for p in neg if p >= thr)
    return {"threshold": round(float(thr), 4), "validation_recall": round(
        caught / max(1, len(boxes)), 4), "validation_fp_sims": fps,
            "validation_active_sims": active}


def reference(X: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Median and IQR (floored) of each feature over negatives: the 'ordinary' yardstick."""
    neg = X[y == 0]
    ref: dict[str, list[float]] = {}
    for i, f in enumerate(FEATURES):
        col = neg[:, i] if len(neg) else np.zeros(1)
        q1, med, q3 = np.percentile(col, [25, 50, 75])
        scale = max(float(q3 - q1), 0.1 * abs(float(med)), 0.05)
        ref[f] = [round(float(med), 4), round(scale, 4)]
    return ref


def scenarios(seed: int, quick: bool) -> tuple[list[Scenario], Scenario]:
    if quick:
        return [Scenario(seed, 1200, 10, 6, hours=8)], Scenario(seed + 500, 1200, 5, 6, 8)
    train = [Scenario(seed + i, 5000, 20, 8) for i in range(4)]
    return train, Scenario(seed + 500, 10000, 15, 8)


def code_digest() -> str:
    """Hash of the code that produces snapshots (simulator, decoder, state, features,
    detector; not the rules: snapshots are taken with alerts off): the snapshot
    cache is only reused while it is unchanged."""
    root = HERE.parents[1]
    h = hashlib.sha256()
    for rel in ("simulators/telecom/events.py", "edge/telecom/callplane/state.py",
                "edge/telecom/callplane/features.py", "edge/telecom/callplane/cohort.py",
                "edge/telecom/callplane/detector.py", "drivers/events/decoder.py"):
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:16]


def collect_cached(sc: Scenario, cache: Path | None) -> tuple[Snapshots, dict[str, Any]]:
    """:func:`collect`, memoised in ``cache`` (keyed by scenario and code digest)."""
    if cache is None:
        return collect(sc)
    key = hashlib.sha256(repr((sorted(sc.__dict__.items()), code_digest())).encode()
                         ).hexdigest()[:20]
    f = cache / f"snap-{key}.npz"
    tf = cache / f"snap-{key}.truth.json"
    if f.exists() and tf.exists():
        z = np.load(f)
        snaps = Snapshots([list(map(float, r)) for r in z["rows"]], list(z["imsi"]),
                          list(map(float, z["ts"])))
        return snaps, orjson.loads(tf.read_bytes())
    snaps, truth = collect(sc)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, rows=snaps.array(), imsi=np.asarray(snaps.imsi), ts=np.asarray(snaps.ts))
    tf.write_bytes(orjson.dumps(truth))
    return snaps, truth


def collect_all(scs: list[Scenario], log: Any = print, t0: float = 0.0,
                cache: Path | None = None) -> list[tuple[Snapshots, dict[str, Any]]]:
    out = []
    for sc in scs:
        snaps, truth = collect_cached(sc, cache)
        out.append((snaps, truth))
        log(f"scenario seed={sc.seed} ({sc.profile}): {len(snaps.rows)} snapshots "
            f"({time.time() - t0:.0f} s)")
    return out


def fit_excluding(days: list[tuple[Snapshots, dict[str, Any]]],
                  val: tuple[Snapshots, dict[str, Any]], seed: int, quick: bool,
                  exclude: frozenset[str] = frozenset(), trees: int | None = None,
                  row_step: int = 1) -> tuple[Any, dict[str, Any], np.ndarray, np.ndarray]:
    """Fit on the training days without the ``exclude``d families, pick the
    threshold on the validation day without them; returns (clf, threshold info, X, y)."""
    Xs, ys, ws = [], [], []
    for snaps, truth in days:
        X, y, w, _ = label_rows(snaps, truth, exclude)
        Xs.append(X)
        ys.append(y)
        ws.append(w)
    X, y, w = np.concatenate(Xs), np.concatenate(ys), np.concatenate(ws)
    if row_step > 1:  # every k-th row (the leave-one-family-out runs, for time)
        X, y, w = X[::row_step], y[::row_step], w[::row_step]
    clf = fit(X, y, w, seed, quick, trees)
    thr = choose_threshold(clf, val[0], val[1], exclude)
    return clf, thr, X, y


def train(seed: int = 20260101, quick: bool = False, out: Path = HERE,
          log: Any = print, cache: Path | None = None) -> dict[str, Any]:
    t0 = time.time()
    train_sc, val_sc = scenarios(seed, quick)
    days = collect_all(train_sc, log, t0, cache)
    val = collect_all([val_sc], log, t0, cache)[0]
    clf, thr, X, y = fit_excluding(days, val, seed, quick)
    log(f"fitted on {len(y)} rows, threshold {thr} ({time.time() - t0:.0f} s)")
    out.mkdir(parents=True, exist_ok=True)
    data = onnx_bytes(clf)
    onnx_path = out / "model.onnx"
    onnx_path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    importances = sorted(zip(FEATURES, clf.feature_importances_, strict=True),
                         key=lambda kv: -kv[1])
    quick_sha = None
    if not quick:
        # The --quick model of this very code: the test suite retrains it in seconds
        # and compares, so a committed model.json always names the code it came from.
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            quick_sha = train(QUICK_SEED, True, Path(tmp), log=lambda *_: None)["sha256"]
    contract = {
        "name": NAME, "version": VERSION, "sha256": digest, "features": list(FEATURES),
        "outputs": {"probabilities": "[:, 1] = P(SIM-box SIM)"},
        "threshold": thr["threshold"],
        "reference": reference(X, y),
        "training": {
            "seed": seed, "quick": quick,
            "command": "python -m models.callplane.train" + (" --quick" if quick else ""),
            "scenarios": [sc.__dict__ for sc in train_sc], "validation": val_sc.__dict__,
            "rows": int(len(y)), "positive_rows": int(y.sum()),
            "estimator": "sklearn GradientBoostingClassifier",
            "quick_model_sha256": quick_sha, "quick_seed": QUICK_SEED,
            **{k: v for k, v in thr.items() if k != "threshold"},
            "feature_importance": {k: round(float(v), 4) for k, v in importances},
        },
    }
    (out / "model.json").write_text(json.dumps(contract, indent=2) + "\n", "utf-8")
    from models.package import finish_package  # canary set and drift reference

    finish_package(out, X, seed=seed, reference_rows=X[y == 0])  # a site's traffic
    log(f"wrote {onnx_path} ({len(data)} bytes, sha256 {digest[:12]}) in "
        f"{time.time() - t0:.0f} s")
    return contract


QUICK_SEED = 7


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20260101, help="first training seed")
    ap.add_argument("--quick", action="store_true", help="small run (tests)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for model.onnx/json")
    ap.add_argument("--cache", type=Path,
                    help="reuse feature snapshots here (same scenario and code only)")
    ap.add_argument("--check", action="store_true",
                    help="train into a temp folder and compare with the committed model")
    args = ap.parse_args(argv)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = train(args.seed, args.quick, Path(tmp), cache=args.cache)
        committed = json.loads((HERE / "model.json").read_text("utf-8"))
        same = fresh["sha256"] == committed["sha256"]
        print(f"fresh {fresh['sha256']} {'==' if same else '!='} committed "
              f"{committed['sha256']}")
        return 0 if same else 1
    train(args.seed, args.quick, args.out, cache=args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
