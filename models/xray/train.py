"""Train the X-ray image model on simulator images and export it to ONNX.

``python -m models.xray.train`` renders (or loads from ``--cache``) a training set of the
``train`` profile (seed ``--seed``) and a validation set (seed ``--seed + 1000``, same
profile), trains :class:`models.xray.net.XrayNet` deterministically (fixed seeds, one
thread, deterministic algorithms), picks per-category thresholds on the validation set,
and writes ``model.onnx`` and ``model.json`` (the contract the device loads) into
``--out``. ``--exclude FAMILY`` trains without every parcel that used a family (the
leave-one-family-out runs of ``models.xray.evaluate``). Needs the ``train-image`` extra.

``--net seg`` (model 1.3) trains :class:`models.xray.net.XraySegNet` instead, on
``--seg-chunks`` cached sets of 500 parcels of its own (seeds 20261217 + k, never the
head's 20261201-20261216) against the simulator's threat mask per 14 mm cell, on random
128-pixel crops, and writes ``cnn.onnx`` and ``cnn.json`` (its training record, CNN-only
validation recall on set 20263201); ``models.xray.head`` then fits the heads over it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.xray.dataset import HEAT_CELLS, LABELS, ImageSet, cached
from models.xray.preprocess import INPUT_PX, MODEL_MM_PER_PX

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(".cache/xray")
VAL_FP_TARGET = 0.003     # threshold: at most this share of validation negatives above it


def _batches(n: int, bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + bs] for i in range(0, n, bs)]


def _kind_and_step(loss: Any, kind: Any, kt: Any, opt: Any, sched: Any) -> float:
    """Both nets' training step: the card-kind loss on the card batches of the batch
    (``kt`` -1 elsewhere) added to ``loss``, one optimiser and scheduler step; the
    batch's loss back as a float."""
    import torch.nn.functional as F

    has_kind = kt >= 0
    if bool(has_kind.any()):
        loss = loss + 0.3 * F.cross_entropy(kind[has_kind], kt[has_kind])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return float(loss.detach())


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
            total += _kind_and_step(loss, kind, kt, opt, sched) * len(idx)
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


# --- model 1.3: the segmentation-style CNN (``--net seg``) -----------------------------

SEG_CHUNK = 500
SEG_FIRST_SEED = 20261217    # 16 sets of 500 (seeds 20261217-20261232): the CNN's own;
SEG_VAL_SEED = 20263201      # the head trains on 20261201-20261216, so its CNN inputs
                             # are outputs on images the CNN never saw


def load_dense(cache: Path, seeds: list[int]) -> ImageSet:
    """The rendered sets of ``seeds`` (SEG_CHUNK parcels each) without their native-pitch
    images (the CNN does not read them; they would take gigabytes)."""
    from models.xray.dataset import cache_path

    parts = []
    for sd in seeds:
        path = cache_path(cache, SEG_CHUNK, sd, "train")
        if not path.exists():
            cached(cache, SEG_CHUNK, sd, "train", progress=False)
        z = np.load(path, allow_pickle=False)
        parts.append((z["x"], z["y"], z["kind"], z["heat"], json.loads(str(z["families"])),
                      z["mm"], z["dense"]))
    return ImageSet(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
                    [f for p in parts for f in p[4]], np.concatenate([p[5] for p in parts]),
                    None, np.concatenate([p[6] for p in parts]))


def dense_target(s: ImageSet, idx: np.ndarray) -> np.ndarray:
    """(b, 3, 48, 48) float32: 1 where at least 30 % of a cell is the parcel's threat (and
    at least its best-covered cell, so a thin threat has a target too), in the channel of
    its category (ground truth from the simulator, never an input)."""
    assert s.dense is not None
    cov = s.dense[idx]
    top = cov.reshape(len(idx), -1).max(axis=1)
    cut = np.maximum(np.minimum(top, 77), 1)[:, None, None]  # 77/255 = 0.3
    d = (cov >= cut).astype(np.float32)
    y = s.y[idx]
    return y[:, :, None, None] * d[:, None]


