"""Leave-one-family-out evaluation of the IP-plane model.

    python -m models.ipplane.lofo [--families goip_human,nat_office] [--seeds 9001-9004]
                                  [--n-train 30] [--workdir DIR]

For each persona family of the behaviour generator
(``simulators.telecom.ipplane_behaviour.FAMILIES``): train the model exactly as
``python -m models.ipplane.train`` does but with that family removed from training and
validation (behaviour scenarios and pcap-simulator captures), then run the detector
with that model (signatures included, as deployed) on held-out scenarios (profile
``heldout``, every family present, ``STRESS_COUNTS``) and report, per family, what
was found (positives) or falsely flagged (negatives). The row of the held-out family
is the figure that counts: the model never saw anything like it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def per_family(seeds: list[int], folder: Path | None, duration_s: float
               ) -> dict[str, list[int]]:
    """{persona: [hit, total]}: positives found / negatives reported, over ``seeds``."""
    from edge.eval.ipplane import run_packets
    from edge.telecom.ipplane.detector import (
        DetectorSettings,
        IpPlaneDetector,
        load_default_model,
    )
    from models.loader import load_model
    from simulators.telecom.ipplane_behaviour import STRESS_COUNTS, generate

    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    model = load_model(folder) if folder is not None else load_default_model()
    for seed in seeds:
        sc = generate(seed, profile="heldout", duration_s=duration_s,
                      counts=dict(STRESS_COUNTS))
        det = IpPlaneDetector(DetectorSettings(), model=model)
        reported = {d.subject.id for d in run_packets(det, sc.packets)}
        for e in sc.truth["endpoints"]:
            fam = e["persona"]
            if fam in ("voip_server", "sip_registrar", "goip_sms_server", "simbank_server"):
                fam = "infrastructure"
            out[fam][1] += 1
            out[fam][0] += int(e["ip"] in reported)
    return dict(out)


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: list[str] | None = None) -> int:
    from models.ipplane.train import train
    from simulators.telecom.ipplane_behaviour import FAMILIES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seeds", default="9001-9004", help="held-out scenarios (profile heldout)")
    ap.add_argument("--duration", type=float, default=1200.0)
    ap.add_argument("--n-train", type=int, default=30, help="training scenarios per model")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/ipplane-lofo"))
    a = ap.parse_args(argv)
    seeds = _seeds(a.seeds)
    positives = {"goip_plain", "goip_masked", "low_slow", "simbank_client", "goip_human"}
    rows: list[dict[str, Any]] = []
    for fam in [f for f in a.families.split(",") if f]:
        if fam not in FAMILIES:
            ap.error(f"unknown family {fam!r}; one of {', '.join(FAMILIES)}")
        folder = a.workdir / fam
        train(folder, 1, n_train=a.n_train, exclude=(fam,))
        res = per_family(seeds, folder, a.duration)
        hit, tot = res.get(fam, [0, 0])
        neg_fa = sum(h for f, (h, _t) in res.items() if f not in positives)
        neg_n = sum(t for f, (_h, t) in res.items() if f not in positives)
        pos_hit = sum(h for f, (h, _t) in res.items() if f in positives)
        pos_n = sum(t for f, (_h, t) in res.items() if f in positives)
        row = {"held_out": fam, "kind": "positive" if fam in positives else "negative",
               "held_out_result": f"{hit}/{tot}", "all_positives_found": f"{pos_hit}/{pos_n}",
               "false_alarms_all_negatives": f"{neg_fa}/{neg_n}", "per_family": res}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| held-out family | kind | held-out family result | all GoIPs found | "
          "false alarms (all negatives) |")
    print("|---|---|---|---|---|")
    for r in rows:
        what = "found" if r["kind"] == "positive" else "falsely reported"
        print(f"| {r['held_out']} | {r['kind']} | {r['held_out_result']} {what} | "
              f"{r['all_positives_found']} | {r['false_alarms_all_negatives']} |")
    (a.workdir / "lofo.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
