"""Physics-based dual-energy X-ray rendering of a :class:`ParcelSpec` (field-formats 2e).

A line scanner's detector row spans the belt (image rows, y) and the belt moves the
parcel through the fan beam (image columns, x). For every pixel the simulator sums, per
material, the thickness the beam crosses (the parcel's parts projected from above), then
applies Beer-Lambert per energy, I/I0 = sum_e w_e exp(-sum_m mu_m(e) t_m), for the low
(front) and high (rear, filtered) detector channels, with the channels' spectral weights
so that thick objects harden the beam. Detector blur, Poisson noise on the counts, a
count floor (what no photon crosses saturates), uncorrected detector-gain streaks, dead
elements, source flicker and the belt seam are added per parcel.

The pseudo-colour view of field-formats 2e is made as a scanner does it: the ratio of
low to high attenuation, compared against calibration curves of reference materials
(water for organic, aluminium for light metal, steel for metal) at the same high-energy
attenuation, places each pixel on an effective-Z scale: organic (Z <= 10) orange, mixed
and light metal green, inorganic and dense metal blue; white is empty and darker is
thicker, so gold (Z 79) and thick steel saturate to near black. PVC (Z ~14) lands with
the light metals, PET, PC, paper and banknotes with the organics.

Nothing here knows about truth categories except :func:`render`, which also returns the
mask of threat pixels for localisation training; the image itself is physics only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from simulators.depot.contents import ParcelSpec, Part
from simulators.depot.materials import (
    HIGH_WEIGHTS,
    LOW_WEIGHTS,
    MATERIAL_NAMES,
    materials,
)

BELT_WIDTH_MM = 600.0

# Hues of the pseudo-colour view (RGB 0..1)
_ORANGE = np.array([1.00, 0.58, 0.12], dtype=np.float32)
_GREEN = np.array([0.25, 0.72, 0.22], dtype=np.float32)
_BLUE = np.array([0.16, 0.32, 0.92], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Rendering:
    """A rendered parcel: the RGB image, threat mask and where the box lies.

    ``image`` uint8 (H, W, 3); ``threat_mask`` bool (H, W), pixels covered by threat
    items; ``box_px`` (x0, y0, x1, y1) of the box's bounding rectangle in pixels;
    ``mm_per_px`` the pixel pitch.
    """
    image: np.ndarray
    threat_mask: np.ndarray
    box_px: tuple[int, int, int, int]
    mm_per_px: float


def render_parcel(spec: ParcelSpec, rng: np.random.Generator,
                  mm_per_px: float = 1.5) -> np.ndarray:
    """The pseudo-colour X-ray image of ``spec`` as uint8 (H, W, 3)."""
    return render(spec, rng, mm_per_px).image


@cache
def _mu_matrix() -> np.ndarray:
    """(n_materials, n_energies) linear attenuation in 1/mm, rows in MATERIAL_NAMES order."""
    mats = materials()
    return np.stack([mats[n].mu_per_mm() for n in MATERIAL_NAMES]).astype(np.float32)


_MAT_INDEX = {n: i for i, n in enumerate(MATERIAL_NAMES)}


def _coverage_1d(u: np.ndarray, half: float, p: float) -> np.ndarray:
    """Fraction of a pixel of width p centred at u covered by the interval [-half, half]."""
    return np.clip(np.minimum(half, u + p / 2) - np.maximum(-half, u - p / 2), 0.0, p) / p


def _smooth_noise(seed: int, shape: tuple[int, int], cells: int = 6) -> np.ndarray:
    """Smooth random field in [-1, 1] of ``shape``: a coarse grid upsampled bilinearly."""
    g = np.random.default_rng(seed).uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    h, w = shape
    yi = np.linspace(0, cells, h, dtype=np.float32)
    xi = np.linspace(0, cells, w, dtype=np.float32)
    y0 = np.minimum(yi.astype(int), cells - 1)
    x0 = np.minimum(xi.astype(int), cells - 1)
    fy = (yi - y0)[:, None]
    fx = (xi - x0)[None, :]
    a = g[y0][:, x0]
    b = g[y0][:, x0 + 1]
    c = g[y0 + 1][:, x0]
    d = g[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy)


def _rasterise(part: Part, cx: float, cy: float, angle: float, p: float,
               shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray] | None:
    """Thickness (mm) of one part over its pixel window, placed at (cx, cy) mm, rotated.

    Returns (rows, cols, thickness) or None when the part falls outside the image.
    Small parts are box-filtered exactly along their own axes, so a 0.1 mm coil or a
    12 mm chip module keeps its volume at 1.5 mm pixels.
    """
    h, w = shape
    r = 0.5 * math.hypot(part.lx, part.ly) + p
    x0, x1 = int(math.floor((cx - r) / p)), int(math.ceil((cx + r) / p)) + 1
    y0, y1 = int(math.floor((cy - r) / p)), int(math.ceil((cy + r) / p)) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5) * p - cx
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) * p - cy
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    u = c * xs[None, :] + s * ys[:, None]
    v = -s * xs[None, :] + c * ys[:, None]
    ax, ay = part.lx / 2, part.ly / 2
    shp = part.shape
    if shp == "rect":
        t = _coverage_1d(u, ax, p) * _coverage_1d(v, ay, p) * part.t
    elif shp in ("ellipse", "ring"):
        t = _ellipse_cov(u, v, ax, ay, p) * part.t
        if shp == "ring":
            ix, iy = ax - part.wall, ay - part.wall
            if ix > 0 and iy > 0:
                t = t - _ellipse_cov(u, v, ix, iy, p) * part.t
    elif shp == "frame":
        t = _coverage_1d(u, ax, p) * _coverage_1d(v, ay, p)
        ix, iy = ax - part.wall, ay - part.wall
        if ix > 0 and iy > 0:
            t = t - _coverage_1d(u, ix, p) * _coverage_1d(v, iy, p)
        t = t * part.t
    elif shp in ("rod", "tube"):
        rad = ay
        if rad < p:   # thinner than a pixel: a rect of the same volume
            t = _coverage_1d(u, ax, p) * _coverage_1d(v, rad, p) * (math.pi / 2 * rad)
        else:
            t = 2 * np.sqrt(np.clip(rad * rad - v * v, 0, None))
            if shp == "tube":
                ri = rad - part.wall
                if ri > 0:
                    t = t - 2 * np.sqrt(np.clip(ri * ri - v * v, 0, None))
            t = t * _coverage_1d(u, ax, p)
    else:
        raise ValueError(f"unknown shape {shp!r}")
    if part.texture:
        t = t * np.clip(1 + part.texture * _smooth_noise(part.tex_seed, t.shape), 0.2, None)
    return slice(y0, y1), slice(x0, x1), np.asarray(t, dtype=np.float32)


def _ellipse_cov(u: np.ndarray, v: np.ndarray, ax: float, ay: float, p: float) -> np.ndarray:
    """Approximate pixel coverage of an ellipse with semi-axes ax, ay (mm)."""
    if ax < p or ay < p:
        # below a pixel the shape is invisible; keep its area as a box of equal area
        k = math.sqrt(math.pi / 4)
        return _coverage_1d(u, ax * k, p) * _coverage_1d(v, ay * k, p)
    rn = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    return np.clip(0.5 + (1 - rn) * min(ax, ay) / p, 0.0, 1.0)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur along both image axes (the detector's point spread)."""
    if sigma <= 0.05:
        return img
    rad = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-rad, rad + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    pad = np.pad(img, ((rad, rad), (0, 0)), mode="edge")
    out = sum(k[i] * pad[i:i + img.shape[0]] for i in range(len(k)))
    pad = np.pad(out, ((0, 0), (rad, rad)), mode="edge")
    return sum(k[i] * pad[:, i:i + img.shape[1]] for i in range(len(k)))  # type: ignore[return-value]


