"""The drift reference looks like a site: ordinary traffic, not the training mix.

Training sets are rich in positives (the call plane's 19 % of rows, the IP plane's
half, balanced on purpose); a site is almost all ordinary traffic. A reference made
of the whole training mix leaves the top deciles of every feature that tells a box
nearly empty at an honest site, and their PSI alone crosses the drift bar."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from models.drift import DriftMonitor, load_reference, make_reference
from models.loader import MODELS_DIR
from models.package import finish_package


def _mix(n: int, positive_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 6 features: ordinary ones around 1, positives far above on every one."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_share).astype(np.int64)
    x = rng.gamma(2.0, 0.5, size=(n, 6))
    x[y == 1] += rng.gamma(4.0, 2.0, size=(int(y.sum()), 6))
    return x.astype(np.float32), y


def _drifted(ref_rows: np.ndarray, site: np.ndarray) -> tuple[str, ...]:
    feats = [f"f{i}" for i in range(site.shape[1])]
    mon = DriftMonitor(make_reference(ref_rows, feats), min_rows=len(site))
    got = mon.observe(site)
    assert got is not None
    return got


def test_an_ordinary_site_drifts_against_the_training_mix_but_not_its_negatives() -> None:
    x, y = _mix(20_000, 0.2, seed=1)
    site, site_y = _mix(5_000, 0.002, seed=2)  # a site: a few box rows among thousands
    assert site_y.sum() < 30
    assert len(_drifted(x, site)) == 6           # every feature, for nothing
    assert _drifted(x[y == 0], site) == ()       # the reference a site should be held to
    # and a site that really moved is still seen
    moved = site * np.float32(2.5)
    assert len(_drifted(x[y == 0], moved)) == 6


def test_finish_package_takes_the_reference_from_the_rows_it_is_given(tmp_path: Path) -> None:
    d = tmp_path / "pkg"
    d.mkdir()
    for f in ("model.onnx", "model.json"):
        shutil.copy(MODELS_DIR / "ipplane" / f, d / f)
    n_feat = len(json.loads((d / "model.json").read_text())["features"])
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.0, size=(3000, n_feat)).astype(np.float32)
    y = (rng.random(3000) < 0.5).astype(np.int64)
    x[y == 1] *= 3
    finish_package(d, x, reference_rows=x[y == 0])
    ref = load_reference(d)
    assert ref is not None
    want = make_reference(x[y == 0], list(ref.features))
    np.testing.assert_allclose(ref.edges, want.edges)
    np.testing.assert_allclose(ref.shares, want.shares)


def test_the_packaged_call_plane_reference_is_made_of_ordinary_subscribers() -> None:
    # model.json's "reference" (the alerts' yardstick) is the median of each feature
    # over the training negatives; the drift reference's middle edge is the same median
    folder = MODELS_DIR / "callplane"
    ref = load_reference(folder)
    assert ref is not None
    medians = {f: v[0] for f, v in
               json.loads((folder / "model.json").read_text())["reference"].items()}
    off = [f for j, f in enumerate(ref.features)
           if abs(float(ref.edges[j][4]) - medians[f]) > 1e-3 * max(1.0, abs(medians[f]))]
    assert off == [], f"drift reference medians differ from the negatives' for {off}"
