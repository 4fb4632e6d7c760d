"""Train the IP-plane GoIP behaviour model on simulated endpoints; export ONNX + contract.

    python -m models.ipplane.train              # the packaged model (about a minute)
    python -m models.ipplane.train --quick --out /tmp/m   # small, for tests

Deterministic given ``--seed``:
1. generates training scenarios (simulators/telecom/ipplane_behaviour.py, ``train``
   parameter ranges, seeds ``seed .. seed+n-1``): plain, masked and low-and-slow GoIPs,
   SIM-bank clients, softphones, IP phones, PBX trunks and the servers they talk to;
   plus a few labelled captures of the pcap simulator (simulators/telecom/pcap.py,
   seeds ``seed+100 ..``) decoded by the fast pcap reader, as live traffic would be;
2. replays each through the real detector (no model) and records the feature vector
   of every endpoint each time the detector judges it, so the model sees exactly the
   vectors it sees live, early in the window and late;
3. fits gradient-boosted trees (scikit-learn), weighting each endpoint equally so
   chatty endpoints do not dominate;
4. picks the threshold on separate validation scenarios: just above the highest
   score any negative endpoint reached there on a row the detector's window rules let
   through (a vetoed row is never reported on its score), kept within [0.5, 0.95];
5. writes ``model.onnx`` (skl2onnx) and ``model.json`` (features, threshold, sha256,
   the benign per-feature mean/std that alerts use to name their top features).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.eval.ipplane import run_packets
from edge.telecom.ipplane.detector import DetectorSettings, IpPlaneDetector
from edge.telecom.ipplane.endpoint import FEATURES
from models.loader import sha256_file
from simulators.telecom.ipplane_behaviour import TRAIN_COUNTS, generate

HERE = Path(__file__).resolve().parent
NAME = "ipplane"
VERSION = "1.4.0"
# each split sees half the features: redundant cues (several say "relay") all get used, so
# one imitated cue does not carry the decision alone
MAX_FEATURES = 0.5


@dataclass
class Rows:
    """Feature rows as the detector judged them: one per endpoint per evaluation, with
    the endpoint's key (``seed/addr``), label and persona family."""

    x: np.ndarray
    y: np.ndarray
    keys: list[str]
    fams: list[str]

    def without(self, exclude: tuple[str, ...]) -> Rows:
        """The rows of every family but ``exclude`` (leave-one-family-out)."""
        if not exclude:
            return self
        m = np.array([f not in exclude for f in self.fams], dtype=bool)
        return Rows(self.x[m], self.y[m], [k for k, keep in zip(self.keys, m, strict=True)
                                           if keep],
                    [f for f, keep in zip(self.fams, m, strict=True) if keep])

    def __add__(self, o: Rows) -> Rows:
        return Rows(np.concatenate([self.x, o.x]), np.concatenate([self.y, o.y]),
                    self.keys + o.keys, self.fams + o.fams)


def collect(seeds: list[int], profile: str, duration_s: float,
            counts: dict[str, int] | None = None) -> Rows:
    """The rows of the behaviour generator's scenarios of ``seeds``
    (``TRAIN_COUNTS`` unless ``counts``), each endpoint labelled with its persona."""
    xs: list[list[float]] = []
    ys: list[int] = []
    keys: list[str] = []
    fams: list[str] = []
    for seed in seeds:
        sc = generate(seed, profile=profile, duration_s=duration_s,
                      counts=dict(TRAIN_COUNTS) if counts is None else counts)
        eps = {e["ip"]: e for e in sc.truth["endpoints"]}
        det = IpPlaneDetector(DetectorSettings())
        rows: list[tuple[str, list[float]]] = []
        det.feature_sink = lambda now, addr, f, rows=rows: rows.append((addr, f))
        run_packets(det, sc.packets)
        for addr, f in rows:
            if addr in eps:
                xs.append(f)
                ys.append(int(bool(eps[addr]["positive"])))
                keys.append(f"{seed}/{addr}")
                fams.append(family(eps[addr]["persona"]))
    return Rows(np.array(xs, dtype=np.float32).reshape(-1, len(FEATURES)),
                np.array(ys, dtype=np.int64), keys, fams)


