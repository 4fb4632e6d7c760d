"""Drift: are a site's model inputs still the distribution the model was trained on?

The *reference* (``reference.npz`` in the package) holds, per feature, the interior
edges of ten equal-count bins of the training negatives (their deciles) and the share
of those rows in each bin (about 0.1 each; less where many rows tie): a site is almost
all ordinary traffic, so that is what it is compared with, not the training mix,
which is rich in positives (:func:`models.package.finish_package`). In the field
:class:`DriftMonitor` counts scored rows into the same bins (one ``searchsorted`` per
column and batch) and keeps count, mean and the histogram per feature: the summary
the heartbeat carries. Every ``min_rows`` rows it computes the population stability
index per feature,

    PSI = sum over bins (p_site - p_train) * ln(p_site / p_train)

(shares floored at 1e-4 so an empty bin does not make it infinite), and a feature
with PSI above ``psi_threshold`` (0.25 by default: the usual bar for a significant
shift; 0.1-0.25 is a moderate one) is drifted. The window then starts again, so a
site that drifts and comes back is seen to come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ModelError

BINS = 10
_FLOOR = 1e-4


@dataclass(slots=True)
class Reference:
    features: tuple[str, ...]
    edges: np.ndarray      # (n_features, BINS - 1) interior edges, ascending per row
    shares: np.ndarray     # (n_features, BINS) training share per bin


def make_reference(x: np.ndarray, features: list[str] | tuple[str, ...]) -> Reference:
    """Decile edges and bin shares of the training matrix ``x`` (rows, features)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(features) or x.shape[0] < BINS:
        raise ModelError(f"reference needs a (>= {BINS}, {len(features)}) matrix, "
                         f"got {x.shape}")
    qs = np.linspace(0, 1, BINS + 1)[1:-1]
    edges = np.quantile(x, qs, axis=0).T.copy()
    shares = np.empty((x.shape[1], BINS))
    for j in range(x.shape[1]):
        idx = np.searchsorted(edges[j], x[:, j], side="right")
        shares[j] = np.bincount(idx, minlength=BINS) / x.shape[0]
    return Reference(tuple(features), edges, shares)


def save_reference(ref: Reference, folder: Path) -> Path:
    path = Path(folder) / "reference.npz"
    with open(path, "wb") as fh:
        np.savez(fh, features=np.array(ref.features), edges=ref.edges, shares=ref.shares)
    return path


def load_reference(folder: Path) -> Reference | None:
    path = Path(folder) / "reference.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            ref = Reference(tuple(str(f) for f in z["features"]), z["edges"], z["shares"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: drift reference unreadable: {exc}") from None
    if ref.edges.shape != (len(ref.features), BINS - 1) or \
            ref.shares.shape != (len(ref.features), BINS):
        raise ModelError(f"{path}: drift reference has the wrong shape")
    return ref


def psi(site: np.ndarray, train: np.ndarray) -> np.ndarray:
    """PSI per row of two (n_features, BINS) share matrices."""
    p = np.maximum(site, _FLOOR)
    q = np.maximum(train, _FLOOR)
    return ((p - q) * np.log(p / q)).sum(axis=1)


class DriftMonitor:
    """Per-feature histograms of scored rows against a reference (pipeline thread)."""

    def __init__(self, ref: Reference, *, psi_threshold: float = 0.25,
                 min_rows: int = 2000) -> None:
        self.ref = ref
        self.psi_threshold = psi_threshold
        self.min_rows = min_rows
        n = len(ref.features)
        self.counts = np.zeros((n, BINS), dtype=np.int64)
        self.sums = np.zeros(n)
        self.rows = 0
        self.total_rows = 0
        self.last_psi = np.zeros(n)
        self.checks = 0
        self.drifted: tuple[str, ...] = ()

    def observe(self, x: np.ndarray) -> tuple[str, ...] | None:
        """Count a scored batch; at each full window, the drifted features (maybe ())."""
        if x.ndim != 2 or x.shape[1] != len(self.ref.features) or x.shape[0] == 0:
            return None
        for j in range(x.shape[1]):
            idx = np.searchsorted(self.ref.edges[j], x[:, j], side="right")
            self.counts[j] += np.bincount(idx, minlength=BINS)
        self.sums += x.sum(axis=0, dtype=np.float64)
        self.rows += x.shape[0]
        self.total_rows += x.shape[0]
        if self.rows < self.min_rows:
            return None
        shares = self.counts / self.rows
        self.last_psi = psi(shares, self.ref.shares)
        self.checks += 1
        self.drifted = tuple(f for f, v in zip(self.ref.features, self.last_psi, strict=True)
                             if v > self.psi_threshold)
        self.counts[:] = 0
        self.sums[:] = 0
        self.rows = 0
        return self.drifted

    def summary(self, prefix: str) -> dict[str, int | float]:
        """Counts, means, bin-median estimates and last PSI per feature (heartbeat)."""
        out: dict[str, int | float] = {f"{prefix}rows": self.total_rows,
                                       f"{prefix}drift_checks": self.checks,
                                       f"{prefix}drifted_features": len(self.drifted),
                                       f"{prefix}psi_max": round(float(self.last_psi.max()), 4)
                                       if len(self.last_psi) else 0.0}
        for j, f in enumerate(self.ref.features):
            if self.rows:
                out[f"{prefix}f.{f}.mean"] = round(float(self.sums[j] / self.rows), 4)
                cum = np.cumsum(self.counts[j]) / self.rows
                b = int(np.searchsorted(cum, 0.5))
                e = self.ref.edges[j]
                out[f"{prefix}f.{f}.p50_bin"] = round(float(e[min(b, len(e) - 1)]), 4)
            out[f"{prefix}f.{f}.psi"] = round(float(self.last_psi[j]), 4)
        return out
