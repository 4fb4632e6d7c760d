"""The one model loader: any input shape (an image model here), sha256 checked on the
bytes onnxruntime gets, the contract checked against the graph; every loaded model
in the agent's birth message (the call-plane model was missing from it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.errors import ModelError
from models.contract import ModelContract
from models.loader import MODELS_DIR, load_model


def image_model(folder: Path, *, h: int = 16, w: int = 24, contract_shape: object = None,
                dtype: str = "uint8") -> Path:
    """A small real image model: uint8 (n, h, w, 3) -> mean brightness in [0, 1]."""
    inp = helper.make_tensor_value_info("image", TensorProto.UINT8, [None, h, w, 3])
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, [None])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0 / 255.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    graph = helper.make_graph([
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["f", "scale"], ["g"]),
        helper.make_node("ReduceMean", ["g", "axes"], ["score"], keepdims=0),
    ], "brightness", [inp], [out], initializer=[scale, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    blob = model.SerializeToString()
    (folder / "model.onnx").write_bytes(blob)
    (folder / "model.json").write_text(json.dumps({
        "name": "brightness", "version": "0.1.0", "sha256": hashlib.sha256(blob).hexdigest(),
        "inputs": [{"shape": contract_shape or [None, h, w, 3], "dtype": dtype,
                    "name": "image"}],
        "threshold": 0.5}))
    (folder / "README.md").write_text("# brightness\nA test model.\n")
    return folder


def test_an_image_model_loads_and_runs(tmp_path: Path) -> None:
    m = load_model(image_model(tmp_path / "img"))
    assert m.info.name == "brightness" and m.typed is not None
    assert m.typed.inputs[0].shape == (None, 16, 24, 3) and m.contract["threshold"] == 0.5
    batch = np.zeros((2, 16, 24, 3), dtype=np.uint8)
    batch[1] = 255
    assert m.run(batch)[0].tolist() == pytest.approx([0.0, 1.0])


def test_contract_must_agree_with_the_graph(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="dimension 1 is 16, contract says 32"):
        load_model(image_model(tmp_path / "a", contract_shape=[None, 32, 24, 3]))
    with pytest.raises(ModelError, match="contract says float32"):
        load_model(image_model(tmp_path / "b", dtype="float32"))
    with pytest.raises(ModelError, match="rank"):
        load_model(image_model(tmp_path / "c", contract_shape=[None, 16, 24]))


def test_sha256_is_checked_on_the_bytes_loaded(tmp_path: Path) -> None:
    folder = image_model(tmp_path / "img")
    blob = bytearray((folder / "model.onnx").read_bytes())
    blob[-1] ^= 0x01
    (folder / "model.onnx").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256 .* does not match"):
        load_model(folder)
    with pytest.raises(ModelError, match="contract missing"):
        load_model(tmp_path / "nowhere")


def test_both_telecom_models_follow_the_one_convention() -> None:
    for name in ("callplane", "ipplane"):
        m = load_model(MODELS_DIR / name)
        assert isinstance(m.typed, ModelContract) and (MODELS_DIR / name / "README.md").exists()
        assert m.info.sha256 == m.typed.sha256


def test_every_loaded_model_reaches_the_birth_message(tmp_path: Path) -> None:
    from edge.assembly import assemble
    from edge.config import parse_config

    class Sink:
        name = "probe"
        models: dict[str, str] = {}

        def set_models(self, models: dict[str, str]) -> None:
            self.models = models

        def publish(self, report: object, payload: bytes) -> None:
            pass

        def close(self) -> None:
            pass

        def counters(self) -> dict[str, int]:
            return {}

    cfg = parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp_path}/d"\n'
                       '[privacy]\nkey = "loader-test-key-0001"\n')
    sink = Sink()
    agent = assemble(cfg, mode="replay", sinks=[sink])  # type: ignore[list-item]
    agent.close()
    assert set(sink.models) == {"callplane", "ipplane"}
    cp = load_model(MODELS_DIR / "callplane")
    assert sink.models["callplane"] == f"{cp.info.version} {cp.info.sha256}"
    assert {m.name for m in agent.models} == {"callplane", "ipplane"}
