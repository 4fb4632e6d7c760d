"""Train the X-ray image model on simulator images and export it to ONNX.

``python -m models.xray.train`` renders (or loads from ``--cache``) a training set of the
``train`` profile (seed ``--seed``) and a validation set (seed ``--seed + 1000``, same
profile), trains :class:`models.xray.net.XrayNet` deterministically (fixed seeds, one
thread, deterministic algorithms), picks per-category thresholds on the validation set,
and writes ``model.onnx`` and ``model.json`` (the contract the device loads) into
``--out``. ``--exclude FAMILY`` trains without every parcel that used a family (the
leave-one-family-out runs of ``models.xray.evaluate``). Needs the ``train-image`` extra.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from models.xray.dataset import HEAT_CELLS, LABELS, ImageSet, cached
from models.xray.preprocess import INPUT_PX, MODEL_MM_PER_PX

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(".cache/xray")
VAL_FP_TARGET = 0.003     # threshold: at most this share of validation negatives above it


def _batches(n: int, bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + bs] for i in range(0, n, bs)]


def train_model(train: ImageSet, epochs: int, seed: int, lr: float = 4e-3,
                batch: int = 32, log: bool = True) -> tuple[object, list[float]]:
    """Train on ``train``; returns (model in eval mode, mean loss per epoch)."""
    import torch
    import torch.nn.functional as F

    from models.xray.net import XrayNet

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    model = XrayNet()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train.y) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)
    losses: list[float] = []
    for ep in range(epochs):
        model.train()
        total, count = 0.0, 0
        t0 = time.perf_counter()
        for idx in _batches(len(train.y), batch, rng):
            x = train.x[idx].astype(np.float32) / 255.0
            heat = train.heat[idx]
            # belt direction and side are arbitrary: flip both image and heat target
            if rng.random() < 0.5:
                x, heat = x[:, :, :, ::-1], heat[:, :, :, ::-1]
            if rng.random() < 0.5:
                x, heat = x[:, :, ::-1, :], heat[:, :, ::-1, :]
            xt = torch.from_numpy(np.ascontiguousarray(x))
            yt = torch.from_numpy(train.y[idx])
            ht = torch.from_numpy(np.ascontiguousarray(heat))
            kt = torch.from_numpy(train.kind[idx])
            pooled, maps, kind = model.forward_logits(xt)
            loss = F.binary_cross_entropy_with_logits(pooled, yt)
            # the heat map learns where the threat is; only the true category's channel
            # has a target > 0, the others learn to stay cold
            loss = loss + 0.5 * F.binary_cross_entropy_with_logits(maps, (ht > 0.25).float())
            has_kind = kt >= 0
            if bool(has_kind.any()):
                loss = loss + 0.3 * F.cross_entropy(kind[has_kind], kt[has_kind])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        losses.append(total / count)
        if log:
            print(f"epoch {ep + 1}/{epochs} loss {losses[-1]:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    model.eval()
    return model, losses


def predict(model: object, s: ImageSet, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(scores (n, 3), kind probabilities (n, 3)) with the torch model."""
    import torch

    outs, kinds = [], []
    with torch.no_grad():
        for i in range(0, len(s.y), batch):
            x = torch.from_numpy(s.x[i:i + batch].astype(np.float32) / 255.0)
            sc, _maps, kd = model(x)  # type: ignore[operator]
            outs.append(sc.numpy())
            kinds.append(kd.numpy())
    return np.concatenate(outs), np.concatenate(kinds)


def thresholds(scores: np.ndarray, y: np.ndarray, fp_target: float) -> dict[str, float]:
    """Per category: the score above which at most ``fp_target`` of negatives lie."""
    out = {}
    for j, lab in enumerate(LABELS):
        neg = np.sort(scores[y[:, j] == 0, j])
        k = int(math.floor(len(neg) * (1 - fp_target)))
        out[lab] = float(min(max(neg[min(k, len(neg) - 1)] + 1e-6, 0.05), 0.99))
    return out


