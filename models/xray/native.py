"""Image features read at the X-ray machine's own pitch, before the image is resampled.

In: the uint8 (H, W, 3) pseudo-colour view of field-formats 2e at the machine's pitch
``mm_per_px`` (1.5 to 2.5 mm), cut to the parcel (``Prepared.native_window``). Out: a
float32 vector of :data:`NATIVE_NAMES`; areas in mm2, so the values do not depend on
the pitch.

Why: at the model's 3.5 mm the two strongest physical cues are averaged away. Gold
granules (1.5-7 mm), chain links (4 x 3 mm) and thin coins stop being black once a
pixel mixes them with their surroundings, and a chip module (10 x 9 mm, 35 um copper a
card) becomes a faint 3 x 3 pixel smudge. Here:

- **gold**: the near-black area (the beam does not get through) and what survives
  erosions of about 1.5, 3 and 5 mm (compact dense objects; the walls of cans and tins
  seen edge-on are thin lines and vanish), and the darkest levels in mm2;
- **card batches**: a chip module sits at a fixed place on an ID-1 card (ISO 7816-2:
  the contacts start 10.25 mm from the left edge and 19.23 mm from the top, so the
  module's centre is about 27 mm from the card's centre along its long side). A
  matched template looks for a chip-sized spot darker than its surroundings exactly
  there, inside a card-sized region of PVC (green) of even depth, in the four ways a
  card can lie (long side along or across the belt, chip at either end). In a stack
  the modules of all cards are aligned and their copper adds up, so the spot deepens
  with the count; chips of phones and circuit boards have no card of even PVC around
  them at that distance;
- **cash**: organic slabs of even depth at a note's footprint (155 x 77 mm) read at
  full resolution: the share of flat organic area inside the best note-sized window.

Large windows (card, note) are computed on a copy averaged to about 3 mm (exact area
means), chip-sized ones at the native pitch. Numpy only, vectorised: this runs on the
device, batch of one.
"""

from __future__ import annotations

import numpy as np

_CONTENT = 28 / 255
_HUE_GREEN = 70.0
_HUE_BLUE = 170.0

# ID-1 card and its contact module (simulators/depot/contents.py has the same numbers
# from ISO/IEC 7810 and 7816-2; a detector does not import the simulator)
_CARD_L, _CARD_W = 85.60, 53.98
_CHIP_DX = 10.25 + 5.4 - _CARD_L / 2      # module centre from card centre, long side
_NOTE_L, _NOTE_W = 155.0, 77.0
_COARSE_MM = 3.0

NATIVE_NAMES: tuple[str, ...] = (
    "n_black_mm2", "n_black_e1_mm2", "n_black_e2_mm2", "n_black_e3_mm2",
    "n_vblack_mm2", "n_black_e1_max_cell",
    "n_chip_spot_max", "n_chip_spots_mm2", "n_chip_spots_green_mm2",
    "n_card_chip_max", "n_card_chip_flat_max", "n_card_chip_mm2", "n_card_chip2_mm2",
    "n_card_chip_depth", "n_card_chip_green", "n_card_chip_spread",
    "n_card_green_max", "n_card_even_chip_max", "n_card_even_ratio_max",
    "n_card_even_chip_mm2", "n_blue_chip_spots_mm2", "n_card_blue_chip_max",
    "n_card_blue_ratio_max", "n_card_blue_chip_mm2", "n_card_blue_any_max",
    "n_note_flat_max", "n_note_flat_depth", "n_flat_org_mm2",
)


def _mean1d(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over a window of 2r+1 along ``axis``, clipped at the ends (mean of the part
    inside); running sums in float32 along one axis (row sums stay small)."""
    x = np.moveaxis(a, axis, 0)
    n = x.shape[0]
    c = np.empty((n + 1,) + x.shape[1:], dtype=np.float32)
    c[0] = 0
    np.cumsum(x, axis=0, dtype=np.float32, out=c[1:])
    out = np.empty(x.shape, dtype=np.float32)
    w = 2 * r + 1
    if n > w:
        out[r:n - r] = (c[w:] - c[:n + 1 - w]) * (1.0 / w)
        for i in list(range(min(r, n))) + list(range(max(n - r, r), n)):
            lo, hi = max(i - r, 0), min(i + r + 1, n)
            out[i] = (c[hi] - c[lo]) / (hi - lo)
    else:
        for i in range(n):
            lo, hi = max(i - r, 0), min(i + r + 1, n)
            out[i] = (c[hi] - c[lo]) / (hi - lo)
    return np.moveaxis(out, 0, axis)


def _box(a: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Mean over the (2ry+1) x (2rx+1) window centred on every pixel (clipped at edges)."""
    return _mean1d(_mean1d(a, rx, 1), ry, 0)


def _erode(m: np.ndarray, r: int) -> np.ndarray:
    """Binary erosion by a (2r+1) square: every pixel of the window is set."""
    if r <= 0 or not m.any():
        return m
    ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    sub = m[y0:y1, x0:x1].astype(np.float32)
    core = _box(sub, r, r) > 1 - 1e-4
    # outside the black pixels' bounding box (and the image) nothing is set, so a window
    # reaching past the box's edge is not all set
    core[:r] = False
    core[-r:] = False
    core[:, :r] = False
    core[:, -r:] = False
    out = np.zeros_like(m)
    out[y0:y1, x0:x1] = core
    return out


def _shift(a: np.ndarray, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """out[y, x] = a[y + dy, x + dx] (``fill`` outside)."""
    out = np.full_like(a, fill)
    h, w = a.shape
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy),
                                                                slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx),
                                                                slice(-dx, w))
    if ys.stop - ys.start > 0 and xs.stop - xs.start > 0:
        out[yd, xd] = a[ys, xs]
    return out


