"""Train the two-part X-ray image model: explicit image features plus the CNN, one head.

``python -m models.xray.head`` renders (or loads from ``--cache``) ``--chunks`` training
sets of 500 parcels of the ``train`` profile (seeds ``--seed`` + k) and ``--val-chunks``
validation sets (seeds ``--seed`` + 2000 + k, same profile), computes for every image
the explicit features of :mod:`models.xray.features` (numpy, the same code as on the
device) and the outputs of the CNN (``cnn.onnx``: since model 1.3 the dense
:class:`models.xray.net.XraySegNet` of ``models.xray.train --net seg``, trained on sets of
its own), and trains on them a gradient-boosted head
(scikit-learn ``HistGradientBoostingClassifier``, four classes: none, card batch,
gold, cash; a second one for the card kind on card batches). Deterministic: fixed
seeds, no early stopping, one thread. Thresholds per category on the validation set
(at most ``--val-fp`` of its negatives above). The CNN graph and both heads are joined
into one ONNX file, ``model.onnx``: inputs ``image`` (n, 3, 192, 192) and ``features``
(n, F); outputs ``scores`` (n, 3), ``heatmap`` (n, 3, 12, 12, the CNN's evidence maps),
``kind`` (n, 3). ``--exclude FAMILY`` trains without the parcels that used it
(leave-one-family-out; the CNN part is not retrained). Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from models.xray.dataset import LABELS, ImageSet, cached
from models.xray.features import FEATURE_NAMES, extract
from models.xray.native import NATIVE_NAMES
from models.xray.native import extract as extract_native
from models.xray.preprocess import INPUT_PX, MODEL_MM_PER_PX

HERE = Path(__file__).resolve().parent
CHUNK = 500
VAL_FP = 0.003
CNN_OUT = ("cnn_card_batch", "cnn_gold", "cnn_cash", "cnn_heat_card_batch", "cnn_heat_gold",
           "cnn_heat_cash", "cnn_kind_sim", "cnn_kind_iot", "cnn_kind_bank")
# the ``features`` input: explicit features at 3.5 mm, then at the machine's pitch
ALL_FEATURES = FEATURE_NAMES + NATIVE_NAMES
HEAD_INPUTS = ALL_FEATURES + CNN_OUT
VERSION = "1.2.0"   # the committed model; the 1.3.0 candidate of session 6 was not shipped (card)


def _session(path: Path):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _code_key(*names: str) -> str:
    h = hashlib.sha256()
    for name in names:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:12]


def cnn_outputs(s: ImageSet, cnn: Path | None = None) -> np.ndarray:
    """(n, len(CNN_OUT)) the CNN's scores, heat-map maxima and card kind for a set."""
    sess = _session(cnn or HERE / "cnn.onnx")
    rows = []
    for i in range(0, len(s.y), 50):
        x = s.x[i:i + 50].astype(np.float32) / 255.0
        sc, hm, kd = sess.run(["scores", "heatmap", "kind"], {"image": x})
        rows.append(np.concatenate([sc, hm.reshape(len(x), 3, -1).max(-1), kd], 1))
    return np.concatenate(rows).astype(np.float32)


# the cache keys of the feature code, read once: a file edited while a long run has the
# module loaded must not get the old module's values under the new file's key
_KEY_FEAT = _code_key("features.py", "native.py")


def head_inputs(s: ImageSet, cache: Path, tag: str) -> np.ndarray:
    """(n, len(HEAD_INPUTS)) for a rendered set: explicit features and CNN outputs, each
    cached under ``cache`` keyed by its code (the feature modules; the CNN file), so a new
    CNN does not compute the features again."""
    f_path = cache / f"head_feat_{tag}_{_KEY_FEAT}.npy"
    if f_path.exists():
        feats = np.asarray(np.load(f_path))
    else:
        assert s.native is not None, "rendered set without its native-pitch images"
        fe = np.stack([extract(xi.astype(np.float32) / 255.0)[0] for xi in s.x])
        na = np.stack([extract_native(s.native[j], float(s.mm_per_px[j]))
                       for j in range(len(s.y))])
        feats = np.concatenate([fe, na], 1).astype(np.float32)
        np.save(f_path, feats)
    c_path = cache / f"head_cnn_{tag}_{_code_key('cnn.onnx')}.npy"
    if c_path.exists():
        cnn = np.asarray(np.load(c_path))
    else:
        cnn = cnn_outputs(s)
        np.save(c_path, cnn)
    return np.concatenate([feats, cnn], 1)


