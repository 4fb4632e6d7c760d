"""Loading ONNX models safely: verify the file against its card before running it.

Each model folder holds ``model.onnx`` and ``model.json`` (the contract):
``{"name", "version", "sha256", "features": [...], "outputs": {...}, "threshold", ...}``.
:func:`load_model` checks that the file's SHA-256 matches the contract and that the
ONNX input width equals the number of features, then opens an onnxruntime session
limited to one thread (the agent shares a small box).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.detection import ModelInfo
from edge.errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedModel:
    info: ModelInfo
    features: list[str]
    contract: dict[str, Any]
    session: Any
    input_name: str
    output_names: list[str] = field(default_factory=list)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(positive class) for each row of a (n, n_features) float32 matrix."""
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ModelError(f"{self.info.name}: expected (n, {len(self.features)}) input, "
                             f"got {x.shape}")
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        outs = self.session.run(None, {self.input_name: x.astype(np.float32, copy=False)})
        probs = outs[-1]
        if isinstance(probs, list):  # zipmap output: list of {label: p}
            return np.array([p.get(1, p.get("1", 0.0)) for p in probs], dtype=np.float32)
        probs = np.asarray(probs)
        return probs[:, -1] if probs.ndim == 2 else probs


def load_model(folder: Path | str, onnx_path: Path | None = None) -> LoadedModel:
    """Verify and open ``folder/model.onnx`` (or ``onnx_path``) with its contract."""
    import onnxruntime as ort

    folder = Path(folder)
    contract_path = folder / "model.json"
    model_path = onnx_path or folder / "model.onnx"
    try:
        contract = json.loads(contract_path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model contract missing: {contract_path}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model contract unreadable: {contract_path}: {exc}") from None
    if not model_path.exists():
        raise ModelError(f"model file missing: {model_path} (train it: see {folder}/README)")
    digest = sha256_file(model_path)
    if digest != contract.get("sha256"):
        raise ModelError(f"{model_path}: sha256 {digest[:12]}... does not match the "
                         f"contract's {str(contract.get('sha256'))[:12]}...; refusing to load")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(model_path), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{model_path}: onnxruntime cannot load it: {exc}") from None
    inp = sess.get_inputs()[0]
    features = list(contract.get("features", []))
    width = inp.shape[1] if len(inp.shape) == 2 else None
    if isinstance(width, int) and width != len(features):
        raise ModelError(f"{model_path}: input width {width} != {len(features)} features "
                         f"in the contract")
    info = ModelInfo(str(contract.get("name", folder.name)), str(contract.get("version", "0")),
                     digest)
    return LoadedModel(info, features, contract, sess, inp.name,
                       [o.name for o in sess.get_outputs()])
