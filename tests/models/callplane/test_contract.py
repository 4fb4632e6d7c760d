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


def test_training_code_reproduces_the_committed_model(tmp_path: Path) -> None:
    """The committed model.json records the sha256 of the --quick model that the same
    training code produced when the committed model was trained; retraining it here
    (seconds) must give the same bytes, or the committed model came from other code.
    A second run gives the same bytes again (fixed graph name, sorted opsets, seeds)."""
    from models.callplane.train import QUICK_SEED, train

    committed = json.loads((FOLDER / "model.json").read_text())
    fresh = train(seed=QUICK_SEED, quick=True, out=tmp_path / "a", log=lambda *_: None)
    assert fresh["features"] == committed["features"] == list(FEATURES)
    assert fresh["sha256"] == committed["training"]["quick_model_sha256"]
    again = train(seed=QUICK_SEED, quick=True, out=tmp_path / "b", log=lambda *_: None)
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (
        tmp_path / "b" / "model.onnx").read_bytes()
    assert again["threshold"] == fresh["threshold"]
    m = load_model(tmp_path / "a")  # the fresh export verifies and runs
    assert m.predict_proba(np.zeros((2, len(FEATURES)), dtype=np.float32)).shape == (2,)