SEG_CROP = 128   # training crops (px of the 192 canvas): 0.44 of the pixels per step


def seg_crops(s: ImageSet, idx: np.ndarray, rng: np.random.Generator,
              crop: int = SEG_CROP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random ``crop`` x ``crop`` windows of the samples ``idx`` (offsets on the net's
    16-pixel grid, so training sees the cells as inference does): (images float32
    (b, 3, crop, crop), dense targets (b, 3, crop/4, crop/4), labels (b, 3): the parcel's
    label where the window holds some of its threat target, else 0). A threat parcel's
    window covers its threat in 3 of 4 draws."""
    full = dense_target(s, idx)
    b = len(idx)
    steps = (192 - crop) // 16 + 1
    xs = np.zeros((b, 3, crop, crop), dtype=np.float32)
    ds = np.zeros((b, 3, crop // 4, crop // 4), dtype=np.float32)
    for i in range(b):
        tgt = full[i].max(axis=0)
        if tgt.any() and rng.random() < 0.75:
            rows, cols = np.nonzero(tgt)
            k = int(rng.integers(len(rows)))
            r = int(np.clip((rows[k] * 4 - crop // 2) // 16 + rng.integers(-1, 2), 0, steps - 1))
            c = int(np.clip((cols[k] * 4 - crop // 2) // 16 + rng.integers(-1, 2), 0, steps - 1))
        else:
            r, c = int(rng.integers(steps)), int(rng.integers(steps))
        y0, x0 = r * 16, c * 16
        xs[i] = s.x[idx[i], :, y0:y0 + crop, x0:x0 + crop].astype(np.float32) / 255.0
        ds[i] = full[i, :, y0 // 4:(y0 + crop) // 4, x0 // 4:(x0 + crop) // 4]
    labels = (ds.reshape(b, 3, -1).max(axis=2) > 0).astype(np.float32)
    return xs, ds, labels


def train_seg(train: ImageSet, epochs: int, seed: int, lr: float = 3e-3, batch: int = 32,
              log: bool = True, crop: int = SEG_CROP) -> tuple[object, list[float]]:
    """Train :class:`models.xray.net.XraySegNet` on ``train`` (deterministic: fixed
    seeds, one thread, deterministic algorithms) on random crops (the net is fully
    convolutional; a crop costs 0.44 of the whole canvas on a scarce CPU);
    (model in eval mode, loss per epoch)."""
    import torch
    import torch.nn.functional as F

    from models.xray.net import XraySegNet

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    model = XraySegNet().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train.y) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)
    pos_w = torch.tensor(4.0)
    losses: list[float] = []
    for ep in range(epochs):
        model.train()
        total, count = 0.0, 0
        t0 = time.perf_counter()
        for nb, idx in enumerate(_batches(len(train.y), batch, rng)):
            x, dense, lab = seg_crops(train, idx, rng, crop)
            # belt direction and side are arbitrary: flip image and target together
            if rng.random() < 0.5:
                x, dense = x[:, :, :, ::-1], dense[:, :, :, ::-1]
            if rng.random() < 0.5:
                x, dense = x[:, :, ::-1, :], dense[:, :, ::-1, :]
            xt = torch.from_numpy(np.ascontiguousarray(x)).contiguous(
                memory_format=torch.channels_last)
            yt = torch.from_numpy(lab)
            dt = torch.from_numpy(np.ascontiguousarray(dense))
            kt = torch.from_numpy(np.where(lab[:, 0] > 0, train.kind[idx], -1))
            pooled, maps, kind = model.forward_logits(xt)
            loss = F.binary_cross_entropy_with_logits(pooled, yt)
            # every cell learns whether it is threat: look-alikes and clutter are told
            # "no" where they lie, not only per image
            loss = loss + F.binary_cross_entropy_with_logits(maps, dt, pos_weight=pos_w)
            total += _kind_and_step(loss, kind, kt, opt, sched) * len(idx)
            count += len(idx)
            if log and ep == 0 and nb in (4, 20):
                print(f"  batch {nb + 1}: {(time.perf_counter() - t0) / count * 1000:.0f} "
                      f"ms per image", flush=True)
        losses.append(total / count)
        if log:
            print(f"epoch {ep + 1}/{epochs} loss {losses[-1]:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    model.eval()
    return model.to(memory_format=torch.contiguous_format), losses  # type: ignore[call-overload]


def recall_at_fp(scores: np.ndarray, y: np.ndarray, fp: float) -> dict[str, float]:
    """Per category: share of positives above the score that ``fp`` of negatives exceed."""
    out = {}
    for j, lab in enumerate(LABELS):
        neg = np.sort(scores[y[:, j] == 0, j])
        thr = neg[min(int(math.floor(len(neg) * (1 - fp))), len(neg) - 1)]
        out[lab] = round(float((scores[y[:, j] == 1, j] > thr).mean()), 4)
    return out


def main_seg(args: argparse.Namespace) -> int:
    """``--net seg``: train the CNN part of model 1.3 and write ``cnn.onnx`` and
    ``cnn.json`` (its training record) into ``--out``; ``models.xray.head`` then fits
    the heads over it."""
    t0 = time.perf_counter()
    seeds = [SEG_FIRST_SEED + k for k in range(args.seg_chunks)]
    print(f"loading {len(seeds)} sets of {SEG_CHUNK} (seeds {seeds[0]}-{seeds[-1]})", flush=True)
    train = load_dense(args.cache, seeds)
    val = load_dense(args.cache, [SEG_VAL_SEED])
    t_data = time.perf_counter() - t0
    if args.net == "seg":
        model, losses = train_seg(train, args.epochs, args.seed)
    else:   # model 1.0's net and recipe (image labels, 12 x 12 heat) on the same sets
        model, losses = train_model(train, args.epochs, args.seed)
    t_train = time.perf_counter() - t0 - t_data
    scores, kinds = predict(model, val)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cnn.onnx"
    export_onnx(model, path)
    from models.loader import sha256_file

    card = val.kind >= 0
    record = {
        "net": ("XraySegNet" if args.net == "seg" else "XrayNet") + " (models/xray/net.py)",
        "command": f"python -m models.xray.train --net {args.net} --seg-chunks {args.seg_chunks} "
                   f"--epochs {args.epochs}",
        "sha256": sha256_file(path), "profile": "train", "train_seeds": [seeds[0], seeds[-1]],
        "n_train": int(len(train.y)), "val_seed": SEG_VAL_SEED, "n_val": int(len(val.y)),
        "epochs": args.epochs, "torch_seed": args.seed, "threads": 1,
        "loss_per_epoch": [round(v, 4) for v in losses],
        "val_recall_at_1pct_fp": recall_at_fp(scores, val.y, 0.01),
        "val_recall_at_0.3pct_fp": recall_at_fp(scores, val.y, 0.003),
        "val_kind_accuracy": round(float((kinds[card].argmax(1) == val.kind[card]).mean()), 4),
        "load_s": round(t_data, 1), "train_s": round(t_train, 1),
    }
    (args.out / "cnn.json").write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    print(json.dumps(record, indent=1))
    return 0


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
    ap.add_argument("--net", choices=("xraynet", "seg", "xraynet-sets"), default="xraynet",
                    help="xraynet: the CNN of model 1.0 (image labels, 12 x 12 heat) on its "
                         "own set; seg: the dense CNN of model 1.3; xraynet-sets: model "
                         "1.0's net and recipe on seg's sets (both write cnn.onnx, cnn.json)")
    ap.add_argument("--seg-chunks", type=int, default=16,
                    help="--net seg: training sets of 500 parcels (seeds 20261217 + k)")
    args = ap.parse_args(argv)
    if args.net in ("seg", "xraynet-sets"):
        if args.quick:
            args.seg_chunks, args.epochs = 1, 1
        return main_seg(args)
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