def collect_pcap(seeds: list[int], duration_s: float) -> Rows:
    """Feature rows from the pcap simulator (simulators/telecom/pcap.py) decoded by the
    fast reader: the same path live captures take, and personas written by another hand."""
    import tempfile

    from drivers.capture.fastpcap import FastPcapSource
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    xs: list[list[float]] = []
    ys: list[int] = []
    keys: list[str] = []
    fams: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            cfg = PcapSimConfig(seed=seed, duration_s=duration_s,
                                lines=int(rng.choice([4, 6, 8, 12])),
                                goip_masked=3, goip_plain=1, pbx_trunks=3)
            pcap = Path(tmp) / f"sim{seed}.pcap"
            res = simulate_pcap(cfg, pcap)
            eps: list[dict[str, Any]] = res.truth["endpoints"]  # type: ignore[assignment]
            by_ip = {e["ip"]: e for e in eps}
            det = IpPlaneDetector(DetectorSettings())
            rows: list[tuple[str, list[float]]] = []
            det.feature_sink = lambda now, addr, f, rows=rows: rows.append((addr, f))
            src = FastPcapSource(pcap)
            try:
                run_packets(det, iter(src))
            finally:
                src.close()
            pcap.unlink()
            for addr, f in rows:
                e = by_ip.get(addr)
                if e is not None:
                    xs.append(f)
                    ys.append(int(bool(e["positive"])))
                    keys.append(f"pcap{seed}/{addr}")
                    fams.append(family(PCAP_FAMILY.get(e["persona"], e["persona"])))
    return Rows(np.array(xs, dtype=np.float32).reshape(-1, len(FEATURES)),
                np.array(ys, dtype=np.int64), keys, fams)


INFRASTRUCTURE = ("voip_server", "sip_registrar", "goip_sms_server", "simbank_server",
                  "sip_provider", "infrastructure", "media_relay", "voip_media",
                  "ddns_server")


def family(persona: str) -> str:
    """The leave-one-family-out family of a truth persona (servers are one family)."""
    return "infrastructure" if persona in INFRASTRUCTURE else persona


# the pcap simulator's persona names, as families of the behaviour generator
PCAP_FAMILY = {"simbank": "simbank_client", "softphone6": "softphone"}


def _weights(y: np.ndarray, keys: list[str]) -> np.ndarray:
    """Each endpoint weighs the same however often it was judged; classes weigh the same."""
    count: dict[str, int] = defaultdict(int)
    for k in keys:
        count[k] += 1
    w = np.array([1.0 / count[k] for k in keys], dtype=np.float64)
    total = w.sum()
    for cls in (0, 1):
        m = y == cls
        if m.any():
            w[m] *= (total / 2.0) / w[m].sum()
    return w


