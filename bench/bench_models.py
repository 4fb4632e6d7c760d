"""Per-model latency on one thread: batch 1 and the batch the detector uses, float and
int8 where quantisation applies; one intra-op thread against two (issue 15).

Every package under models/ with a model.onnx is timed with inputs shaped by its
contract (its canary rows when it ships them, else random rows of the right shape).
int8 is onnxruntime's dynamic quantisation (MatMul/Conv weights); tree ensembles
(the call-plane and IP-plane GradientBoosting models) have nothing it applies to and
say so.

    python bench/bench_models.py --repeat 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.loader import MODELS_DIR, read_contract, session_options  # noqa: E402
from models.package import read_canary  # noqa: E402

BATCH = {"callplane": 512, "ipplane": 64}  # what the detectors score at once, typically


def inputs_for(folder: Path, batch: int) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = read_canary(folder)
    out = {}
    for gi in sess.get_inputs():
        if got is not None and gi.name in got[0]:
            base = got[0][gi.name]
            reps = -(-batch // len(base))
            out[gi.name] = np.concatenate([base] * reps)[:batch]
            continue
        shape = [batch if not isinstance(d, int) else d for d in gi.shape]
        shape[0] = batch
        dt = np.uint8 if "uint8" in gi.type else np.float32
        out[gi.name] = np.random.default_rng(0).random(shape).astype(dt)
    return out


def time_it(path: Path, feeds: dict[str, np.ndarray], threads: int, repeat: int) -> float:
    import onnxruntime as ort

    opts = session_options()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    for _ in range(10):
        sess.run(None, feeds)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def quantised(folder: Path, tmp: Path) -> Path | None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(folder / "model.onnx"))
    if not any(n.op_type in ("MatMul", "Gemm", "Conv") for n in graph.graph.node):
        return None
    out = tmp / f"{folder.name}.int8.onnx"
    quantize_dynamic(str(folder / "model.onnx"), str(out), weight_type=QuantType.QInt8)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python bench/bench_models.py --repeat 300")
    ap.add_argument("--repeat", type=int, default=300, help="timed runs per figure (median)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="afe-bench-models-"))
    print("| model | version | batch | float us (1 thread) | float us (2 threads) | "
          "int8 us (1 thread) |\n|---|---|---:|---:|---:|---:|")
    for folder in sorted(p.parent for p in MODELS_DIR.glob("*/model.onnx")):
        c = read_contract(folder)
        q = quantised(folder, tmp)
        for batch in sorted({1, BATCH.get(folder.name, 8)}):
            feeds = inputs_for(folder, batch)
            f1 = time_it(folder / "model.onnx", feeds, 1, a.repeat)
            f2 = time_it(folder / "model.onnx", feeds, 2, a.repeat)
            i8 = f"{time_it(q, feeds, 1, a.repeat):,.0f}" if q else "n/a (no MatMul/Conv)"
            print(f"| {c.name} | {c.version} | {batch} | {f1:,.0f} | {f2:,.0f} | {i8} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
