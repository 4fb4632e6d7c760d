"""Early-warning evaluation: reported potential victims against the simulator's truth.

Truth: every number that a SIM labelled ``simbox`` in the truth file called or texted
(outgoing ``call_start`` and ``sms`` in the feed). Reported: the subjects of
``warning.victim`` reports (pseudonymised with the site key, so truth numbers are
pseudonymised the same way to compare). Precision is the share of reported victims
that a box really contacted; recall the share of contacted numbers that were reported
(a number a box contacted before the box was flagged counts as missed unless it was
within ``recent_s`` of the flagging).

    python -m edge.eval.victims --events d.jsonl --truth d.truth.json --reports r.jsonl --key K
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from edge.report.pseudonym import Pseudonymiser


def truth_victims(events: Path, truth: dict[str, Any]) -> set[str]:
    boxes = {i for i, t in truth["sims"].items() if t.get("label") == "simbox"}
    out: set[str] = set()
    with open(events, "rb") as fh:
        for line in fh:
            ev = orjson.loads(line)
            if ev.get("imsi") in boxes and ev.get("dir") == "mo" and ev.get("peer") and \
                    ev.get("type") in ("call_start", "sms"):
                out.add(ev["peer"])
    return out


def score(events: Path, truth: dict[str, Any], reports: list[dict[str, Any]],
          key: bytes) -> dict[str, float | int]:
    ps = Pseudonymiser(key)
    want = {ps.pseudonym("phone", v) for v in truth_victims(events, truth)}
    got = {r["subject"]["id"] for r in reports if r.get("kind") == "warning.victim"}
    tp = len(want & got)
    return {"truth_victims": len(want), "reported": len(got), "correct": tp,
            "precision": round(tp / len(got), 4) if got else 0.0,
            "recall": round(tp / len(want), 4) if want else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.eval.victims",
                                 description="Score warning.victim reports against a "
                                             "simulated day's truth.")
    ap.add_argument("--events", type=Path, required=True, help="the simulated event feed")
    ap.add_argument("--truth", type=Path, required=True, help="its truth file")
    ap.add_argument("--reports", type=Path, required=True, help="replay's reports JSONL")
    ap.add_argument("--key", required=True, help="the site key the replay used")
    a = ap.parse_args(argv)
    reports = [orjson.loads(x) for x in a.reports.read_bytes().splitlines() if x.strip()]
    print(orjson.dumps(score(a.events, orjson.loads(a.truth.read_bytes()), reports,
                             a.key.encode())).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
