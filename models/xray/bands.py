"""Chip-module bands: card batches whose modules line up into a strip (native pitch).

In: the uint8 (H, W, 3) pseudo-colour view of field-formats 2e at the machine's pitch
``mm_per_px``, cut to the parcel (``Prepared.native_window``), as :mod:`native` takes it.
Out: a float32 vector of :data:`BAND_NAMES`; lengths in mm, areas in mm2.

Why: the module-in-card template of :mod:`native` looks for a chip-sized *spot* darker
than all four neighbours. Cards stood on edge in a row (a card box seen from above) and
shingled rows give no spot: their modules line up.

- **On edge** the beam runs through each card's height, so every module's copper plate
  (10-13 mm wide along the card, 35-70 um thick, 9-12 mm high) is crossed along its
  height: the stack is a slab of even depth (54 mm of PVC, or ABS / PC) with one band
  10-13 mm wide across it, darker than the slab on both sides, as long as the stack is
  deep (20 cards: 17 mm), at ISO 7816-2's place: its centre about 16 mm from one end of
  the card's 85.6 mm, the slab ending about 10 mm beyond the band on that side and
  running on for about 60 mm on the other.
- **Shingled** (each card shifted along the row by a few mm) the modules overlap into a
  band along the row, at the card's mid-height, with card body on both sides.
- A module seen in a flat stack is a short band too.

Look-alikes: hotel key cards carry an antenna coil whose runs are narrow lines (0.8-3 mm),
not a 10 mm band, near both ends; plain PVC cards have no band; two organic items
overlapping by about a centimetre make a band of doubled depth but no change of
material, so the band's hue is read too (copper moves an orange ABS or PC body's hue to
green, and a green PVC body's towards blue).

The cue, for both image axes: the depth (``-ln`` of the brightness, as in :mod:`native`)
is averaged along the band's direction over ``_ALONG_MM``, then a centre window of
``_BAND_MM`` is compared with side windows on both sides; the band counts where it is
deeper than both sides, both sides are content, and it is not a narrow line (the centre
third is not much deeper than the whole band). Numpy only (running sums), batch of one.
"""

from __future__ import annotations

import numpy as np

from models.xray.native import _coarse, _mean1d, _shift

_BAND_MM = 9.0        # centre window (a module is 10-13 mm wide)
_SIDE_MM = 6.0        # side windows, each
_GAP_MM = 1.5         # between the centre window and a side window
_NARROW_MM = 3.0      # the centre third: a coil run is narrower than this
_WORK_MM = 2.6         # working pitch: 1.5 mm images read in 2 x 2 blocks
_ANGLES = (0.0, 45.0)   # with both axes: bands at every 45 degrees (+-22.5)
_KEEP_MM = 4.0         # the band keeps its depth this far along it, both ways
_ALONG_MM = 9.0       # averaged along the band (20 cards on edge: 17 mm)
# ISO 7816-2: module centre 10.25 + ~5.4 mm from the card's end; the card is 85.6 long
_CHIP_FROM_END = 10.25 + 5.4
_CARD_L = 85.60

BAND_NAMES: tuple[str, ...] = (
    "b_band_max", "b_band_ratio_max", "b_band_mm2",
    "b_band_hue_max", "b_band_hue_mm2", "b_iso_max", "b_iso_ratio_max", "b_iso_mm2",
    "b_iso_hue_max", "b_iso_len_mm",
)


def _px(mm: float, p: float) -> int:
    return max(1, int(round(mm / p)))


def _half(mm: float, p: float) -> int:
    """Half-width r of a (2r+1) window about ``mm`` wide."""
    return max(0, int(round((mm / p - 1) / 2)))


def _rotate(maps: np.ndarray, deg: float) -> np.ndarray:
    """``maps`` (k, H, W) turned by ``deg`` about their centre onto a canvas that holds
    all of them (bilinear; 0 outside): items lie at any angle, the band windows run along
    the axes."""
    if deg == 0:
        return maps
    _k, h, w = maps.shape
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    ho = int(np.ceil(abs(h * c) + abs(w * s)))
    wo = int(np.ceil(abs(w * c) + abs(h * s)))
    yo = np.arange(ho, dtype=np.float32)[:, None] - (ho - 1) / 2
    xo = np.arange(wo, dtype=np.float32)[None, :] - (wo - 1) / 2
    ys = c * yo - s * xo + (h - 1) / 2
    xs = s * yo + c * xo + (w - 1) / 2
    y0 = np.floor(ys)
    x0 = np.floor(xs)
    fy, fx = (ys - y0)[None], (xs - x0)[None]
    pad = np.zeros((maps.shape[0], h + 2, w + 2), dtype=np.float32)
    pad[:, 1:-1, 1:-1] = maps
    # out of the source: index the zero border
    iy = np.clip(y0.astype(np.int64) + 1, 0, h)
    ix = np.clip(x0.astype(np.int64) + 1, 0, w)
    outside = (ys <= -1) | (ys >= h) | (xs <= -1) | (xs >= w)
    iy[outside] = 0
    ix[outside] = 0
    flat = pad.reshape(pad.shape[0], -1)
    i00 = iy * (w + 2) + ix
    v00, v10 = flat[:, i00], flat[:, i00 + (w + 2)]
    v01, v11 = flat[:, i00 + 1], flat[:, i00 + w + 3]
    top = v00 + (v01 - v00) * fx
    bot = v10 + (v11 - v10) * fx
    return (top + (bot - top) * fy).astype(np.float32)