def train(out: Path, seed: int = 1, n_train: int = 30, n_val: int = 6,
          duration_s: float = 1200.0, n_estimators: int = 150, n_pcap: int = 3,
          pcap_duration_s: float = 600.0, exclude: tuple[str, ...] = (),
          data: tuple[Rows, Rows] | None = None) -> dict[str, Any]:
    """Fit, pick the threshold, export; ``data`` (training rows, validation rows) skips
    the collection (the leave-one-family-out run collects once and trains many times),
    ``exclude`` drops those families' rows from both."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingClassifier

    t0 = time.perf_counter()
    tr_seeds = list(range(seed, seed + n_train))
    va_seeds = list(range(seed + 500, seed + 500 + n_val))
    pcap_seeds = list(range(seed + 100, seed + 100 + n_pcap))
    if data is None:
        tr = collect(tr_seeds, "train", duration_s)
        if pcap_seeds:
            tr = tr + collect_pcap(pcap_seeds, pcap_duration_s)
        va = collect(va_seeds, "train", duration_s)
    else:
        tr, va = data
    tr, va = tr.without(exclude), va.without(exclude)
    x, y, keys = tr.x, tr.y, tr.keys
    w = _weights(y, keys)
    clf = GradientBoostingClassifier(n_estimators=n_estimators, max_depth=3,
                                     learning_rate=0.1, subsample=0.8, min_samples_leaf=20,
                                     max_features=MAX_FEATURES, random_state=seed)
    clf.fit(x, y, sample_weight=w)
    xv, yv, kv = va.x, va.y, va.keys
    pv = clf.predict_proba(xv)[:, 1] if len(xv) else np.zeros(0)
    # The threshold is set on the rows a score can decide: a row the detector's window
    # rules veto (behaviour_veto without a ledger: a server, an address called on its
    # own users or DID block, under 3 calls, one line carrying one call at a time, one
    # account placing parallel calls) is never reported on its score, however high.
    # (1.4.0: a one-line softphone row with two calls scored 0.73 and set the bar.)
    from edge.telecom.ipplane.detector import behaviour_veto

    decides = [behaviour_veto(r) is None for r in xv]
    per_ep: dict[str, tuple[int, float]] = {}
    neg_all = 0.0
    for k, lab, p, ok in zip(kv, yv, pv, decides, strict=True):
        if lab == 0:
            neg_all = max(neg_all, float(p))
        if ok:
            per_ep[k] = (int(lab), max(per_ep.get(k, (0, 0.0))[1], float(p)))
    neg_max = max((p for lab, p in per_ep.values() if lab == 0), default=0.0)
    threshold = float(min(0.95, max(0.5, neg_max + 0.02)))
    pos_eps = [p for lab, p in per_ep.values() if lab == 1]
    val_recall = sum(1 for p in pos_eps if p >= threshold) / len(pos_eps) if pos_eps else 0.0

    out.mkdir(parents=True, exist_ok=True)
    onx = convert_sklearn(clf, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                          options={id(clf): {"zipmap": False}}, target_opset=17)
    onnx_path = out / "model.onnx"
    onnx_path.write_bytes(canonical_onnx(onx))
    benign = x[y == 0]
    contract = {
        "name": NAME, "version": VERSION, "sha256": sha256_file(onnx_path),
        "features": list(FEATURES),
        "outputs": {"label": "0 ordinary VoIP / 1 GoIP-like", "probabilities": "[p0, p1]"},
        "threshold": round(threshold, 4),
        "benign_mean": [round(float(v), 5) for v in benign.mean(axis=0)],
        "benign_std": [round(float(v), 5) for v in benign.std(axis=0)],
        "training": {
            "generator": "simulators.telecom.ipplane_behaviour (profile train) + "
                         "simulators.telecom.pcap via drivers.capture.fastpcap",
            "train_seeds": [tr_seeds[0], tr_seeds[-1]], "validation_seeds": va_seeds,
            "pcap_seeds": pcap_seeds, "pcap_duration_s": pcap_duration_s,
            "duration_s": duration_s, "rows": int(len(x)), "positive_rows": int(y.sum()),
            "endpoints": len(set(keys)), "estimator": "GradientBoostingClassifier",
            "n_estimators": n_estimators, "max_depth": 3, "min_samples_leaf": 20,
            "max_features": MAX_FEATURES,
            "random_state": seed, "excluded_families": list(exclude),
        },
        "validation": {"negative_max_score": round(neg_max, 4),
                       "negative_max_score_vetoed_rows_included": round(neg_all, 4),
                       "threshold_rows": "the rows the window's vetoes let through",
                       "positive_endpoint_recall": round(val_recall, 4),
                       "endpoints": len(per_ep)},
        "feature_importance": {f: round(float(v), 4) for f, v in
                               sorted(zip(FEATURES, clf.feature_importances_, strict=True),
                                      key=lambda kv: -kv[1])},
    }
    (out / "model.json").write_text(json.dumps(contract, indent=1) + "\n")
    from models.package import finish_package  # canary set and drift reference

    finish_package(out, x, seed=seed, reference_rows=x[y == 0])  # a site's traffic
    contract["seconds"] = round(time.perf_counter() - t0, 1)
    return contract


def canonical_onnx(onx: Any) -> bytes:
    """The ONNX bytes, identical for identical trees: skl2onnx names the graph with a
    random uuid and lists the opset imports in set order (which differs between
    processes with Python's hash randomisation), so both are fixed here."""
    onx.graph.name = NAME
    ops = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in ops:
        onx.opset_import.add(domain=domain, version=version)
    return bytes(onx.SerializeToString())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny run for tests")
    a = ap.parse_args(argv)
    if a.quick:
        c = train(a.out, a.seed, n_train=2, n_val=1, duration_s=600.0, n_estimators=30,
                  n_pcap=0)
    else:
        c = train(a.out, a.seed)
    print(json.dumps({k: c[k] for k in ("threshold", "training", "validation", "seconds")},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