def export_onnx(model: object, path: Path) -> None:
    import torch

    dummy = torch.zeros(1, 3, INPUT_PX, INPUT_PX)
    torch.onnx.export(model, (dummy,), str(path), input_names=["image"],  # type: ignore[arg-type]
                      output_names=["scores", "heatmap", "kind"], opset_version=17,
                      dynamo=False, dynamic_axes={"image": {0: "n"}, "scores": {0: "n"},
                                                  "heatmap": {0: "n"}, "kind": {0: "n"}})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the X-ray image model (models/xray).")
    ap.add_argument("--n-train", type=int, default=2400, help="training images")
    ap.add_argument("--n-val", type=int, default=600, help="validation images")
    ap.add_argument("--epochs", type=int, default=24, help="training epochs")
    ap.add_argument("--seed", type=int, default=20261201, help="data and training seed")
    ap.add_argument("--exclude", action="append", default=[],
                    help="family left out of training (repeatable)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for model.onnx/json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="rendered-set cache")
    ap.add_argument("--quick", action="store_true", help="small run (smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_train, args.n_val, args.epochs = 200, 100, 2
    t0 = time.perf_counter()
    print(f"rendering/loading {args.n_train} training images (seed {args.seed})", flush=True)
    full = cached(args.cache, args.n_train, args.seed, "train")
    train = full
    for fam in args.exclude:
        train = train.without(fam)
    val = cached(args.cache, args.n_val, args.seed + 1000, "train")
    for fam in args.exclude:
        val = val.without(fam)
    t_data = time.perf_counter() - t0
    print(f"{len(train.y)} training, {len(val.y)} validation images ({t_data:.0f} s)")
    model, losses = train_model(train, args.epochs, args.seed)
    t_train = time.perf_counter() - t0 - t_data
    scores, kinds = predict(model, val)
    thr = thresholds(scores, val.y, VAL_FP_TARGET)
    val_metrics = {}
    for j, lab in enumerate(LABELS):
        pos = val.y[:, j] == 1
        val_metrics[lab] = {"recall": float((scores[pos, j] >= thr[lab]).mean()),
                            "fp_rate": float((scores[~pos, j] >= thr[lab]).mean()),
                            "n_pos": int(pos.sum())}
    card = val.kind >= 0
    kind_acc = float((kinds[card].argmax(1) == val.kind[card]).mean()) if card.any() else 0.0
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    export_onnx(model, onnx_path)
    from models.loader import sha256_file

    contract = {
        "name": "xray", "version": "1.0.0", "sha256": sha256_file(onnx_path),
        "kind": "image",
        "inputs": [{"name": "image", "dtype": "float32", "shape": [None, 3, INPUT_PX, INPUT_PX]}],
        "input": {"name": "image", "shape": [None, 3, INPUT_PX, INPUT_PX],
                  "dtype": "float32", "mm_per_px": MODEL_MM_PER_PX,
                  "encoding": "1 - rgb/255 of the 2e pseudo-colour view, content centred "
                              "(models/xray/preprocess.py)"},
        "outputs": {"scores": {"shape": [None, 3], "labels": list(LABELS)},
                    "heatmap": {"shape": [None, 3, HEAT_CELLS, HEAT_CELLS],
                                "labels": list(LABELS)},
                    "kind": {"shape": [None, 3], "labels": ["sim", "iot", "bank"]}},
        "features": [],
        "thresholds": thr,
        "training": {"command": "python -m models.xray.train" + "".join(
                         f" --exclude {f}" for f in args.exclude),
                     "profile": "train", "seed": args.seed, "n_train": int(len(train.y)),
                     "n_val": int(len(val.y)), "epochs": args.epochs,
                     "excluded_families": list(args.exclude),
                     "loss_per_epoch": [round(v, 4) for v in losses],
                     "val": val_metrics, "val_kind_accuracy": kind_acc,
                     "val_fp_target": VAL_FP_TARGET,
                     "render_s": round(t_data, 1), "train_s": round(t_train, 1),
                     "threads": 1},
    }
    (args.out / "model.json").write_text(json.dumps(contract, indent=1) + "\n", "utf-8")
    print(json.dumps({"thresholds": thr, "val": val_metrics, "kind_acc": kind_acc}, indent=1))
    print(f"wrote {onnx_path} ({time.perf_counter() - t0:.0f} s total)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