def load_sets(cache: Path, seed: int, chunks: int, first: int = 0
              ) -> tuple[ImageSet, np.ndarray]:
    """``chunks`` rendered sets of CHUNK parcels (seeds seed+first+k) and their inputs."""
    sets, feats = [], []
    for k in range(first, first + chunks):
        s = cached(cache, CHUNK, seed + k, "train", progress=False)
        sets.append(s)
        feats.append(head_inputs(s, cache, f"{seed + k}_{CHUNK}"))
    x = np.concatenate([s.x for s in sets])
    joined = ImageSet(x, np.concatenate([s.y for s in sets]),
                      np.concatenate([s.kind for s in sets]),
                      np.concatenate([s.heat for s in sets]),
                      [f for s in sets for f in s.families],
                      np.concatenate([s.mm_per_px for s in sets]),
                      [a for s in sets for a in (s.native or [])],
                      np.concatenate([s.dense for s in sets if s.dense is not None]))
    return joined, np.concatenate(feats)


def _classes(y: np.ndarray) -> np.ndarray:
    """0 none, 1 card batch, 2 gold, 3 cash (one threat per simulated parcel)."""
    return np.where(y.max(axis=1) > 0, y.argmax(axis=1) + 1, 0)


def log_inputs(feats: np.ndarray) -> np.ndarray:
    """log(1 + max(x, 0)): the smooth head's input (counts span five decades); the ONNX
    graph applies the same to ``head_in``."""
    return np.log1p(np.maximum(feats, 0.0)).astype(np.float32)


# inputs whose growth can only mean more of a category (head ``gbm-mono``): near-black
# compact area for gold, chip spots in card-like PVC for card batches, flat organic
# note-sized slabs for cash. Trees then cannot learn a bump between the training
# profile's parameter bins that falls apart on values they never saw.
MONOTONE = {
    "card_batch": ("spots_green_px", "spots_green2_px", "spots_green_max_cell",
                   "n_chip_spots_green_mm2", "n_card_chip_max", "n_card_chip_flat_max",
                   "n_card_chip_mm2", "n_card_chip2_mm2", "n_card_even_chip_max",
                   "n_card_even_ratio_max", "n_card_even_chip_mm2", "n_blue_chip_spots_mm2",
                   "n_card_blue_chip_max", "n_card_blue_ratio_max", "n_card_blue_chip_mm2",
                   "n_card_blue_any_max"),
    "gold": ("black_core_px", "black_core2_px", "black_core_max_cell", "n_black_e1_mm2",
             "n_black_e2_mm2", "n_black_e3_mm2", "n_vblack_mm2", "n_black_e1_max_cell"),
    # cash unconstrained: monotone in its slab cues, validation recall fell from 0.133 to
    # 0.098 (bundles under clothes make the slab cues fall while the cash is there)
    "cash": (),
}


class OneVsRest:
    """Three binary gradient-boosted trees (card batch, gold, cash against the rest),
    each monotone increasing in its category's inputs of :data:`MONOTONE`."""

    def __init__(self, seed: int) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.models = []
        for lab in LABELS:
            cst = [1 if n in MONOTONE[lab] else 0 for n in HEAD_INPUTS]
            self.models.append(HistGradientBoostingClassifier(
                max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40,
                l2_regularization=1.0, early_stopping=False, monotonic_cst=cst,
                random_state=seed))

    def fit(self, x: np.ndarray, cls: np.ndarray) -> OneVsRest:
        for j, m in enumerate(self.models):
            m.fit(x, (cls == j + 1).astype(np.int64))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.stack([m.predict_proba(x)[:, 1] for m in self.models], axis=1)
        return np.concatenate([1 - p.max(axis=1, keepdims=True), p], axis=1)


