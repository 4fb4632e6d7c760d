"""Loading ONNX models safely: one loader and one convention for every model.

A model is a folder (a *package*, :mod:`models.package`): ``model.onnx``, its typed
contract ``model.json`` (:mod:`models.contract`), its card and, optionally, a canary
set, a drift reference and a signed manifest. :func:`load_model`, before onnxruntime
sees a byte of the graph:

1. parses and validates the contract;
2. verifies the package signature against the configured issuer keys when one is
   required (every model from outside the release: ``[models] require_signature``),
   or present while keys are configured;
3. checks ``model.onnx`` against the contract's sha256;

then opens the session and checks the graph's inputs against the contract (names,
element types, ranks, fixed dimensions: any shape, so image models load the same
way) and, when the caller says which features it computes, the feature names and
order. Any mismatch is a :class:`~edge.errors.ModelError` saying which.

Session options for a small box (one model call per batch, 1-2 cores shared with
capture and decoding): one intra-op and one inter-op thread (measured faster than two
on 2 cores for our batch sizes, and it leaves the other core to the pipeline),
sequential execution, full graph optimisation; the CPU memory arena and memory
patterns stay on (shapes repeat batch after batch, so allocations are reused).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.detection import ModelInfo
from edge.errors import ModelError
from models.contract import ModelContract, parse_contract

MODELS_DIR = Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A verified model with an open session. ``run`` for any input, ``predict_proba``
    for tabular classifiers; both time every call (``counters``)."""

    info: ModelInfo
    features: list[str]
    contract: dict[str, Any]
    session: Any
    input_name: str
    output_names: list[str] = field(default_factory=list)
    typed: ModelContract | None = None
    folder: Path | None = None
    signed_by: str | None = None
    calls: int = 0
    rows: int = 0
    latency_us_total: float = 0.0
    latency_us_max: float = 0.0

    def run(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> list[Any]:
        """All outputs for ``inputs`` (one array for a single-input model, or by name)."""
        feeds = inputs if isinstance(inputs, Mapping) else {self.input_name: inputs}
        t0 = time.perf_counter_ns()
        outs = self.session.run(None, dict(feeds))
        us = (time.perf_counter_ns() - t0) / 1000
        self.calls += 1
        first = next(iter(feeds.values()))
        self.rows += int(first.shape[0]) if getattr(first, "ndim", 0) else 1
        self.latency_us_total += us
        if us > self.latency_us_max:
            self.latency_us_max = us
        return list(outs)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(positive class) for each row of a (n, n_features) float32 matrix."""
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ModelError(f"{self.info.name}: expected (n, {len(self.features)}) input, "
                             f"got {x.shape}")
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        probs = self.run(x.astype(np.float32, copy=False))[-1]
        if isinstance(probs, list):  # zipmap output: list of {label: p}
            return np.array([p.get(1, p.get("1", 0.0)) for p in probs], dtype=np.float32)
        probs = np.asarray(probs)
        return probs[:, -1] if probs.ndim == 2 else probs

    def counters(self) -> dict[str, int | float]:
        """Calls, rows and latency of this model (for agent.status and /metrics)."""
        p = f"model.{self.info.name}."
        return {p + "calls": self.calls, p + "rows": self.rows,
                p + "latency_us_mean": round(self.latency_us_total / self.calls, 1)
                if self.calls else 0.0,
                p + "latency_us_max": round(self.latency_us_max, 1)}

    def close(self) -> None:
        self.session = None


def session_options() -> Any:
    """The onnxruntime options every model runs with (see the module docstring)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    opts.log_severity_level = 3  # warnings from the runtime are not our operators' business
    return opts


def read_contract(folder: Path) -> ModelContract:
    path = Path(folder) / "model.json"
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model contract missing: {path}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model contract unreadable: {path}: {exc}") from None
    return parse_contract(raw, str(path))


def is_packaged(folder: Path) -> bool:
    """True for the models shipped inside this release (under ``models/``)."""
    try:
        Path(folder).resolve().relative_to(MODELS_DIR)
    except ValueError:
        return False
    return True


def load_model(folder: Path | str, onnx_path: Path | None = None, *,
               expect_features: Sequence[str] | None = None,
               keys: Mapping[str, Any] | None = None,
               require_signature: bool = False) -> LoadedModel:
    """Verify and open the package in ``folder`` (``onnx_path``: another graph file,
    for tests and training). See the module docstring for the order of checks."""
    import onnxruntime as ort

    folder = Path(folder)
    contract = read_contract(folder)
    signed_by = None
    from models.package import is_signed, verify_package

    if require_signature or (keys and is_signed(folder)):
        signed_by = verify_package(folder, keys or {})
    model_path = onnx_path or folder / "model.onnx"
    try:
        # read once: the bytes hashed are the bytes onnxruntime gets (a file swapped
        # between the check and the load cannot slip through)
        blob = model_path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file missing: {model_path} (train it: see {folder}/README)"
                         ) from None
    except OSError as exc:
        raise ModelError(f"model file unreadable: {model_path}: {exc}") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != contract.sha256:
        raise ModelError(f"{model_path}: sha256 {digest[:12]}... does not match the "
                         f"contract's {contract.sha256[:12]}...; refusing to load")
    if expect_features is not None and tuple(expect_features) != contract.features:
        raise ModelError(_feature_mismatch(folder, contract.features, tuple(expect_features)))
    try:
        sess = ort.InferenceSession(blob, sess_options=session_options(),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{model_path}: onnxruntime cannot load it: {exc}") from None
    graph_inputs = sess.get_inputs()
    if contract.inputs:
        if len(graph_inputs) != len(contract.inputs):
            raise ModelError(f"{model_path}: graph has {len(graph_inputs)} inputs, the "
                             f"contract {len(contract.inputs)}")
        for spec, gi in zip(contract.inputs, graph_inputs, strict=True):
            why = spec.matches(gi)
            if why:
                raise ModelError(f"{model_path}: {why}")
    info = ModelInfo(contract.name, contract.version, digest)
    return LoadedModel(info, list(contract.features), contract.raw, sess, graph_inputs[0].name,
                       [o.name for o in sess.get_outputs()], typed=contract, folder=folder,
                       signed_by=signed_by)


def _feature_mismatch(folder: Path, have: tuple[str, ...], want: tuple[str, ...]) -> str:
    missing = [f for f in want if f not in have]
    extra = [f for f in have if f not in want]
    if missing or extra:
        return (f"{folder}: the model was trained on other features (missing "
                f"{', '.join(missing) or '-'}; unknown {', '.join(extra) or '-'})")
    first = next(i for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b)
    return (f"{folder}: features in another order (position {first}: model "
            f"{have[first]!r}, detector {want[first]!r})")


def load_configured(folder: Path, cfg: Any, *, expect_features: Sequence[str] | None = None,
                    onnx_path: Path | None = None) -> LoadedModel:
    """:func:`load_model` with the signature policy of the agent's config
    (``[models] require_signature`` and ``[security] issuer_keys``)."""
    keys: dict[str, Any] = {}
    if cfg.security.issuer_keys:  # cryptography is imported only when there are keys
        from edge.security.signing import trusted_keys

        keys = dict(trusted_keys(cfg.security.issuer_keys))
    policy = cfg.models.require_signature
    required = policy == "always" or (policy == "external" and not is_packaged(folder))
    if policy == "never":
        keys = {}
    return load_model(folder, onnx_path, expect_features=expect_features, keys=keys,
                      require_signature=required)