def _coarse(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks (the last partial blocks dropped)."""
    if k <= 1:
        return a.astype(np.float32)
    h, w = a.shape[0] // k * k, a.shape[1] // k * k
    out = np.zeros((h // k, w // k), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            out += a[i:h:k, j:w:k]
    out *= 1.0 / (k * k)
    return out


def _block_max(a: np.ndarray, k: int) -> np.ndarray:
    """Maximum over k x k blocks (the last partial blocks dropped)."""
    if k <= 1:
        return a.astype(np.float32)
    h, w = a.shape[0] // k * k, a.shape[1] // k * k
    out = a[0:h:k, 0:w:k].astype(np.float32)
    for i in range(k):
        for j in range(k):
            np.maximum(out, a[i:h:k, j:w:k], out=out)
    return out


def _r(mm: float, p: float) -> int:
    """Half-width in pixels of a window about ``mm`` wide at pitch ``p``."""
    return max(1, int(round(mm / p / 2)))


def _r_in(mm: float, p: float) -> int:
    """Half-width in pixels of the widest window no wider than ``mm`` at pitch ``p``."""
    return max(1, int((mm / p - 1) / 2))


def extract(image: np.ndarray, mm_per_px: float) -> np.ndarray:
    """:data:`NATIVE_NAMES` of one image at the machine's pitch (module doc).

    ``image`` uint8 (H, W, 3); an empty or tiny image gives zeros. ValueError for a
    non-positive pitch or a wrongly shaped image.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if not mm_per_px > 0:
        raise ValueError(f"mm_per_px must be positive, got {mm_per_px}")
    out = np.zeros(len(NATIVE_NAMES), dtype=np.float32)
    p = float(mm_per_px)
    k = max(1, int(round(_COARSE_MM / p)))
    if image.shape[0] < 4 * k or image.shape[1] < 4 * k:
        return out
    a_px = p * p
    r = image[..., 0].astype(np.int16)
    g = image[..., 1].astype(np.int16)
    b = image[..., 2].astype(np.int16)
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    content = (r + g + b) < 3 * (255 - 28)
    if not content.any():
        return out
    # the view's value channel is the optical depth: darker is thicker
    depth = -np.log(np.maximum(mx.astype(np.float32) * (1 / 255), 1e-3))
    black = content & (mx < 9)                     # v < 0.035
    vdark = mx < 23                                # v < 0.09
    coloured = content & ~vdark & ((mx - mn) * 100 > 8 * mx)
    # the hue's order of channels is its material class (the 2e palette: orange organic
    # r > g > b, green mixed / PVC g on top, blue metal b on top)
    green = coloured & (g >= r) & (g >= b)
    organic = coloured & (r > g)

    # gold: compact near-black objects
    e1 = _erode(black, _r(3.0, p))
    e2 = _erode(e1, _r(6.0, p) - _r(3.0, p))
    e3 = _erode(e2, _r(10.0, p) - _r(6.0, p))
    cell = max(1, int(round(30.0 / p)))
    e1_cells = _coarse(e1, cell) if min(e1.shape) >= cell else np.zeros((1, 1))
    out[0:6] = (black.sum() * a_px, e1.sum() * a_px, e2.sum() * a_px, e3.sum() * a_px,
                (content & (mx < 3)).sum() * a_px, float(e1_cells.max()))

    # chip-sized spots: a module-sized window darker than the four module-sized windows
    # next to it (an edge or a slab has a neighbour as dark as itself; a spot has none)
    r_chip = _r(10.0, p)
    m_chip = _box(depth, r_chip, r_chip)
    step = 2 * r_chip + 1
    nb = np.maximum(np.maximum(_shift(m_chip, step, 0, 9.0), _shift(m_chip, -step, 0, 9.0)),
                    np.maximum(_shift(m_chip, 0, step, 9.0), _shift(m_chip, 0, -step, 9.0)))
    chip = np.where(content, np.maximum(m_chip - nb, 0.0), 0.0)
    spots = chip > 0.03
    # a module's copper (Z 29) in PVC (Z ~14) also moves the hue towards blue: the spot
    # is bluer than all four neighbours too (a can's aluminium wall is not, Z 13)
    blue = b.astype(np.float32) / (g.astype(np.float32) + 8.0)
    m_blue = _box(blue, r_chip, r_chip)
    nb_blue = np.maximum(
        np.maximum(_shift(m_blue, step, 0, 9.0), _shift(m_blue, -step, 0, 9.0)),
        np.maximum(_shift(m_blue, 0, step, 9.0), _shift(m_blue, 0, -step, 9.0)))
    chip_b = np.where(m_blue - nb_blue > 0.04, chip, 0.0)
    # large windows at about 3 mm: card and note footprints
    dc = _coarse(depth, k)
    gc = _coarse(green, k)
    # PVC-like: green, or too dark to show a hue (a stack of 100+ cards)
    pc = _coarse(green | vdark, k)
    q = p * k
    green_near = _box(gc, _r(30.0, q), _r(30.0, q))
    # the spot's own maximum over its block: a 3 mm block average would dilute it
    chip_c = _block_max(chip, k)
    chip_bc = _block_max(chip_b, k)
    spots_g = _coarse(spots, k) * (green_near > 0.35)
    out[6:9] = (float(chip.max()), spots.sum() * a_px, float(spots_g.sum()) * q * q)

    # the card template: centre of a card-sized even PVC region with the module's spot
    # at its fixed offset, long side along (x) or across (y) the belt, chip at either end
    best = np.zeros_like(dc)
    best_flat = np.zeros_like(dc)
    depth_at = np.zeros_like(dc)
    green_at = np.zeros_like(dc)
    spread_at = np.zeros_like(dc)
    green_max = 0.0
    even_best = np.zeros_like(dc)
    even_ratio = np.zeros_like(dc)
    blue_best = np.zeros_like(dc)
    blue_ratio = np.zeros_like(dc)
    blue_any = np.zeros_like(dc)
    off = int(round(_CHIP_DX / q))
    d2 = dc * dc
    for ry, rx, dy, dx in ((_r_in(_CARD_W, q), _r_in(_CARD_L, q), 0, off),
                           (_r_in(_CARD_L, q), _r_in(_CARD_W, q), off, 0)):
        g_in = _box(gc, ry, rx)
        m = _box(dc, ry, rx)
        sd = np.sqrt(np.maximum(_box(d2, ry, rx) - m * m, 0.0))
        green_max = max(green_max, float(g_in.max()))
        # a card stack: PVC-like all over, of even depth but for its module (whose area
        # is 2-3 % of the card's: it adds about a tenth of the depth to the spread)
        pvc_in = _box(pc, ry, rx)
        even = (pvc_in > 0.85) & (sd < 0.35 * m + 0.08) & (m > 0.05)
        for sign in (1, -1):
            spot = _shift(chip_c, sign * dy, sign * dx)
            # the copper of n modules over n cards: the spot's depth over the card's
            # does not depend on n
            np.maximum(even_best, np.where(even, spot, 0.0), out=even_best)
            np.maximum(even_ratio, np.where(even, spot / (m + 0.1), 0.0), out=even_ratio)
            spot_b = _shift(chip_bc, sign * dy, sign * dx)
            np.maximum(blue_any, spot_b * pvc_in, out=blue_any)
            spot_b = np.where(even, spot_b, 0.0)
            np.maximum(blue_best, spot_b, out=blue_best)
            np.maximum(blue_ratio, spot_b / (m + 0.1), out=blue_ratio)
            score = spot * g_in
            better = score > best
            best = np.where(better, score, best)
            depth_at = np.where(better, m, depth_at)
            green_at = np.where(better, g_in, green_at)
            spread_at = np.where(better, sd, spread_at)
            best_flat = np.maximum(best_flat, score / (sd + 0.05))
    i = int(best.argmax())
    out[9:17] = (float(best.flat[i]), float(best_flat.max()),
                 float((best > 0.03).sum()) * q * q, float((best > 0.08).sum()) * q * q,
                 float(depth_at.flat[i]), float(green_at.flat[i]), float(spread_at.flat[i]),
                 green_max)
    out[17:20] = (float(even_best.max()), float(even_ratio.max()),
                  float((even_best > 0.05).sum()) * q * q)
    out[20:25] = (float((chip_b > 0.03).sum()) * a_px, float(blue_best.max()),
                  float(blue_ratio.max()), float((blue_best > 0.05).sum()) * q * q,
                  float(blue_any.max()))

    # cash: flat organic slabs (even depth over ~9 mm), the best note-sized window
    oc = _coarse(organic, k)
    m3 = _box(dc, 1, 1)
    sp3 = np.sqrt(np.maximum(_box(d2, 1, 1) - m3 * m3, 0.0))
    flat = ((oc > 0.95) & (sp3 < 0.03) & (dc > 0.12)).astype(np.float32)
    best_note = note_depth = 0.0
    for ry, rx in ((_r_in(_NOTE_W, q), _r_in(_NOTE_L, q)),
                   (_r_in(_NOTE_L, q), _r_in(_NOTE_W, q))):
        share = _box(flat, ry, rx)
        j = int(share.argmax())
        if float(share.flat[j]) > best_note:
            best_note = float(share.flat[j])
            note_depth = float(_box(flat * dc, ry, rx).flat[j]) / max(best_note, 1e-6)
    out[25:28] = (best_note, note_depth, float(flat.sum()) * q * q)
    return out
