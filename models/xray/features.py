"""Explicit image features of a parcel's X-ray view, computed without a learned model.

In: the model input of :mod:`models.xray.preprocess` (``1 - rgb/255`` at 3.5 mm per
pixel, float32 (3, S, S)). Out: a float32 vector of :data:`FEATURE_NAMES` and three
evidence maps (card batch, gold, cash) on the model's 12 x 12 grid.

The dual-energy view encodes two physical readings per pixel, and they are read back
from the colour the way the 2e format defines it (no calibration table of one machine):

- the **material class** from the hue: the view tints organic matter (effective Z
  <= 10) orange, mixed and light metal green, inorganic and dense metal blue, and a hue
  is unchanged by how much white is mixed in (thin objects) or by how dark the pixel
  is (thick ones), so the HSV hue angle is an effective-Z coordinate;
- the **optical depth** from the brightness: darker is thicker, near black is a pixel
  the beam does not cross (gold and lead at a few mm; thick steel gets close).

From those, per category, the cues an inspector uses:

- gold: compact near-black blobs (what survives an erosion of the near-black mask: the
  walls of cans and tins seen edge-on are thin rings and vanish) and their size;
- card batches: PVC is green; chip modules are small spots darker than the card
  around them (a 10 x 9 mm module is about 3 x 3 pixels), so the count of such spots
  inside green regions, and green area at stack-like depths;
- cash: organic slabs of uniform depth (banknote paper, a bundle of 100 is ~1 cm):
  the organic area by depth band, how uniform the depth is locally (folded clothes are
  textured, bundles are flat) and the hue of organic pixels (banknote paper has no
  mineral filler, office paper and books have 10-25 %: their hue leans towards green).

Numpy only: this runs on the device, batch of one, a few milliseconds.
"""

from __future__ import annotations

import numpy as np

HEAT_CELLS = 12

# hue angles (degrees) separating the view's three material classes
_HUE_GREEN = 70.0
_HUE_BLUE = 170.0
_CONTENT = 28 / 255          # 1 - mean rgb above this: content, not belt
_DEPTH_BANDS = (0.15, 0.35, 0.6, 1.0, 1.6, 2.4, 3.5)


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1) x (2r+1) window (edges padded by reflection), via cumsums."""
    p = np.pad(a, r, mode="edge").astype(np.float64)
    c = p.cumsum(0).cumsum(1)
    c = np.pad(c, ((1, 0), (1, 0)))
    k = 2 * r + 1
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return (s / (k * k)).astype(np.float32)


def _erode(m: np.ndarray) -> np.ndarray:
    """3 x 3 binary erosion."""
    p = np.pad(m, 1, mode="constant", constant_values=False)
    out = np.ones_like(m)
    h, w = m.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out &= p[dy:dy + h, dx:dx + w]
    return out


def hsv(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value of the view, from the model input."""
    rgb = 1.0 - x
    r, g, b = rgb[0], rgb[1], rgb[2]
    mx = rgb.max(axis=0)
    mn = rgb.min(axis=0)
    d = mx - mn
    safe = np.where(d > 1e-6, d, 1.0)
    h = np.where(mx == r, ((g - b) / safe) % 6.0,
                 np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    h = np.where(d > 1e-6, h, 0.0)
    s = np.where(mx > 1e-6, d / np.maximum(mx, 1e-6), 0.0)
    return h.astype(np.float32), s.astype(np.float32), mx.astype(np.float32)


def _cells(a: np.ndarray) -> np.ndarray:
    n = a.shape[0] // HEAT_CELLS
    return a[:n * HEAT_CELLS, :n * HEAT_CELLS].reshape(
        HEAT_CELLS, n, HEAT_CELLS, n).mean(axis=(1, 3))


# footprints of the objects sought, in model pixels (3.5 mm): an RMB 100 note and an
# ID-1 card, with a frame of 3 pixels around them for the edge contrast
_NOTE_PX = (22, 44)
_CARD_PX = (15, 24)
_RING = 3


def _integral(a: np.ndarray) -> np.ndarray:
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.float64)
    c[1:, 1:] = a.astype(np.float64).cumsum(0).cumsum(1)
    return c


