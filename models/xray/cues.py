"""How well single head inputs find one category on rendered training sets (diagnosis).

``python -m models.xray.cues --chunks 4 --category card_batch NAME ...`` loads the cached
training sets and head inputs of :mod:`models.xray.head` (seeds ``--seed`` + k; it renders
and computes what is not cached) and prints, per input, the area under the ROC curve of
the category against parcels without threat (ties count half) and the share of the
category above the value that ``--fp`` of the parcels without threat exceed (the tail,
where the thresholds live). Training-time only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.xray.dataset import LABELS
from models.xray.head import HEAD_INPUTS, _classes, load_sets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="head inputs (models/xray/head.py HEAD_INPUTS)")
    ap.add_argument("--category", choices=LABELS, default="card_batch")
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--fp", type=float, default=0.01)
    ap.add_argument("--cache", type=Path, default=Path(".cache/xray"))
    args = ap.parse_args(argv)
    s, feats = load_sets(args.cache, args.seed, args.chunks)
    cls = _classes(s.y)
    pos, neg = cls == LABELS.index(args.category) + 1, cls == 0
    for name in args.names:
        x = feats[:, HEAD_INPUTS.index(name)]
        a, b = x[pos], np.sort(x[neg])
        auc = (np.searchsorted(b, a, "left").sum() + np.searchsorted(b, a, "right").sum()) / (
            2 * len(a) * len(b))
        thr = b[min(int(len(b) * (1 - args.fp)), len(b) - 1)]
        print(f"{name:26s} AUC {auc:.3f}  found above the {100 * args.fp:g} % tail of none: "
              f"{(a > thr).mean():.3f}  ({len(a)} vs {len(b)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
