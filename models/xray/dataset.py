"""Training and validation sets for the X-ray image model, rendered by the simulator.

Each sample is a simulated parcel (``simulators.depot.contents``) rendered by the physics
simulator (``simulators.depot.xray``) and prepared exactly as on the device
(``models.xray.preprocess``): an input tensor stored as uint8, the multi-label target
(card batch, gold, cash), the card kind, the heat-map target (share of each cell covered
by the threat) and the families the parcel used (for leave-one-family-out runs).
Sets are cached under ``--cache`` keyed by their parameters, so retraining or a
leave-one-family-out run does not render again. Training-time only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.xray.preprocess import INPUT_PX, mask_to_input, prepare
from simulators.depot.contents import CARD_KINDS, sample_parcel
from simulators.depot.xray import render

HEAT_CELLS = 12
# the dense training target: share of each of DENSE_CELLS x DENSE_CELLS cells of the model
# input (4 pixels, 14 mm at 3.5 mm) covered by the parcel's threat (ground truth only)
DENSE_CELLS = 48
LABELS = ("card_batch", "gold", "cash")
# share of each truth category in a training set; the "none" parcels get a look-alike
# more often than on a real belt, because those are the hard negatives.
MIX = {"none": 0.40, "card_batch": 0.22, "gold": 0.19, "cash": 0.19}
LOOKALIKE_RATE = 0.6
# machine pitches rendered (mm per pixel); the model itself always sees 3.5 mm
PITCHES = (1.5, 2.0, 2.5)


@dataclass
class ImageSet:
    x: np.ndarray            # uint8 (n, 3, INPUT_PX, INPUT_PX), 255 * (1 - rgb/255)
    y: np.ndarray            # float32 (n, 3) multi-label target
    kind: np.ndarray         # int64 (n,), card kind index or -1
    heat: np.ndarray         # float32 (n, 3, HEAT_CELLS, HEAT_CELLS)
    families: list[list[str]]
    mm_per_px: np.ndarray    # float32 (n,) machine pitch each image was rendered at
    # uint8 (h, w, 3) per sample: the image at the machine's pitch, cut to the window the
    # model input shows (``Prepared.native_window``), for the native-pitch features
    native: list[np.ndarray] | None = None
    # uint8 (n, DENSE_CELLS, DENSE_CELLS): 255 * share of each cell covered by the threat
    # of the parcel's category (one threat category per simulated parcel, ``y``)
    dense: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> ImageSet:
        idx = np.flatnonzero(keep)
        return ImageSet(self.x[idx], self.y[idx], self.kind[idx], self.heat[idx],
                        [self.families[i] for i in idx], self.mm_per_px[idx],
                        None if self.native is None else [self.native[i] for i in idx],
                        None if self.dense is None else self.dense[idx])

    def without(self, family: str) -> ImageSet:
        """The set minus every sample that used ``family``."""
        return self.select(np.array([family not in f for f in self.families]))


def _categories(n: int, rng: np.random.Generator) -> list[str]:
    cats = list(MIX)
    counts = [int(round(MIX[c] * n)) for c in cats]
    counts[0] += n - sum(counts)
    out = [c for c, k in zip(cats, counts, strict=True) for _ in range(k)]
    rng.shuffle(out)
    return out


def build(n: int, seed: int, profile: str = "train", exclude: tuple[str, ...] = (),
          include: tuple[str, ...] = (), progress: bool = False) -> ImageSet:
    """Render ``n`` parcels of ``profile`` from ``seed`` (deterministic)."""
    rng = np.random.default_rng(seed)
    cats = _categories(n, rng)
    x = np.zeros((n, 3, INPUT_PX, INPUT_PX), dtype=np.uint8)
    y = np.zeros((n, len(LABELS)), dtype=np.float32)
    kind = np.full(n, -1, dtype=np.int64)
    heat = np.zeros((n, len(LABELS), HEAT_CELLS, HEAT_CELLS), dtype=np.float32)
    pitch = np.zeros(n, dtype=np.float32)
    dense = np.zeros((n, DENSE_CELLS, DENSE_CELLS), dtype=np.uint8)
    fams: list[list[str]] = []
    native: list[np.ndarray] = []
    for i, cat in enumerate(cats):
        spec = sample_parcel(rng, profile, category=cat, lookalike_rate=LOOKALIKE_RATE,
                             exclude_families=exclude,
                             include_families=include if include and cat == "none" else ())
        mm = float(rng.choice(PITCHES))
        r = render(spec, rng, mm)
        prep = prepare(r.image, mm)
        x[i] = np.clip(prep.x * 255 + 0.5, 0, 255).astype(np.uint8)
        x0, y0, x1, y1 = prep.native_window()
        native.append(np.ascontiguousarray(r.image[y0:y1, x0:x1]))
        pitch[i] = mm
        if cat != "none":
            j = LABELS.index(cat)
            y[i, j] = 1.0
            heat[i, j] = mask_to_input(r.threat_mask, prep, HEAT_CELLS)
            dense[i] = np.clip(mask_to_input(r.threat_mask, prep, DENSE_CELLS) * 255 + 0.5,
                               0, 255).astype(np.uint8)
        if spec.card_kind:
            kind[i] = CARD_KINDS.index(spec.card_kind)
        fams.append(list(spec.families))
        if progress and (i + 1) % 200 == 0:
            print(f"  rendered {i + 1}/{n}", flush=True)
    return ImageSet(x, y, kind, heat, fams, pitch, native, dense)


def _defining_files() -> list[Path]:
    """The files whose content defines the rendered images (the cache key)."""
    sim = Path(__file__).resolve().parents[2] / "simulators" / "depot"
    return [sim / "contents.py", sim / "materials.py", sim / "xray.py",
            sim / "attenuation.json", Path(__file__).with_name("preprocess.py")]


def cached(cache: Path, n: int, seed: int, profile: str, exclude: tuple[str, ...] = (),
           include: tuple[str, ...] = (), progress: bool = True) -> ImageSet:
    """:func:`build`, stored in ``cache`` under a key of its parameters and the simulator."""
    path = cache_path(cache, n, seed, profile, exclude, include)
    if path.exists():
        z = np.load(path, allow_pickle=False)
        shapes, flat = z["nat_shapes"], z["nat_flat"]
        ends = np.cumsum(shapes.prod(axis=1))
        native = [flat[e - int(np.prod(sh)):e].reshape(sh) for sh, e in
                  zip(shapes, ends, strict=True)]
        return ImageSet(z["x"], z["y"], z["kind"], z["heat"],
                        json.loads(str(z["families"])), z["mm"], native, z["dense"])
    s = build(n, seed, profile, exclude, include, progress)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    nat = s.native or []
    np.savez(tmp, x=s.x, y=s.y, kind=s.kind, heat=s.heat,
             dense=s.dense if s.dense is not None else np.zeros((0, DENSE_CELLS, DENSE_CELLS)),
             families=json.dumps(s.families), mm=s.mm_per_px,
             nat_shapes=np.array([a.shape for a in nat], dtype=np.int64).reshape(-1, 3),
             nat_flat=np.concatenate([a.ravel() for a in nat]) if nat else
             np.zeros(0, np.uint8))
    tmp.replace(path)
    return s


def cache_path(cache: Path, n: int, seed: int, profile: str, exclude: tuple[str, ...] = (),
               include: tuple[str, ...] = ()) -> Path:
    """Where :func:`cached` keeps a set: named by its parameters and the simulator's code."""
    code = hashlib.sha256()
    for p in _defining_files():
        code.update(p.read_bytes())
    key = hashlib.sha256(json.dumps([n, seed, profile, list(exclude), list(include), MIX,
                                     LOOKALIKE_RATE, list(PITCHES), "native-window", "dense48",
                                     code.hexdigest()]).encode()).hexdigest()[:16]
    return cache / f"xray_{profile}_{seed}_{n}_{key}.npz"