def _win_sum(c: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum over every h x w window (top-left anchored), shape (H-h+1, W-w+1)."""
    return c[h:, w:] - c[:-h, w:] - c[h:, :-w] + c[:-h, :-w]


def _slab(depth: np.ndarray, hw: tuple[int, int]) -> tuple[float, float, float]:
    """Matched filter for a flat slab of footprint hw (both orientations): the best
    (inside mean - frame mean) depth step, the same divided by the inside spread, and
    the number of windows with a clear step on a uniform inside."""
    best = best_u = 0.0
    count = 0.0
    c1, c2 = _integral(depth), _integral(depth * depth)
    for h, w in (hw, hw[::-1]):
        H, W = h + 2 * _RING, w + 2 * _RING
        if H > depth.shape[0] or W > depth.shape[1]:
            continue
        s_in = _win_sum(c1, h, w)[_RING:, _RING:]
        q_in = _win_sum(c2, h, w)[_RING:, _RING:]
        s_out = _win_sum(c1, H, W)
        n = min(s_in.shape[0], s_out.shape[0]), min(s_in.shape[1], s_out.shape[1])
        s_in, q_in, s_out = s_in[:n[0], :n[1]], q_in[:n[0], :n[1]], s_out[:n[0], :n[1]]
        a_in, a_out = h * w, H * W - h * w
        m_in = s_in / a_in
        m_out = (s_out - s_in) / a_out
        sd = np.sqrt(np.maximum(q_in / a_in - m_in * m_in, 0.0))
        step = m_in - m_out
        u = step / (sd + 0.02)
        best = max(best, float(step.max()))
        best_u = max(best_u, float(u.max()))
        count += float(((step > 0.08) & (u > 2.0)).sum())
    return best, best_u, count


FEATURE_NAMES: tuple[str, ...] = (
    "content_px", "organic_px", "green_px", "blue_px",
    "black_px", "black_core_px", "black_core2_px", "black_core_max_cell",
    "vdark_px", "vdark_core_px",
    *(f"organic_depth_{i}" for i in range(len(_DEPTH_BANDS))),
    *(f"green_depth_{i}" for i in range(len(_DEPTH_BANDS))),
    "organic_flat_px", "organic_flat_thick_px", "organic_flat_max_cell",
    "organic_hue_mean", "organic_hue_thick_mean", "organic_hue_p10", "organic_hue_p90",
    "green_flat_px", "green_hue_mean",
    "spots_green_px", "spots_green2_px", "spots_any_px", "spots_green_max_cell",
    "spots_in_green_cells",
    "blue_spots_px", "depth_mean", "depth_p90",
    "note_slab_step", "note_slab_uniform", "note_slab_count",
    "card_slab_step", "card_slab_uniform", "card_slab_count",
    "card_slab_any_step", "card_slab_any_uniform", "card_slab_any_count",
)


def extract(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 (len(FEATURE_NAMES),), evidence maps float32 (3, 12, 12))."""
    h, s, v = hsv(x)
    content = x.mean(axis=0) > _CONTENT
    depth = -np.log(np.maximum(v, 1e-3))
    black = content & (v < 0.035)
    vdark = content & (v < 0.09)
    coloured = content & ~vdark & (s > 0.08)
    organic = coloured & (h < _HUE_GREEN)
    green = coloured & (h >= _HUE_GREEN) & (h < _HUE_BLUE)
    blue = coloured & (h >= _HUE_BLUE)
    core = _erode(black)
    core2 = _erode(core)
    vcore = _erode(vdark)

    # local depth uniformity: a flat slab has a small local spread of depth
    m5 = _box_mean(depth, 2)
    sq5 = _box_mean(depth * depth, 2)
    spread = np.sqrt(np.maximum(sq5 - m5 * m5, 0.0))
    org_share = _box_mean(organic.astype(np.float32), 2)
    flat_org = organic & (spread < 0.03) & (org_share > 0.95) & (depth > 0.12)
    flat_org_thick = flat_org & (depth > 0.4)
    grn_share = _box_mean(green.astype(np.float32), 2)
    flat_grn = green & (spread < 0.04) & (grn_share > 0.9)

    # small dark spots: darker than their 9 x 9 surroundings, not than their 3 x 3
    d3 = _box_mean(depth, 1)
    d9 = _box_mean(depth, 4)
    contrast = d3 - d9
    spots = content & (contrast > 0.06) & (contrast < 1.5)
    green9 = _box_mean(green.astype(np.float32), 4)
    spots_g = spots & (green9 > 0.35)
    spots_g2 = content & (contrast > 0.12) & (green9 > 0.35)
    blue_spots = spots & blue

    def band_counts(mask: np.ndarray) -> list[float]:
        dd = depth[mask]
        edges = (*_DEPTH_BANDS, np.inf)
        return [float(((dd >= a) & (dd < b)).sum()) for a, b in zip(edges[:-1], edges[1:],
                                                                    strict=True)]

    hue_o = h[organic]
    thick_o = organic & (depth > 0.4)
    fe = [
        float(content.sum()), float(organic.sum()), float(green.sum()), float(blue.sum()),
        float(black.sum()), float(core.sum()), float(core2.sum()),
        float(_cells(core.astype(np.float32)).max()),
        float(vdark.sum()), float(vcore.sum()),
        *band_counts(organic), *band_counts(green),
        float(flat_org.sum()), float(flat_org_thick.sum()),
        float(_cells(flat_org.astype(np.float32)).max()),
        float(hue_o.mean()) if hue_o.size else 0.0,
        float(h[thick_o].mean()) if thick_o.any() else 0.0,
        float(np.percentile(hue_o, 10)) if hue_o.size else 0.0,
        float(np.percentile(hue_o, 90)) if hue_o.size else 0.0,
        float(flat_grn.sum()), float(h[green].mean()) if green.any() else 0.0,
        float(spots_g.sum()), float(spots_g2.sum()), float(spots.sum()),
        float(_cells(spots_g.astype(np.float32)).max()),
        float((_cells(spots_g.astype(np.float32)) > 0.01).sum()),
        float(blue_spots.sum()),
        float(depth[content].mean()) if content.any() else 0.0,
        float(np.percentile(depth[content], 90)) if content.any() else 0.0,
        *_slab(np.where(organic, depth, 0.0), _NOTE_PX),
        *_slab(np.where(green, depth, 0.0), _CARD_PX),
        *_slab(np.where(content & ~vdark, depth, 0.0), _CARD_PX),
    ]
    maps = np.stack([_cells((spots_g | flat_grn).astype(np.float32)),
                     _cells(core.astype(np.float32)),
                     _cells(flat_org.astype(np.float32))]).astype(np.float32)
    return np.asarray(fe, dtype=np.float32), maps
