"""Run the X-ray image model on one parcel image and read its outputs.

In: the uint8 (H, W, 3) pseudo-colour image of field-formats 2e and its pitch. Out: an
:class:`XrayScores` with the model's per-category scores (card batch, gold, cash), the
card-kind probabilities, the 12 x 12 evidence heat maps, for each category the image
rectangle of its hottest region (the crop kept as evidence), and a few explicit image
features computed without the model (share of saturated near-black pixels, of organic,
green and blue pixels) that the decision rules quote in their evidence.

A two-part model (model 1.1: its ONNX file has a second input ``features``) also gets
the explicit features of :mod:`models.xray.features` (numpy, computed here); its heat
maps are then the mean of the CNN's and the explicit evidence maps (compact near-black
blobs, chip-like spots in PVC, flat organic slabs), each scaled to its maximum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from models.loader import LoadedModel
from models.xray.features import FEATURE_NAMES, extract
from models.xray.native import NATIVE_NAMES
from models.xray.native import extract as extract_native
from models.xray.preprocess import INPUT_PX, Prepared, prepare

LABELS = ("card_batch", "gold", "cash")
KINDS = ("sim", "iot", "bank")


@dataclass(frozen=True, slots=True)
class XrayScores:
    """What the image says. ``regions`` are (x0, y0, x1, y1) pixels of the source image."""
    scores: dict[str, float]
    kind: dict[str, float]
    heat: np.ndarray                  # float32 (3, 12, 12)
    regions: dict[str, tuple[int, int, int, int]]
    content_px: int                   # content pixels at the model's 3.5 mm pitch
    dense_share: float                # near-black (saturated) share of the content
    organic_share: float
    green_share: float
    blue_share: float
    model_ms: float
    features: dict[str, float] | None = None   # explicit features (two-part model)


def _class_shares(prep: Prepared) -> tuple[float, float, float, float]:
    """Shares of content pixels that are near black, orange, green and blue."""
    inv = prep.x                      # (3, S, S), 1 - rgb/255
    content = inv.mean(axis=0) > 28 / 255
    n = int(content.sum())
    if n == 0:
        return 0.0, 0.0, 0.0, 0.0
    rgb = 1.0 - inv[:, content]       # (3, n)
    r, g, b = rgb
    dense = rgb.max(axis=0) < 0.16
    organic = (r > g) & (g > b) & ~dense
    green = (g >= r) & (g >= b) & ~dense
    blue = (b > r) & (b > g) & ~dense
    return (float(dense.mean()), float(organic.mean()), float(green.mean()),
            float(blue.mean()))


class XrayScorer:
    """Holds the loaded image model; :meth:`score` runs it on one image (batch 1)."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        outs = model.output_names
        self._order = [outs.index(n) for n in ("scores", "heatmap", "kind")]
        inputs = {i.name: i.shape for i in model.session.get_inputs()}
        shape = inputs.get("image") or model.session.get_inputs()[0].shape
        from edge.errors import ModelError
        if len(shape) != 4 or shape[1:] != [3, INPUT_PX, INPUT_PX]:
            raise ModelError(f"{model.info.name}: input shape {shape} is not "
                             f"(n, 3, {INPUT_PX}, {INPUT_PX})")
        self._image_input = "image" if "image" in inputs else model.input_name
        self.two_part = "features" in inputs
        self.native = False
        if self.two_part:
            want = list(model.contract.get("features", []))
            # model 1.1 reads the 3.5 mm features, 1.2 also those at the machine's pitch
            self.native = want == list(FEATURE_NAMES + NATIVE_NAMES)
            if want != list(FEATURE_NAMES) and not self.native:
                raise ModelError(f"{model.info.name}: its features ({len(want)}) are not "
                                 f"the ones models/xray/features.py and native.py compute "
                                 f"({len(FEATURE_NAMES)} + {len(NATIVE_NAMES)})")

    def score(self, pixels: np.ndarray, mm_per_px: float) -> XrayScores:
        """Scores for one image; ValueError for an image the model cannot take."""
        prep = prepare(pixels, mm_per_px)
        t0 = time.perf_counter()
        feeds = {self._image_input: prep.x[None]}
        named: dict[str, float] | None = None
        maps = None
        if self.two_part:
            fe, maps = extract(prep.x)
            names = FEATURE_NAMES
            if self.native:
                x0, y0, x1, y1 = prep.native_window()
                fe = np.concatenate([fe, extract_native(pixels[y0:y1, x0:x1], mm_per_px)])
                names = FEATURE_NAMES + NATIVE_NAMES
            feeds["features"] = fe[None]
            named = {n: float(v) for n, v in zip(names, fe, strict=True)}
        outs = self.model.session.run(None, feeds)
        model_ms = (time.perf_counter() - t0) * 1000
        scores_a, heat_a, kind_a = (np.asarray(outs[i]) for i in self._order)
        heat = heat_a[0].astype(np.float32)
        if maps is not None:
            def unit(a: np.ndarray) -> np.ndarray:
                top = a.max(axis=(1, 2), keepdims=True)
                return a / np.maximum(top, 1e-6)
            heat = (0.5 * unit(heat) + 0.5 * unit(maps)).astype(np.float32)
        cells = heat.shape[-1]
        k = INPUT_PX / cells
        regions: dict[str, tuple[int, int, int, int]] = {}
        for j, lab in enumerate(LABELS):
            m = heat[j]
            peak = float(m.max())
            rows, cols = np.nonzero(m >= max(peak * 0.5, 1e-6))
            x0, y0, x1, y1 = prep.to_source(rows.min() * k, cols.min() * k,
                                            (rows.max() + 1) * k, (cols.max() + 1) * k)
            h, w = pixels.shape[:2]
            regions[lab] = (max(x0, 0), max(y0, 0), min(x1, w), min(y1, h))
        dense, organic, green, blue = _class_shares(prep)
        return XrayScores({lab: float(scores_a[0, j]) for j, lab in enumerate(LABELS)},
                          {kd: float(kind_a[0, j]) for j, kd in enumerate(KINDS)},
                          heat, regions, prep.content_px, dense, organic, green, blue,
                          model_ms, named)