@cache
def _calibration() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R = A_low / A_high as a function of A_high for water, aluminium and steel."""
    mu = _mu_matrix()
    lw = np.asarray(LOW_WEIGHTS, dtype=np.float64)
    hw = np.asarray(HIGH_WEIGHTS, dtype=np.float64)
    grid = np.linspace(0.0, 9.0, 181)
    curves = []
    for name in ("water", "aluminium", "steel"):
        m = mu[_MAT_INDEX[name]].astype(np.float64)
        t = np.geomspace(0.01, 400.0, 600)
        att = np.exp(-np.outer(t, m))
        al = -np.log(np.maximum(att @ lw, 1e-300))
        ah = -np.log(np.maximum(att @ hw, 1e-300))
        curves.append(np.interp(grid, ah, al / np.maximum(ah, 1e-9)))
    return grid, curves[0], curves[1], curves[2]


def colourise(a_low: np.ndarray, a_high: np.ndarray, a_max: float) -> np.ndarray:
    """Pseudo-colour uint8 (H, W, 3) from low/high attenuations (-ln I/I0).

    ``a_max`` is the attenuation at the count floor: where the low channel reaches it the
    ratio means nothing and the pixel is shown as dense (blue, near black).
    """
    grid, r_org, r_al, r_fe = _calibration()
    ratio = a_low / np.maximum(a_high, 1e-3)
    ro = np.interp(a_high, grid, r_org)
    ra = np.interp(a_high, grid, r_al)
    rf = np.interp(a_high, grid, r_fe)
    z = np.where(ratio < ra, (ratio - ro) / np.maximum(ra - ro, 1e-3),
                 1 + (ratio - ra) / np.maximum(rf - ra, 1e-3))
    z = np.where(a_low > a_max - 0.7, 2.5, z)
    z = np.clip(z, -0.5, 2.5).astype(np.float32)
    # smooth steps between the three hue classes (boundaries at z = 0.5 and 1.5)
    wg = np.clip((z - 0.35) / 0.3, 0, 1) * (1 - np.clip((z - 1.35) / 0.3, 0, 1))
    wb = np.clip((z - 1.35) / 0.3, 0, 1)
    wo = 1 - np.clip((z - 0.35) / 0.3, 0, 1)
    hue = (wo[..., None] * _ORANGE + wg[..., None] * _GREEN + wb[..., None] * _BLUE)
    ah = a_high[..., None]
    tint = 1 - np.exp(-np.maximum(ah, 0) / 0.12)
    rgb = (1 - tint) + tint * hue
    dark = np.exp(-1.05 * np.maximum(ah - 0.25, 0))
    rgb = rgb * dark
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def render(spec: ParcelSpec, rng: np.random.Generator, mm_per_px: float = 1.5) -> Rendering:
    """Render ``spec`` on the belt; see :class:`Rendering` for what comes out."""
    if not mm_per_px > 0:
        raise ValueError("mm_per_px must be positive")
    p = float(mm_per_px)
    length, width, _h = spec.size_mm
    margin = float(rng.uniform(60, 140))
    h = int(round(BELT_WIDTH_MM / p))
    w = int(round((length + 2 * margin) / p))
    box_angle = float(rng.uniform(-8, 8))
    slack = max((BELT_WIDTH_MM - width) / 2 - 20, 0)
    bx = margin + length / 2
    by = BELT_WIDTH_MM / 2 + float(rng.uniform(-slack, slack))
    ca, sa = math.cos(math.radians(box_angle)), math.sin(math.radians(box_angle))

    # one thickness plane per material actually present, allocated on first use
    planes: dict[int, np.ndarray] = {}
    mask = np.zeros((h, w), dtype=np.float32)
    for item in spec.items:
        threat = item.role == "threat"
        for part in item.parts:
            dx, dy = part.cx - length / 2, part.cy - width / 2
            cx = bx + ca * dx - sa * dy
            cy = by + sa * dx + ca * dy
            got = _rasterise(part, cx, cy, part.angle + box_angle, p, (h, w))
            if got is None:
                continue
            rows, cols, t = got
            mi = _MAT_INDEX[part.material]
            plane = planes.get(mi)
            if plane is None:
                plane = planes[mi] = np.zeros((h, w), dtype=np.float32)
            plane[rows, cols] += t
            if threat:
                mask[rows, cols] = np.maximum(mask[rows, cols], t > 0.05 * max(part.t, 0.05))

    # belt seam: a band of belt rubber across the belt
    if rng.random() < 0.2:
        x = int(rng.integers(0, w))
        seam = planes.setdefault(_MAT_INDEX["rubber"], np.zeros((h, w), dtype=np.float32))
        seam[:, x:x + int(rng.integers(4, 16))] += float(rng.uniform(0.5, 2.0))

    used = sorted(planes)
    t_low = np.ones((h, w), dtype=np.float32)
    t_high = np.ones((h, w), dtype=np.float32)
    if used:
        mu = _mu_matrix()[used]                                    # (m, E)
        stack = np.stack([planes[i] for i in used]).reshape(len(used), -1)
        att = mu.T @ stack                                         # (E, H*W) optical depth
        np.negative(att, out=att)
        np.exp(att, out=att)
        t_low = (np.asarray(LOW_WEIGHTS, dtype=np.float32) @ att).reshape(h, w)
        t_high = (np.asarray(HIGH_WEIGHTS, dtype=np.float32) @ att).reshape(h, w)

    sigma = float(rng.uniform(0.45, 1.0))
    t_low, t_high = _blur(t_low, sigma), _blur(t_high, sigma)

    i0_high = float(rng.uniform(2500, 9000))
    i0_low = i0_high * float(rng.uniform(0.45, 0.75))
    gain = 1 + rng.normal(0, float(rng.uniform(0.002, 0.01)), (h, 1)).astype(np.float32)
    if rng.random() < 0.3:   # a weak or dead detector element, badly corrected
        for _ in range(int(rng.integers(1, 3))):
            gain[int(rng.integers(0, h))] *= float(rng.uniform(0.3, 0.9))
    flicker = np.ones((1, w), dtype=np.float32)
    if rng.random() < 0.3:   # source output wobbles for a few lines
        for _ in range(int(rng.integers(1, 5))):
            x = int(rng.integers(0, w))
            flicker[0, x:x + int(rng.integers(1, 4))] *= float(rng.uniform(0.95, 1.05))
    out = []
    for t, i0 in ((t_low, i0_low), (t_high, i0_high)):
        lam = i0 * t * gain * flicker
        counts = lam + np.sqrt(lam) * rng.standard_normal(lam.shape, dtype=np.float32)
        counts += rng.normal(0, 2.0, lam.shape).astype(np.float32)  # electronics noise
        counts = np.maximum(counts, 1.0)
        out.append(-np.log(np.minimum(counts / i0, 1.0)))
    a_low, a_high = out
    image = colourise(a_low, a_high, float(math.log(i0_low)))

    corners = [(bx + ca * sx - sa * sy, by + sa * sx + ca * sy)
               for sx in (-length / 2, length / 2) for sy in (-width / 2, width / 2)]
    box_px = (int(min(c[0] for c in corners) / p), int(min(c[1] for c in corners) / p),
              int(math.ceil(max(c[0] for c in corners) / p)),
              int(math.ceil(max(c[1] for c in corners) / p)))
    return Rendering(image, mask > 0.5, box_px, p)


