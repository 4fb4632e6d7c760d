"""The committed IP-plane model is what its training command produces, byte for byte.

``python -m models.ipplane.train`` (the command in the model card) is run into a
temporary folder; its ``model.onnx`` must be bit-identical to the committed one and
its contract (threshold, features, validation, training facts) equal. About two
minutes of CPU: the price of knowing the shipped file is reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.loader import MODELS_DIR, sha256_file

FOLDER = MODELS_DIR / "ipplane"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_committed_onnx_is_bit_identical_to_a_fresh_training_run(tmp_path: Path) -> None:
    from models.ipplane.train import main

    assert main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "model.onnx").read_bytes() == (FOLDER / "model.onnx").read_bytes()
    fresh = json.loads((tmp_path / "model.json").read_text())
    committed = json.loads((FOLDER / "model.json").read_text())
    assert fresh["sha256"] == committed["sha256"] == sha256_file(FOLDER / "model.onnx")
    for key in ("threshold", "features", "training", "validation", "benign_mean",
                "benign_std", "feature_importance"):
        assert fresh[key] == committed[key], key
