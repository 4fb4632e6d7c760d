"""From an X-ray image (field-formats 2e) to the image model's input tensor, and back.

The image model sees every parcel at one physical scale, :data:`MODEL_MM_PER_PX`
(3.5 mm per pixel), so a banknote or an ID-1 card has the same size in pixels whatever
the machine's pitch: the image is area-resampled to that pitch, the parcel's content
(every pixel that is not belt-white) is centred on a :data:`INPUT_PX` square canvas, and
colours are inverted so that empty belt is 0. :class:`Prepared` keeps the transform, so a
cell of the model's heat map maps back to a rectangle of the original image.

Numpy only: this runs on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODEL_MM_PER_PX = 3.5
INPUT_PX = 192
_CONTENT_DARKNESS = 28      # 255 - mean RGB above this is content, not belt noise


@dataclass(frozen=True, slots=True)
class Prepared:
    """The model input and how it maps onto the original image.

    ``x`` float32 (3, INPUT_PX, INPUT_PX); original pixel (row, col) =
    ((row_in - off_y) * scale + src_y0, (col_in - off_x) * scale + src_x0).
    ``content_px`` is the number of content pixels at model scale (0: empty image).
    """
    x: np.ndarray
    scale: float        # original pixels per model pixel
    src_x0: int
    src_y0: int
    off_x: int
    off_y: int
    content_px: int
    src_x1: int = 0     # end (exclusive) of the source window the canvas shows
    src_y1: int = 0

    def native_window(self, margin: int = 4) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) source pixels of the content the canvas shows, plus ``margin``
        (clipped at 0; a slice clips the ends). The native-pitch features read this."""
        return (max(self.src_x0 - margin, 0), max(self.src_y0 - margin, 0),
                self.src_x1 + margin, self.src_y1 + margin)

    def to_source(self, row0: float, col0: float, row1: float,
                  col1: float) -> tuple[int, int, int, int]:
        """Model-input rectangle (rows, cols) -> original image (x0, y0, x1, y1) pixels."""
        s = self.scale
        return (int((col0 - self.off_x) * s + self.src_x0),
                int((row0 - self.off_y) * s + self.src_y0),
                int(np.ceil((col1 - self.off_x) * s + self.src_x0)),
                int(np.ceil((row1 - self.off_y) * s + self.src_y0)))


def _area_resample_axis(a: np.ndarray, factor: float, axis: int) -> np.ndarray:
    """Average ``a`` over windows of ``factor`` source pixels along ``axis`` (exact area)."""
    n = a.shape[axis]
    m = max(1, int(round(n / factor)))
    cs = np.concatenate([np.zeros_like(np.take(a, [0], axis=axis)),
                         np.cumsum(a, axis=axis)], axis=axis)
    edges = np.linspace(0, n, m + 1)
    lo = np.floor(edges).astype(int)
    frac = edges - lo
    hi = np.minimum(lo + 1, n)
    c_lo, c_hi = np.take(cs, lo, axis=axis), np.take(cs, hi, axis=axis)
    shape = [1] * a.ndim
    shape[axis] = m + 1
    at_edges = c_lo + (c_hi - c_lo) * frac.reshape(shape)
    width = np.diff(edges).reshape([m if i == axis else 1 for i in range(a.ndim)])
    return np.diff(at_edges, axis=axis) / width


def prepare(image: np.ndarray, mm_per_px: float) -> Prepared:
    """Model input for a uint8 (H, W, 3) image of pitch ``mm_per_px`` (see module doc).

    Raises ValueError for an image that is not (H, W, 3) or a non-positive pitch.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if not mm_per_px > 0:
        raise ValueError(f"mm_per_px must be positive, got {mm_per_px}")
    inv = 1.0 - image.astype(np.float32) / 255.0
    scale = MODEL_MM_PER_PX / float(mm_per_px)
    small = _area_resample_axis(_area_resample_axis(inv, scale, 0), scale, 1)
    dark = small.mean(axis=2) > _CONTENT_DARKNESS / 255.0
    rows = np.flatnonzero(dark.sum(axis=1) >= 3)
    cols = np.flatnonzero(dark.sum(axis=0) >= 3)
    canvas = np.zeros((INPUT_PX, INPUT_PX, 3), dtype=np.float32)
    if len(rows) == 0 or len(cols) == 0:
        return Prepared(canvas.transpose(2, 0, 1).copy(), scale, 0, 0, 0, 0, 0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # a parcel larger than the canvas keeps its centre
    if r1 - r0 > INPUT_PX:
        mid = (r0 + r1) // 2
        r0, r1 = mid - INPUT_PX // 2, mid + INPUT_PX // 2
    if c1 - c0 > INPUT_PX:
        mid = (c0 + c1) // 2
        c0, c1 = mid - INPUT_PX // 2, mid + INPUT_PX // 2
    crop = small[r0:r1, c0:c1]
    oy, ox = (INPUT_PX - crop.shape[0]) // 2, (INPUT_PX - crop.shape[1]) // 2
    canvas[oy:oy + crop.shape[0], ox:ox + crop.shape[1]] = crop
    return Prepared(canvas.transpose(2, 0, 1).copy(), scale, int(round(c0 * scale)),
                    int(round(r0 * scale)), ox, oy, int(dark.sum()),
                    int(np.ceil(c1 * scale)), int(np.ceil(r1 * scale)))


def mask_to_input(mask: np.ndarray, prep: Prepared, cells: int) -> np.ndarray:
    """Fraction of each of ``cells`` x ``cells`` heat-map cells covered by a source mask.

    Used in training to turn the simulator's threat mask into the heat-map target.
    """
    m = mask.astype(np.float32)[..., None]
    small = _area_resample_axis(_area_resample_axis(m, prep.scale, 0), prep.scale, 1)[..., 0]
    canvas = np.zeros((INPUT_PX, INPUT_PX), dtype=np.float32)
    y0 = int(round(prep.src_y0 / prep.scale))
    x0 = int(round(prep.src_x0 / prep.scale))
    crop = small[y0:y0 + INPUT_PX - prep.off_y, x0:x0 + INPUT_PX - prep.off_x]
    canvas[prep.off_y:prep.off_y + crop.shape[0], prep.off_x:prep.off_x + crop.shape[1]] = crop
    k = INPUT_PX // cells
    return canvas.reshape(cells, k, cells, k).mean(axis=(1, 3))
