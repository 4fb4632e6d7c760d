"""Leave-one-family-out evaluation of the IP-plane detector (behaviour model + rules).

    python -m models.ipplane.lofo [--families goip_human,nat_office] [--seeds 9001-9010]
                                  [--pcap-seeds 5001-5002] [--workdir DIR] [--reuse]
                                  [--explain] [--profile train] [--without-call-backs]

``--explain`` writes every wrong verdict of each model row by row (score, ledger, veto,
relay rules, features) to ``<workdir>/<family>/wrong.txt``; ``--profile train`` judges
training (1-30) or validation (501-506) scenarios instead, to check a rule on the data
the model was fitted on.

For each persona family (``simulators.telecom.ipplane_behaviour.FAMILIES``): train the
model exactly as ``python -m models.ipplane.train`` does (same seeds, trees, threshold
rule) but with that family's rows removed from training and from the validation that
sets the threshold, then judge held-out scenarios with that model and the detector's
rules, and report per family what was found (positives) or falsely reported
(negatives). The row of the held-out family is the figure that counts: neither the
trees nor the threshold saw anything of it.

Held out: behaviour-generator scenarios (profile ``heldout``: parameter ranges wider or
shifted from training, ``STRESS_COUNTS`` so every family is present) and captures of the
pcap simulator (written by another hand; 3-16 lines per GoIP; its own NAT offices and a
dialler, personas it never gives training) decoded by the fast reader.

Cost: the detector's feature rows are collected once (training, validation and held-out
inputs, with the detector running signatures only), then each family's model is fitted
on the rows without that family and the held-out rows are judged offline by
:func:`judge`, which applies the detector's own decision (threshold, ``confirm_evals``
consecutive looks, :func:`edge.telecom.ipplane.detector.behaviour_veto`, signature
reports); ``tests/models/ipplane/test_lofo.py`` checks it against the live detector.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

POSITIVE_FAMILIES = ("goip_plain", "goip_masked", "low_slow", "simbank_client", "goip_human")


@dataclass
class HeldOut:
    """What the detector saw of held-out inputs, signatures only: every judged row in
    order (endpoint key, features), the endpoints signatures reported, and the truth."""

    keys: list[str]
    x: np.ndarray
    signed: set[str]
    truth: dict[str, tuple[str, bool]]  # key -> (family, positive)
    # per row: the endpoint's call ledger (calls in, to its own users, to fresh numbers,
    # public numbers called both ways) and whether the model scores the row (False: below the activity floor, judged by
    # the ledger rules only)
    ledger: np.ndarray | None = None
    modelled: np.ndarray | None = None
    final: np.ndarray | None = None  # the look at the end of input (flush)


Row = tuple[str, list[float], tuple[int, int, int, int], bool, bool]
LEDGER_WIDTH = 4


def _run(det: Any, records: Any) -> tuple[list[Row], set[str]]:
    from edge.eval.ipplane import run_packets

    rows: list[Row] = []
    det.judged_sink = lambda now, addr, f, led, modelled, final: rows.append(
        (addr, f, led, modelled, final))
    signed = {d.subject.id for d in run_packets(det, records)}
    return rows, signed


def collect_heldout(seeds: list[int], duration_s: float, pcap_seeds: list[int],
                    pcap_duration_s: float = 720.0, profile: str = "heldout") -> HeldOut:
    """The judged rows of behaviour scenarios ``seeds`` (profile ``heldout`` with
    ``STRESS_COUNTS``; ``profile="train"``: the training ranges and ``TRAIN_COUNTS``, to
    check the rules on the data the model was fitted and its threshold set on) and of
    pcap-simulator captures ``pcap_seeds``."""
    from edge.telecom.ipplane.detector import DetectorSettings, IpPlaneDetector
    from edge.telecom.ipplane.endpoint import FEATURES
    from models.ipplane.train import PCAP_FAMILY, family
    from simulators.telecom.ipplane_behaviour import STRESS_COUNTS, TRAIN_COUNTS, generate

    keys: list[str] = []
    xs: list[list[float]] = []
    leds: list[tuple[int, int, int, int]] = []
    mod: list[bool] = []
    fin: list[bool] = []
    signed: set[str] = set()
    truth: dict[str, tuple[str, bool]] = {}

    def add(tag: str, rows: list[Row], sig: set[str],
            eps: list[dict[str, Any]], fam_of: dict[str, str]) -> None:
        for e in eps:
            truth[f"{tag}/{e['ip']}"] = (family(fam_of.get(e["persona"], e["persona"])),
                                         bool(e["positive"]))
        for addr, f, led, modelled, final in rows:
            keys.append(f"{tag}/{addr}")
            xs.append(f)
            leds.append(led)
            mod.append(modelled)
            fin.append(final)
        signed.update(f"{tag}/{a}" for a in sig)

    for seed in seeds:
        sc = generate(seed, profile=profile, duration_s=duration_s,
                      counts=dict(STRESS_COUNTS if profile == "heldout" else TRAIN_COUNTS))
        rows, sig = _run(IpPlaneDetector(DetectorSettings()), sc.packets)
        add(str(seed), rows, sig, sc.truth["endpoints"], {})
    if pcap_seeds:
        from drivers.capture.fastpcap import FastPcapSource
        from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

        with tempfile.TemporaryDirectory() as tmp:
            for i, seed in enumerate(pcap_seeds):
                cfg = PcapSimConfig(seed=seed, duration_s=pcap_duration_s,
                                    lines=(3, 16, 10, 6)[i % 4], goip_plain=1, goip_masked=4,
                                    simbank_clients=1, softphones=11, ipphones=5,
                                    pbx_trunks=3, nat_offices=2, dialers=1)
                pcap = Path(tmp) / f"h{seed}.pcap"
                res = simulate_pcap(cfg, pcap)
                src = FastPcapSource(pcap)
                try:
                    rows, sig = _run(IpPlaneDetector(DetectorSettings()), iter(src))
                finally:
                    src.close()
                pcap.unlink()
                eps: list[dict[str, Any]] = res.truth["endpoints"]  # type: ignore[assignment]
                add(f"pcap{seed}", rows, sig, eps, PCAP_FAMILY)
    return HeldOut(keys, np.array(xs, dtype=np.float32).reshape(-1, len(FEATURES)), signed,
                   truth, np.array(leds, dtype=np.int64).reshape(-1, LEDGER_WIDTH),
                   np.array(mod, dtype=bool), np.array(fin, dtype=bool))


def judge(h: HeldOut, probs: np.ndarray, threshold: float, confirm_evals: int = 2,
          window_s: float = 600.0, relay_rule: bool = True) -> set[str]:
    """The endpoints the detector reports given the model's score of each held-out row:
    signature reports, plus behaviour reports after ``confirm_evals`` consecutive
    looks at or above ``threshold`` (or meeting a relay rule) that :func:`behaviour_veto`
    lets through (one such look by a relay rule at the end of input). ``relay_rule`` False: the model alone (the
    relay rules off, the ledger-only rows then judge nothing)."""
    from edge.telecom.ipplane.detector import behaviour_veto, ledger_relay, relay_evidence

    reported = set(h.signed)
    over: dict[str, int] = defaultdict(int)
    n = len(h.keys)
    leds = h.ledger if h.ledger is not None else np.zeros((n, LEDGER_WIDTH), dtype=np.int64)
    mod = h.modelled if h.modelled is not None else np.ones(n, dtype=bool)
    fin = h.final if h.final is not None else np.zeros(n, dtype=bool)
    for k, p, row, lv, m, f in zip(h.keys, probs, h.x, leds, mod, fin, strict=True):
        led = tuple(int(v) for v in lv)
        rule = relay_rule and (relay_evidence(row, window_s) or ledger_relay(row, led))
        hit = (bool(m) and p >= threshold) or rule
        if hit and behaviour_veto(row, window_s, led) is not None:
            hit = False
        over[k] = over[k] + 1 if hit else 0
        need = 1 if f and hit and rule else confirm_evals
        if over[k] >= need and k not in reported:
            reported.add(k)
    return reported


def explain(h: HeldOut, probs: np.ndarray, reported: set[str], threshold: float,
            window_s: float = 600.0) -> list[str]:
    """Every endpoint the detector got wrong (a positive missed, a negative reported),
    row by row in judging order: the model's score, whether the model scored the row,
    the end-of-input look, the ledger counts (calls in, to its own users, to fresh
    numbers), which veto stopped the look and whether a relay rule held, then the
    features. What ``--explain`` writes to ``<workdir>/<family>/wrong.txt``."""
    from edge.telecom.ipplane.detector import behaviour_veto, ledger_relay, relay_evidence
    from edge.telecom.ipplane.endpoint import FEATURES

    by_key: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(h.keys):
        by_key[k].append(i)
    n = len(h.keys)
    leds = h.ledger if h.ledger is not None else np.zeros((n, LEDGER_WIDTH), dtype=np.int64)
    mod = h.modelled if h.modelled is not None else np.ones(n, dtype=bool)
    fin = h.final if h.final is not None else np.zeros(n, dtype=bool)
    out: list[str] = []
    for k, (fam, pos) in sorted(h.truth.items()):
        if (k in reported) == pos:
            continue
        out.append(f"{k} {fam} {'missed' if pos else 'falsely reported'}"
                   f"{' (signatures)' if k in h.signed else ''}, threshold {threshold}")
        for i in by_key.get(k, []):
            row = h.x[i]
            led = tuple(int(v) for v in leds[i])
            out.append(f"  score {float(probs[i]):.3f} modelled {bool(mod[i])} final "
                       f"{bool(fin[i])} ledger {led} veto {behaviour_veto(row, window_s, led)} "
                       f"relay {relay_evidence(row, window_s)} ledger_relay "
                       f"{ledger_relay(row, led)}")
            out.append("    " + " ".join(f"{f}={float(v):.4g}"
                                         for f, v in zip(FEATURES, row, strict=True)))
    return out


def veto_endpoints(h: HeldOut, window_s: float = 600.0) -> dict[str, dict[str, int]]:
    """{family: {veto counter: endpoints with at least one row it stops}} over the
    rows (the vetoes do not depend on the model): where each rule fires, positives
    included. ``--explain`` writes it to ``<workdir>/vetoes.json``."""
    from edge.telecom.ipplane.detector import behaviour_veto

    n = len(h.keys)
    leds = h.ledger if h.ledger is not None else np.zeros((n, LEDGER_WIDTH), dtype=np.int64)
    hit: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for k, row, lv in zip(h.keys, h.x, leds, strict=True):
        v = behaviour_veto(row, window_s, tuple(int(x) for x in lv))
        if v is not None and k in h.truth:
            hit[h.truth[k][0]][v].add(k)
    return {f: {v: len(ks) for v, ks in sorted(d.items())} for f, d in sorted(hit.items())}


def per_family(h: HeldOut, reported: set[str]) -> dict[str, list[int]]:
    """{family: [found or falsely reported, endpoints]} over the held-out inputs."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for k, (fam, _pos) in h.truth.items():
        out[fam][1] += 1
        out[fam][0] += int(k in reported)
    return dict(sorted(out.items()))