def fit(feats: np.ndarray, s: ImageSet, seed: int, head: str = "gbm"):  # type: ignore[no-untyped-def]
    """The head's models fitted on one thread (OpenMP threads on a shared box spin and
    make a one-minute fit take ten)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit(feats, s, seed, head)


def _fit(feats: np.ndarray, s: ImageSet, seed: int, head: str):  # type: ignore[no-untyped-def]
    from sklearn.ensemble import HistGradientBoostingClassifier

    if head == "gbm-mono":
        cls = OneVsRest(seed).fit(feats, _classes(s.y))
        card = s.kind >= 0
        kind = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05,
                                              early_stopping=False, random_state=seed)
        kind.fit(feats[card], s.kind[card])
        return cls, kind

    if head == "mlp":
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = log_inputs(feats)
        cls = make_pipeline(StandardScaler(), MLPClassifier(
            (64, 32), alpha=1e-3, max_iter=300, random_state=seed))
        cls.fit(x, _classes(s.y))
        card = s.kind >= 0
        kind = make_pipeline(StandardScaler(), MLPClassifier(
            (32,), alpha=1e-3, max_iter=300, random_state=seed))
        kind.fit(x[card], s.kind[card])
        return cls, kind
    cls = HistGradientBoostingClassifier(max_iter=400, learning_rate=0.05, max_leaf_nodes=31,
                                         l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)
    cls.fit(feats, _classes(s.y))
    card = s.kind >= 0
    kind = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05,
                                          early_stopping=False, random_state=seed)
    kind.fit(feats[card], s.kind[card])
    return cls, kind


def thresholds(scores: np.ndarray, y: np.ndarray, fp: float) -> dict[str, float]:
    out = {}
    for j, lab in enumerate(LABELS):
        neg = np.sort(scores[y[:, j] == 0, j])
        k = min(int(np.floor(len(neg) * (1 - fp))), len(neg) - 1)
        out[lab] = float(min(max(neg[k] + 1e-6, 0.05), 1.0 - 1e-6))
    return out


def export(cls, kind, out: Path, head: str = "gbm") -> None:  # type: ignore[no-untyped-def]
    """One ONNX graph: the CNN (``cnn.onnx``), then both heads over [features, CNN]."""
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import to_onnx

    n_in = len(HEAD_INPUTS)
    proto = np.zeros((1, n_in), dtype=np.float32)
    opsets = {"": 17, "ai.onnx.ml": 3}
    # skl2onnx 1.20 hands HistGradientBoosting's missing-value flags to onnx as numpy
    # booleans, which onnx 1.2x refuses in an ints attribute: give it ints
    orig = helper.make_attribute

    def ints_not_bools(key: str, value: object, *a: object, **k: object) -> object:
        if isinstance(value, (list, tuple, np.ndarray)) and any(
                isinstance(v, (bool, np.bool_)) for v in value):
            value = [int(v) for v in value]
        return orig(key, value, *a, **k)  # type: ignore[arg-type]

    helper.make_attribute = ints_not_bools  # type: ignore[assignment]
    try:
        m_ovr = ([to_onnx(m, proto, target_opset=opsets, options={"zipmap": False})
                  for m in cls.models] if isinstance(cls, OneVsRest) else [])
        m_cls = m_ovr[0] if m_ovr else to_onnx(cls, proto, target_opset=opsets,
                                               options={"zipmap": False})
        m_kind = to_onnx(kind, proto, target_opset=opsets, options={"zipmap": False})
    finally:
        helper.make_attribute = orig  # type: ignore[assignment]
    cnn = onnx.load(str(HERE / "cnn.onnx"))

    def prefixed(g: onnx.GraphProto, pre: str, keep: dict[str, str]) -> tuple[list, list]:
        def ren(n: str) -> str:
            return keep.get(n, pre + n) if n else n
        nodes = []
        for nd in g.node:
            new = onnx.NodeProto()
            new.CopyFrom(nd)
            new.name = pre + nd.name
            del new.input[:]
            new.input.extend(ren(i) for i in nd.input)
            del new.output[:]
            new.output.extend(ren(o) for o in nd.output)
            nodes.append(new)
        inits = []
        for t in g.initializer:
            new_t = onnx.TensorProto()
            new_t.CopyFrom(t)
            new_t.name = ren(t.name)
            inits.append(new_t)
        return nodes, inits

    n1, i1 = prefixed(cnn.graph, "cnn/", {"image": "image"})
    if m_ovr:
        # one binary model per category: its probability of the positive class
        n2, i2 = [], []
        for j, m in enumerate(m_ovr):
            nj, ij = prefixed(m.graph, f"ovr{j}/", {m.graph.input[0].name: "head_x"})
            n2 += nj + [helper.make_node("Slice", [f"ovr{j}/probabilities", "s_one", "s_two",
                                                   "s_axes"], [f"ovr{j}/pos"],
                                         name=f"ovr{j}/pos")]
            i2 += ij
        n2.append(helper.make_node("Concat", [f"ovr{j}/pos" for j in range(len(m_ovr))],
                                   ["scores_ovr"], axis=1, name="scores_ovr"))
    else:
        cls_in = m_cls.graph.input[0].name
        n2, i2 = prefixed(m_cls.graph, "cls/", {cls_in: "head_x"})
    kind_in = m_kind.graph.input[0].name
    n3, i3 = prefixed(m_kind.graph, "kind/", {kind_in: "head_x"})
    glue = [
        helper.make_node("ReduceMax", ["cnn/heatmap"], ["hm_max"], axes=[2, 3], keepdims=0,
                         name="hm_max"),
        helper.make_node("Concat", ["features", "cnn/scores", "hm_max", "cnn/kind"],
                         ["head_in"], axis=1, name="head_in"),
        *([helper.make_node("Relu", ["head_in"], ["head_pos"], name="head_pos"),
           helper.make_node("Add", ["head_pos", "one"], ["head_1p"], name="head_1p"),
           helper.make_node("Log", ["head_1p"], ["head_x"], name="head_x")]
          if head == "mlp" else
          [helper.make_node("Identity", ["head_in"], ["head_x"], name="head_x")]),
        (helper.make_node("Identity", ["scores_ovr"], ["scores"], name="scores") if m_ovr else
         helper.make_node("Slice", ["cls/probabilities", "s_start", "s_end", "s_axes"],
                          ["scores"], name="scores")),
        helper.make_node("Identity", ["kind/probabilities"], ["kind"], name="kind"),
        helper.make_node("Identity", ["cnn/heatmap"], ["heatmap"], name="heatmap"),
    ]
    consts = [helper.make_tensor("s_start", TensorProto.INT64, [1], [1]),
              helper.make_tensor("s_end", TensorProto.INT64, [1], [4]),
              helper.make_tensor("s_axes", TensorProto.INT64, [1], [1]),
              helper.make_tensor("s_one", TensorProto.INT64, [1], [1]),
              helper.make_tensor("s_two", TensorProto.INT64, [1], [2])]
    if head == "mlp":
        consts.append(helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]))
    graph = helper.make_graph(
        n1 + glue[:-3] + n2 + n3 + glue[-3:], "xray_two_part",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, INPUT_PX, INPUT_PX]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                       ["n", len(ALL_FEATURES)])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["n", 3, 12, 12]),
         helper.make_tensor_value_info("kind", TensorProto.FLOAT, ["n", 3])],
        initializer=i1 + i2 + i3 + consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)],
                              producer_name="models.xray.head")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())


def predict(path: Path, s: ImageSet, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and kind from the exported file (what the device computes)."""
    sess = _session(path)
    nf = len(ALL_FEATURES)
    sc, kd = [], []
    for i in range(0, len(s.y), 100):
        a, k = sess.run(["scores", "kind"], {"image": s.x[i:i + 100].astype(np.float32) / 255,
                                            "features": feats[i:i + 100, :nf]})
        sc.append(a)
        kd.append(k)
    return np.concatenate(sc), np.concatenate(kd)


