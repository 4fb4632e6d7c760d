"""The committed call-plane model: verified load, feature contract, fresh training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ModelError
from edge.telecom.callplane.features import FEATURES
from models.loader import MODELS_DIR, load_model

FOLDER = MODELS_DIR / "callplane"


def test_committed_model_matches_feature_contract() -> None:
    m = load_model(FOLDER)
    assert m.features == list(FEATURES)
    c = m.contract
    assert 0.0 < c["threshold"] < 1.0
    assert set(c["reference"]) == set(FEATURES)
    x = np.zeros((3, len(FEATURES)), dtype=np.float32)
    x[1, FEATURES.index("mo_24h")] = 200
    p = m.predict_proba(x)
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text((FOLDER / "model.json").read_text())
    data = bytearray((FOLDER / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model(tmp_path)


@pytest.mark.slow
def test_fresh_quick_training_gives_same_contract(tmp_path: Path) -> None:
    from models.callplane.train import train

    contract = train(seed=7, quick=True, out=tmp_path, log=lambda *_: None)
    committed = json.loads((FOLDER / "model.json").read_text())
    assert contract["features"] == committed["features"] == list(FEATURES)
    m = load_model(tmp_path)  # the fresh export verifies and runs
    assert m.predict_proba(np.zeros((2, len(FEATURES)), dtype=np.float32)).shape == (2,)
    again = train(seed=7, quick=True, out=tmp_path / "again", log=lambda *_: None)
    assert again["threshold"] == contract["threshold"]  # deterministic given the seed