def _seeds(text: str) -> list[int]:
    if not text:
        return []
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _cached(path: Path, reuse: bool, make: Any) -> Any:
    if reuse and path.exists():
        return pickle.loads(path.read_bytes())
    obj = make()
    path.write_bytes(pickle.dumps(obj))
    return obj


def main(argv: list[str] | None = None) -> int:
    from models.ipplane.train import collect, collect_pcap, train
    from models.loader import load_model
    from simulators.telecom.ipplane_behaviour import FAMILIES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(("none", *FAMILIES)),
                    help="families to hold out, one model each ('none': the full model)")
    ap.add_argument("--seeds", default="9001-9010",
                    help="held-out behaviour scenarios (profile heldout, stress counts)")
    ap.add_argument("--pcap-seeds", default="5001-5004",
                    help="held-out pcap-simulator captures ('' for none)")
    ap.add_argument("--profile", choices=("heldout", "train"), default="heldout",
                    help="behaviour profile of --seeds: 'train' checks the rules on the "
                    "training (1-30) or validation (501-506) scenarios")
    ap.add_argument("--duration", type=float, default=1200.0,
                    help="seconds per held-out behaviour scenario")
    ap.add_argument("--n-train", type=int, default=30, help="training scenarios per model")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/ipplane-lofo"),
                    help="models, row caches and lofo.json go here")
    ap.add_argument("--explain", action="store_true",
                    help="write every wrong verdict row by row to <workdir>/<family>/wrong.txt")
    ap.add_argument("--without-call-backs", action="store_true",
                    help="ablation: judge as if no number had been called both ways (the "
                    "call-back veto never fires)")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse row caches in --workdir from an earlier run of the same code")
    a = ap.parse_args(argv)
    fams = [f for f in a.families.split(",") if f]
    for fam in fams:
        if fam != "none" and fam not in FAMILIES:
            ap.error(f"unknown family {fam!r}; one of none, {', '.join(FAMILIES)}")
    a.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.process_time()
    tr = _cached(a.workdir / "train_rows.pkl", a.reuse,
                 lambda: collect(list(range(1, 1 + a.n_train)), "train", 1200.0)
                 + collect_pcap([101, 102, 103], 600.0))
    va = _cached(a.workdir / "val_rows.pkl", a.reuse,
                 lambda: collect(list(range(501, 507)), "train", 1200.0))
    h = _cached(a.workdir / "heldout_rows.pkl", a.reuse,
                lambda: collect_heldout(_seeds(a.seeds), a.duration, _seeds(a.pcap_seeds),
                                        profile=a.profile))
    if a.without_call_backs and h.ledger is not None and h.ledger.shape[1] > 3:
        h.ledger = h.ledger.copy()
        h.ledger[:, 3] = 0
    print(f"rows: train {len(tr.y)}, validation {len(va.y)}, held-out {len(h.keys)} "
          f"({time.process_time() - t0:.0f} CPU s)", file=sys.stderr, flush=True)
    rows: list[dict[str, Any]] = []
    if a.explain:
        (a.workdir / "vetoes.json").write_text(json.dumps(veto_endpoints(h), indent=1))
    for fam in fams:
        folder = a.workdir / fam
        excl = () if fam == "none" else (fam,)
        c = train(folder, 1, n_train=a.n_train, exclude=excl, data=(tr, va))
        m = load_model(folder)
        probs = m.predict_proba(h.x) if len(h.x) else np.zeros(0)
        reported = judge(h, np.asarray(probs), float(c["threshold"]))
        res = per_family(h, reported)
        if a.explain:
            (folder / "wrong.txt").write_text("\n".join(
                explain(h, np.asarray(probs), reported, float(c["threshold"]))) + "\n")
        alone = per_family(h, judge(h, np.asarray(probs), float(c["threshold"]),
                                    relay_rule=False))
        pos = [res[f] for f in res if f in POSITIVE_FAMILIES]
        neg = [res[f] for f in res if f not in POSITIVE_FAMILIES]
        hit, tot = res.get(fam, [0, 0])
        row = {"held_out": fam, "kind": "positive" if fam in POSITIVE_FAMILIES else
               "negative" if fam != "none" else "-",
               "held_out_result": f"{hit}/{tot}",
               "held_out_model_alone": "{}/{}".format(*alone.get(fam, [0, 0])),
               "threshold": c["threshold"],
               "all_positives_found": f"{sum(p[0] for p in pos)}/{sum(p[1] for p in pos)}",
               "false_alarms_all_negatives": f"{sum(n[0] for n in neg)}/{sum(n[1] for n in neg)}",
               "per_family": res, "per_family_model_alone": alone}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nheld out: behaviour seeds {a.seeds} (profile {a.profile}), pcap "
          f"seeds {a.pcap_seeds or 'none'}; {time.process_time() - t0:.0f} CPU s\n")
    print("| held-out family | kind | that family: found / falsely reported | (model without "
          "the relay rule) | threshold | all GoIP endpoints found | false alarms, all "
          "negatives |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['held_out']} | {r['kind']} | {r['held_out_result']} | "
              f"{r['held_out_model_alone']} | {r['threshold']} | "
              f"{r['all_positives_found']} | {r['false_alarms_all_negatives']} |")
    (a.workdir / "lofo.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