def without(s: ImageSet, feats: np.ndarray, families: list[str]) -> tuple[ImageSet, np.ndarray]:
    keep = np.array([not any(f in fam for f in families) for fam in s.families])
    return s.select(keep), feats[keep]


def _cnn_record() -> dict[str, object]:
    """How the committed ``cnn.onnx`` was trained: ``cnn.json`` beside it (written by
    ``models.xray.train --net seg``) when it describes that file, else model 1.0's CNN."""
    from models.loader import sha256_file

    path = HERE / "cnn.json"
    if path.exists():
        rec = json.loads(path.read_text("utf-8"))
        if rec.get("sha256") == sha256_file(HERE / "cnn.onnx"):
            return {"trained_by": rec["command"], "net": rec["net"],
                    "record": "cnn.json"}
    return {"trained_by": "python -m models.xray.train (model 1.0.0)"}


def train(args: argparse.Namespace) -> dict[str, object]:
    t0 = time.perf_counter()
    tr, ftr = load_sets(args.cache, args.seed, args.chunks)
    va, fva = load_sets(args.cache, args.seed + 2000, args.val_chunks)
    tr, ftr = without(tr, ftr, args.exclude)
    va, fva = without(va, fva, args.exclude)
    t_data = time.perf_counter() - t0
    cls, kind = fit(ftr, tr, args.seed, args.head)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "model.onnx"
    export(cls, kind, path, args.head)
    scores, kinds = predict(path, va, fva)
    thr = thresholds(scores, va.y, args.val_fp)
    val = {}
    for j, lab in enumerate(LABELS):
        pos = va.y[:, j] == 1
        val[lab] = {"recall": round(float((scores[pos, j] >= thr[lab]).mean()), 4),
                    "fp_rate": round(float((scores[~pos, j] >= thr[lab]).mean()), 4),
                    "n_pos": int(pos.sum())}
    card = va.kind >= 0
    kind_acc = float((kinds[card].argmax(1) == va.kind[card]).mean()) if card.any() else 0.0
    from models.loader import sha256_file

    base = json.loads((HERE / "model.json").read_text("utf-8"))
    contract = {
        "name": "xray", "version": VERSION + "".join(f"-lofo-{f}" for f in args.exclude),
        "sha256": sha256_file(path), "kind": "image",
        "inputs": [{"name": "image", "dtype": "float32", "shape": [None, 3, INPUT_PX, INPUT_PX]},
                   {"name": "features", "dtype": "float32",
                    "shape": [None, len(ALL_FEATURES)]}],
        "input": {"name": "image", "shape": [None, 3, INPUT_PX, INPUT_PX], "dtype": "float32",
                  "mm_per_px": MODEL_MM_PER_PX,
                  "encoding": "1 - rgb/255 of the 2e pseudo-colour view, content centred "
                              "(models/xray/preprocess.py)"},
        "outputs": base.get("outputs", {}),
        "features": list(ALL_FEATURES),
        "feature_code": "models/xray/features.py + models/xray/native.py",
        "thresholds": thr,
        "parts": {"cnn": {"file": "cnn.onnx", "sha256": sha256_file(HERE / "cnn.onnx"),
                          **_cnn_record()},
                  "head": {"gbm": "HistGradientBoostingClassifier x2",
                           "gbm-mono": "HistGradientBoostingClassifier x3 one-vs-rest, "
                                       "monotone in MONOTONE (models/xray/head.py), + kind",
                           "mlp": "StandardScaler + MLPClassifier x2 over log(1 + x)"}[
                               args.head]
                  + " (scikit-learn), in model.onnx"},
        "training": {"command": "python -m models.xray.head" + "".join(
                         f" --exclude {f}" for f in args.exclude)
                     + f" --chunks {args.chunks} --val-chunks {args.val_chunks}"
                     + f" --head {args.head}", "head": args.head,
                     "profile": "train", "seed": args.seed, "n_train": int(len(tr.y)),
                     "n_val": int(len(va.y)), "excluded_families": list(args.exclude),
                     "val": val, "val_kind_accuracy": round(kind_acc, 4),
                     "val_fp_target": args.val_fp, "data_s": round(t_data, 1),
                     "train_s": round(time.perf_counter() - t0 - t_data, 1), "threads": 1},
    }
    if "evaluation" in base and not args.exclude and base.get("version") != VERSION:
        contract["evaluation_of_previous"] = {"version": base.get("version"),
                                              "heldout": base["evaluation"].get("heldout")}
    (args.out / "model.json").write_text(json.dumps(contract, indent=1) + "\n", "utf-8")
    return contract


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the X-ray model's head over explicit "
                                             "features and the CNN (models/xray).")
    ap.add_argument("--chunks", type=int, default=16, help="training sets of 500 parcels")
    ap.add_argument("--val-chunks", type=int, default=2, help="validation sets of 500")
    ap.add_argument("--seed", type=int, default=20261201, help="first training set's seed")
    ap.add_argument("--val-fp", type=float, default=VAL_FP,
                    help="share of validation negatives allowed above a threshold")
    ap.add_argument("--exclude", action="append", default=[],
                    help="family left out of training and validation (repeatable)")
    ap.add_argument("--head", choices=("gbm", "gbm-mono", "mlp"), default="gbm",
                    help="gradient-boosted trees (four classes; or one-vs-rest, monotone "
                         "in each category's physical cues), or a small MLP on log inputs")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for model.onnx/json")
    ap.add_argument("--cache", type=Path, default=Path(".cache/xray"), help="rendered sets")
    args = ap.parse_args(argv)
    c = train(args)
    print(json.dumps({"thresholds": c["thresholds"], "training": c["training"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