def _longest_run(m: np.ndarray, axis: int) -> int:
    """Longest run of set pixels along ``axis`` anywhere in ``m``."""
    if not m.any():
        return 0
    x = np.moveaxis(m, axis, 0)
    idx = np.arange(x.shape[0])[:, None]
    last_gap = np.maximum.accumulate(np.where(x, -1, idx), axis=0)
    return int((idx - last_gap).max())


def extract(image: np.ndarray, mm_per_px: float) -> np.ndarray:
    """:data:`BAND_NAMES` of one image at the machine's pitch (module doc); zeros for an
    empty or tiny image; ValueError for a wrongly shaped image or a non-positive pitch."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if not mm_per_px > 0:
        raise ValueError(f"mm_per_px must be positive, got {mm_per_px}")
    out = np.zeros(len(BAND_NAMES), dtype=np.float32)
    p = float(mm_per_px)
    if min(image.shape[:2]) < _px(40.0, p):
        return out
    r = image[..., 0].astype(np.float32)
    g = image[..., 1].astype(np.float32)
    b = image[..., 2].astype(np.float32)
    mx = np.maximum(np.maximum(r, g), b)
    content = ((r + g + b) < 3 * (255 - 28)).astype(np.float32)
    depth = -np.log(np.maximum(mx * (1 / 255), 1e-3))
    # material coordinate: red share of the brightest channel, 1 organic (orange),
    # ~0.35 green (mixed / PVC), ~0.17 blue (metal); only where the pixel has a colour
    org = np.where(mx > 12, r / np.maximum(mx, 1.0), 0.2)
    # a band is 10 mm wide: read it at 2.5-3 mm (exact block means), a quarter of the work
    k = max(1, int(round(_WORK_MM / p)))
    if k > 1:
        depth, org, content = (_coarse(a, k) for a in (depth, org, content))
        p *= k
    best = dict.fromkeys(BAND_NAMES, 0.0)
    areas = {"b_band_mm2": 0.0, "b_band_hue_mm2": 0.0, "b_iso_mm2": 0.0}
    maps = np.stack([depth, org, content]).astype(np.float32)
    for deg in _ANGLES:
        d_r, o_r, c_r = _rotate(maps, deg)
        _one_angle(d_r, o_r, c_r, p, best, areas)
    for n, v in areas.items():
        best[n] = v * p * p
    for i, n in enumerate(BAND_NAMES):
        out[i] = best[n]
    return out


def _one_angle(depth: np.ndarray, org: np.ndarray, content: np.ndarray, p: float,
               best: dict[str, float], areas: dict[str, float]) -> None:
    """The band cues at one turn of the maps, into ``best`` (maxima) and ``areas``
    (pixels, the largest over the turns)."""
    r_c = _half(_BAND_MM, p)
    r_s = _half(_SIDE_MM, p)
    r_n = _half(_NARROW_MM, p)
    r_a = _half(_ALONG_MM, p)
    off_mm = 0.5 * _BAND_MM + _GAP_MM + 0.5 * _SIDE_MM   # centre to a side window's centre
    band_any = np.zeros(depth.shape, dtype=bool)
    hue_any = np.zeros(depth.shape, dtype=bool)
    iso_any = np.zeros(depth.shape, dtype=bool)
    for along in (0, 1):          # the band runs along image axis ``along``
        across = 1 - along
        d_a = _mean1d(depth, r_a, along)
        o_a = _mean1d(org, r_a, along)
        c_a = _mean1d(content, r_a, along)
        cen = _mean1d(d_a, r_c, across)
        nar = _mean1d(d_a, r_n, across)
        sid = _mean1d(d_a, r_s, across)
        o_cen = _mean1d(o_a, r_c, across)
        o_sid = _mean1d(o_a, r_s, across)
        c_sid = _mean1d(c_a, r_s, across)

        def at(a: np.ndarray, mm: float, across: int = across) -> np.ndarray:
            k = int(round(mm / p))
            return _shift(a, k, 0, 0.0) if across == 0 else _shift(a, 0, k, 0.0)

        s_lo, s_hi = at(sid, -off_mm), at(sid, off_mm)
        side = np.maximum(s_lo, s_hi)
        contrast = cen - side
        # a band of copper over a slab: deeper than both sides, but not a metal part (a
        # card module's copper adds at most about 1 mm of copper: under 0.8 of depth),
        # not black, both sides content, and no narrow line inside it (a coil run)
        ok = ((at(c_sid, -off_mm) > 0.9) & (at(c_sid, off_mm) > 0.9)
              & (np.minimum(s_lo, s_hi) > 0.05) & (cen < 3.0) & (contrast < 0.8)
              & (nar - cen < 0.5 * np.maximum(contrast, 0.0) + 0.02))
        band = np.where(ok, np.maximum(contrast, 0.0), 0.0)
        # a band keeps its depth along its own direction; the corner of a slab seen at
        # an angle (a wedge, as deep as a band where it is as wide) does not
        k_al = max(1, int(round(_KEEP_MM / p)))
        fwd = _shift(band, k_al, 0) if along == 0 else _shift(band, 0, k_al)
        bwd = _shift(band, -k_al, 0) if along == 0 else _shift(band, 0, -k_al)
        band = np.where(np.minimum(fwd, bwd) >= 0.6 * band, band, 0.0)
        ratio = band / (side + 0.1)
        # the band's material moves away from organic against both sides
        hue = np.minimum(at(o_sid, -off_mm), at(o_sid, off_mm)) - o_cen
        band_h = np.where(hue > 0.05, band, 0.0)
        # the card around the band, both ways it lies: on edge the band is 15.65 mm from
        # the card's near end and 70 mm from its far end; in a shingled row (the band along
        # the row) about 24 and 30 mm from the row's two long edges. Inside the card the
        # slab keeps the sides' depth; just past both ends it is well below it.
        band = np.ascontiguousarray(band)
        iso = np.zeros(band.shape, dtype=np.float32)
        lvl = np.ascontiguousarray(0.5 * (s_lo + s_hi))
        # only where there is a band (a few per cent of the pixels): the template there
        cand = np.flatnonzero((band > 0.03).ravel())
        if cand.size:
            n_al, n_ac = sid.shape[along], sid.shape[across]
            ci, cj = np.divmod(cand, sid.shape[1])
            pos = cj if across == 1 else ci        # coordinate across the band
            lv = lvl.ravel()[cand]
            hit = np.zeros(cand.size, dtype=bool)

            def side_at(mm: float, pos: np.ndarray = pos, ci: np.ndarray = ci,
                        cj: np.ndarray = cj, sid: np.ndarray = sid, n_ac: int = n_ac,
                        across: int = across) -> np.ndarray:
                k = int(round(mm / p))
                q = np.clip(pos + k, 0, n_ac - 1)
                v = sid[ci, q] if across == 1 else sid[q, cj]
                return np.where((pos + k >= 0) & (pos + k < n_ac), v, 0.0)

            del n_al
            for e1, e2 in ((_CHIP_FROM_END, _CARD_L - _CHIP_FROM_END), (24.0, 30.0)):
                for sign in (1, -1):
                    fit = np.ones(cand.size, dtype=bool)
                    for mm in np.arange(off_mm + _SIDE_MM, e2 - 0.5 * _SIDE_MM - 1.0,
                                        _SIDE_MM):
                        fit &= np.abs(side_at(sign * mm) - lv) < 0.25 * lv + 0.03
                    o1 = side_at(-sign * (e1 + 0.5 * _SIDE_MM + 2.0))
                    o2 = side_at(sign * (e2 + 0.5 * _SIDE_MM + 2.0))
                    fit &= (lv - np.maximum(o1, o2)) > 0.3 * lv
                    hit |= fit
            iso.flat[cand[hit]] = band.flat[cand[hit]]
        best["b_band_max"] = max(best["b_band_max"], float(band.max()))
        best["b_band_ratio_max"] = max(best["b_band_ratio_max"], float(ratio.max()))
        best["b_band_hue_max"] = max(best["b_band_hue_max"], float(band_h.max()))
        # physics: n modules' copper over n cards' body, the band's depth over the slab's
        # does not depend on the count (PVC about 0.2, ABS / PC about 0.4)
        rel = iso / (lvl + 1e-3)
        iso = np.where((rel > 0.06) & (rel < 0.8), iso, 0.0)
        best["b_iso_len_mm"] = max(best["b_iso_len_mm"], _longest_run(iso > 0.03, along) * p)
        best["b_iso_max"] = max(best["b_iso_max"], float(iso.max()))
        best["b_iso_ratio_max"] = max(best["b_iso_ratio_max"],
                                      float((iso / (side + 0.1)).max()))
        best["b_iso_hue_max"] = max(best["b_iso_hue_max"],
                                    float(np.where(hue > 0.05, iso, 0.0).max()))
        strong = band > 0.05
        band_any |= strong
        hue_any |= band_h > 0.05
        iso_any |= iso > 0.03
    for n, m in (("b_band_mm2", band_any), ("b_band_hue_mm2", hue_any),
                 ("b_iso_mm2", iso_any)):
        areas[n] = max(areas[n], float(m.sum()))
