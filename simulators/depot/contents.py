"""What is inside a simulated parcel: items as material geometry, truth, declaration, weight.

:func:`sample_parcel` draws one :class:`ParcelSpec`: a cardboard box with clutter (clothes,
books, shoes, electronics, bottles, cans, tea tins, documents, toys, tools), sometimes an
honest look-alike (business cards, printshop PVC cards, hotel key cards, a few gift cards,
a few personal cards, jewellery, coins, paper reams, red envelopes with a few notes), and
for threat parcels one threat: a card batch (SIM, IoT or bank cards, PVC Z~14, each card
0.76 mm with its ISO 7816 chip module), gold (Z 79) or cash (RMB 100 notes, 155 x 77 mm,
100 to a 1 cm bundle). Every item is a list of :class:`Part` primitives (material,
shape, footprint, thickness along the beam) that :mod:`simulators.depot.xray` projects;
the weight is computed from the same parts, so image, weight and volume agree.

Generalisation, not giveaway:
- Card and note layouts (flat stacks, shingled rows, grids of bundles, on edge, split in
  clothes) are shared by threats and look-alikes; only the chip modules, counts and the
  note format tell them apart, as on a real belt.
- Clutter, box sizes, declarations and sender verification are drawn from the same
  distributions for every truth category (threat parcels lie about their content more
  often, honest ones are sloppy sometimes).
- ``profile="heldout"`` draws every parameter (sizes, counts, masses, thicknesses, pitches)
  from interleaved sub-ranges never used by ``profile="train"``; ``exclude_families``
  removes families for leave-one-family-out training and ``include_families`` forces one
  for its test.

Coordinates are millimetres in the box footprint: x along the belt (box length), y across
it, origin at the box's corner. The module imports nothing from a detector.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from simulators.depot.materials import density

CATEGORIES = ("none", "card_batch", "gold", "cash")
CARD_KINDS = ("sim", "iot", "bank")
CLUTTER_FAMILIES = ("clothes", "books", "shoes", "electronics", "bottles", "cans",
                    "tea_tins", "documents", "toys", "tools")
LOOKALIKE_FAMILIES = ("business_cards", "pvc_cards", "hotel_keycards", "gift_cards",
                      "personal_cards", "jewellery", "coins", "paper_reams", "red_envelopes")
CARD_LAYOUTS = ("flat_stack", "shingled", "grid", "on_edge", "in_clothes", "plugs")
GOLD_LAYOUTS = ("bars", "granules", "gold_coins", "in_tea_tin", "gold_jewellery")
CASH_LAYOUTS = ("bundles_flat", "bundles_row", "bundles_on_edge", "brick", "loose_in_clothes")
THREAT_FAMILIES = tuple(f"card_{k}" for k in CARD_KINDS) + ("gold", "cash")
ALL_FAMILIES = (CLUTTER_FAMILIES + LOOKALIKE_FAMILIES + CARD_LAYOUTS + GOLD_LAYOUTS
                + CASH_LAYOUTS + THREAT_FAMILIES)

# Goals of the decision stage (issue 12): recall is measured on parcels at or above these.
CARD_BATCH_MIN = 20
CASH_NOTES_MIN = 100
GOLD_MIN_G = 50.0

# ID-1 card (ISO/IEC 7810) and its contact module (ISO/IEC 7816-2 position): the contact
# area starts 10.25 mm from the left edge and 19.23 mm from the top edge.
CARD_L, CARD_W, CARD_T = 85.60, 53.98, 0.76
MODULE_X0, MODULE_Y0 = 10.25, 19.23
NOTE_L, NOTE_W, NOTE_T = 155.0, 77.0, 0.10     # RMB 100 (2015/2019 series)

DEFAULT_RATES = {"card_batch": 0.05, "gold": 0.03, "cash": 0.03}
LOOKALIKE_RATE = 0.3

_DECLARE = {
    "clothes": ("clothes", "apparel"), "books": ("books", "printed matter"),
    "shoes": ("shoes",), "electronics": ("electronics", "phone accessories"),
    "bottles": ("cosmetics", "drinks"), "cans": ("food", "drinks"), "tea_tins": ("tea",),
    "documents": ("documents", "contracts"), "toys": ("toys",), "tools": ("tools", "hardware"),
    "business_cards": ("business cards", "printed matter"),
    "pvc_cards": ("membership cards", "printed matter"), "hotel_keycards": ("key cards",),
    "gift_cards": ("gift cards", "gift"), "personal_cards": ("documents", "personal items"),
    "jewellery": ("jewellery", "accessories"), "coins": ("coins", "collectibles"),
    "paper_reams": ("paper", "office supplies"), "red_envelopes": ("gift", "documents"),
}
_GENERIC = ("gift", "daily goods", "samples")
_THREAT_HONEST = {"sim": "SIM cards", "iot": "IoT cards", "bank": "bank cards",
                  "gold": "gold", "cash": "cash"}
_THREAT_COVER = ("documents", "gift", "samples", "clothes", "tea", "daily goods", "books")


@dataclass(frozen=True, slots=True)
class Part:
    """One homogeneous primitive seen from above by the X-ray beam.

    ``shape``: ``rect`` / ``ellipse`` (uniform thickness ``t``), ``ring`` (annulus of
    outer size lx x ly and wall ``wall``, uniform ``t``: a can or tin standing up),
    ``frame`` (rectangle outline of width ``wall``: box walls, antenna coils), ``rod``
    (solid cylinder lying along x, diameter ly: thickness is its chord) and ``tube``
    (hollow lying cylinder, wall ``wall``). ``texture`` modulates the thickness with a
    smooth random field (folded textile, crumpled paper) seeded by ``tex_seed``.
    """
    material: str
    shape: str
    cx: float
    cy: float
    lx: float
    ly: float
    t: float = 0.0
    angle: float = 0.0         # degrees, counter-clockwise
    wall: float = 0.0
    texture: float = 0.0
    tex_seed: int = 0

    def volume_mm3(self) -> float:
        """Volume of the primitive in mm3 (for the weight)."""
        s, lx, ly, t, w = self.shape, self.lx, self.ly, self.t, self.wall
        if s == "rect":
            return lx * ly * t
        if s == "ellipse":
            return math.pi / 4 * lx * ly * t
        if s == "ring":
            return math.pi / 4 * (lx * ly - max(lx - 2 * w, 0) * max(ly - 2 * w, 0)) * t
        if s == "frame":
            return (lx * ly - max(lx - 2 * w, 0) * max(ly - 2 * w, 0)) * t
        if s == "rod":
            return math.pi / 4 * ly * ly * lx
        if s == "tube":
            return math.pi / 4 * (ly * ly - max(ly - 2 * w, 0) ** 2) * lx
        raise ValueError(f"unknown shape {s!r}")

    def mass_g(self) -> float:
        return self.volume_mm3() / 1000.0 * density(self.material)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing in the parcel: its family, role, how many units, and its parts.

    ``role`` is ``clutter``, ``lookalike``, ``threat`` or ``packaging``; ``count`` is the
    number of cards or notes (0 otherwise); ``bbox`` is (x0, y0, x1, y1) in the box
    footprint, the ground truth for localisation.
    """
    family: str
    role: str
    kind: str
    parts: tuple[Part, ...]
    count: int = 0
    layout: str = ""

    @property
    def mass_g(self) -> float:
        return sum(p.mass_g() for p in self.parts)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        xs: list[float] = []
        ys: list[float] = []
        for p in self.parts:
            r = 0.5 * math.hypot(p.lx, p.ly)
            xs += [p.cx - r, p.cx + r]
            ys += [p.cy - r, p.cy + r]
        return (min(xs), min(ys), max(xs), max(ys)) if xs else (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ParcelSpec:
    """One parcel's contents and truth.

    ``size_mm`` is (length along the belt, width, height); ``category`` one of
    :data:`CATEGORIES`; ``card_kind`` ``sim``/``iot``/``bank`` for card batches;
    ``families`` every family used (clutter, look-alike, threat, layout);
    ``declared``/``declared_value_cny`` what the waybill says and ``declaration_honest``
    whether it matches the content; ``weight_kg`` is computed from the parts and the box.
    """
    size_mm: tuple[float, float, float]
    items: tuple[Item, ...]
    category: str
    card_kind: str | None
    families: tuple[str, ...]
    declared: str
    declared_value_cny: int
    declaration_honest: bool
    sender_verified: bool
    weight_kg: float
    profile: str
    layout: str | None = None
    card_count: int = 0
    note_count: int = 0
    gold_g: float = 0.0
    rfid_tags: int = 0
    truth_notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def volume_l(self) -> float:
        length, width, height = self.size_mm
        return length * width * height / 1e6

    def threat_boxes_mm(self) -> list[tuple[float, float, float, float]]:
        """Footprint boxes (x0, y0, x1, y1) of the threat items, for localisation truth."""
        return [it.bbox for it in self.items if it.role == "threat"]

    def truth_dict(self) -> dict[str, object]:
        """A JSON-ready summary for truth files (no geometry)."""
        return {"category": self.category, "card_kind": self.card_kind,
                "layout": self.layout, "card_count": self.card_count,
                "note_count": self.note_count, "gold_g": round(self.gold_g, 1),
                "families": list(self.families), "declared": self.declared,
                "declared_value_cny": self.declared_value_cny,
                "declaration_honest": self.declaration_honest,
                "sender_verified": self.sender_verified,
                "weight_kg": round(self.weight_kg, 3),
                "size_mm": [round(v, 1) for v in self.size_mm],
                "rfid_tags": self.rfid_tags, "profile": self.profile}


# ---------------------------------------------------------------------------------------
# Parameter draws: train and held-out use interleaved sub-ranges of every parameter.

_BINS = 6


class _Draw:
    """Random draws that keep the held-out profile's parameter values out of training.

    Each range [lo, hi] is cut into six bins; ``train`` draws from bins 0, 2, 4 and
    ``heldout`` from 1, 3, 5, so held-out values span the same physical range but are
    never the values trained on. Nuisance values (positions, angles) use ``rng`` directly.
    """

    def __init__(self, rng: np.random.Generator, profile: str) -> None:
        if profile not in ("train", "heldout"):
            raise ValueError(f"profile must be 'train' or 'heldout', not {profile!r}")
        self.rng = rng
        self.offset = 0 if profile == "train" else 1

    def _bin(self) -> float:
        b = 2 * int(self.rng.integers(0, _BINS // 2)) + self.offset
        return (b + float(self.rng.random())) / _BINS

    def u(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self._bin()

    def logu(self, lo: float, hi: float) -> float:
        return math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * self._bin())

    def logi(self, lo: int, hi: int) -> int:
        return int(round(self.logu(lo, hi)))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, seq: Iterable[str]) -> str:
        options = list(seq)
        return options[int(self.rng.integers(0, len(options)))]

    def nuis(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def seed(self) -> int:
        return int(self.rng.integers(0, 2**31 - 1))


def _place(parts: Iterable[Part], cx: float, cy: float, angle: float) -> list[Part]:
    """Rotate parts built around (0, 0) by ``angle`` degrees and move them to (cx, cy)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [replace(p, cx=cx + c * p.cx - s * p.cy, cy=cy + s * p.cx + c * p.cy,
                    angle=p.angle + angle) for p in parts]


def _footprint(parts: Iterable[Part]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of placed parts, angles included."""
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    for p in parts:
        c, s = abs(math.cos(math.radians(p.angle))), abs(math.sin(math.radians(p.angle)))
        ex, ey = 0.5 * (c * p.lx + s * p.ly), 0.5 * (s * p.lx + c * p.ly)
        x0, x1 = min(x0, p.cx - ex), max(x1, p.cx + ex)
        y0, y1 = min(y0, p.cy - ey), max(y1, p.cy + ey)
    return x0, y0, x1, y1


def _extent(parts: Iterable[Part]) -> tuple[float, float]:
    """Half-extents (x, y) of parts built around (0, 0), angles included."""
    hx = hy = 1.0
    for p in parts:
        c, s = abs(math.cos(math.radians(p.angle))), abs(math.sin(math.radians(p.angle)))
        hx = max(hx, abs(p.cx) + 0.5 * (c * p.lx + s * p.ly))
        hy = max(hy, abs(p.cy) + 0.5 * (s * p.lx + c * p.ly))
    return hx, hy


# how put() makes a group that is larger than the box fit (after trying other angles)
_SOFT = frozenset({"textile", "foam", "paper", "leather"})


def _scaled(parts: Iterable[Part], f: float, fit: str) -> list[Part]:
    """Parts built around (0, 0) made ``f`` times smaller across the beam.

    ``shrink``: a smaller object of the same kind (positions and sizes scale, thickness
    kept); ``fold``: soft parts (textile, foam, paper, leather) keep their volume, so a
    garment folded to a quarter is four times as thick; ``pile``: only the positions
    scale, the pieces (cards, notes, gold) keep their size and lie closer or on top of
    each other, as a packer piles them in a small box.
    """
    out = []
    for p in parts:
        if fit == "pile":
            out.append(replace(p, cx=p.cx * f, cy=p.cy * f))
            continue
        t = p.t / (f * f) if fit == "fold" and p.material in _SOFT else p.t
        out.append(replace(p, cx=p.cx * f, cy=p.cy * f, lx=p.lx * f, ly=p.ly * f, t=t,
                           wall=p.wall * f if p.shape in ("ring", "frame") else p.wall))
    return out


class _Box:
    """The footprint being filled: places local part groups at random spots inside it.

    Everything stays inside the box's footprint: a group that does not fit at the drawn
    angle is turned (across, along, diagonally); one that fits at no angle is made
    smaller by its ``fit`` rule (:func:`_scaled`); a requested spot (``at``: cards inside
    a garment, gold in a tin) is moved just enough to keep the group inside.
    """

    def __init__(self, d: _Draw, length: float, width: float) -> None:
        self.d, self.length, self.width = d, length, width

    def fits(self, hx: float, hy: float) -> bool:
        return hx <= self.length / 2 + 1e-6 and hy <= self.width / 2 + 1e-6

    def put(self, parts: list[Part], angle: float | None = None,
            at: tuple[float, float] | None = None, fit: str = "shrink") -> list[Part]:
        d = self.d
        if angle is None:
            angle = d.pick(("0", "90", "free"))  # type: ignore[assignment]
            angle = {"0": d.nuis(-6, 6), "90": 90 + d.nuis(-6, 6)}.get(
                str(angle), d.nuis(0, 180))
        angle = float(angle)
        rotated = _place(parts, 0.0, 0.0, angle)
        hx, hy = _extent(rotated)
        if not self.fits(hx, hy):
            diag = math.degrees(math.atan2(self.width, self.length))
            best = None
            for a in (0.0, 90.0, diag, -diag, 180 - diag, angle + 90):
                r = _place(parts, 0.0, 0.0, a)
                ex, ey = _extent(r)
                need = max(ex / (self.length / 2), ey / (self.width / 2))
                if best is None or need < best[0] - 1e-9:
                    best = (need, a, r, ex, ey)
                if need <= 1.0:
                    break
            assert best is not None
            need, angle, rotated, hx, hy = best
            f = 1.0
            while not self.fits(hx, hy) and f > 0.05:
                f *= min(0.97, 0.995 / need)
                rotated = _place(_scaled(parts, f, fit), 0.0, 0.0, angle)
                hx, hy = _extent(rotated)
                need = max(hx / (self.length / 2), hy / (self.width / 2))
        mx, my = max(self.length / 2 - hx, 0.0), max(self.width / 2 - hy, 0.0)
        if at is None:
            at = (self.length / 2 + d.nuis(-mx, mx), self.width / 2 + d.nuis(-my, my))
        else:
            at = (min(max(at[0], self.length / 2 - mx), self.length / 2 + mx),
                  min(max(at[1], self.width / 2 - my), self.width / 2 + my))
        return _place(rotated, at[0], at[1], 0.0)


def outside_mm(parts: Iterable[Part], length: float, width: float) -> float:
    """How far (mm) the parts reach beyond a length x width footprint (0: inside)."""
    x0, y0, x1, y1 = _footprint(parts)
    return max(-x0, -y0, x1 - length, y1 - width, 0.0)


# ---------------------------------------------------------------------------------------
# Cards: threats and look-alikes share these builders and layouts.

@dataclass(frozen=True, slots=True)
class _CardDesign:
    body: str                  # card body material
    module: tuple[float, float] | None   # contact plate size (w, h) mm, None: no contacts
    copper_t: float            # contact plate thickness (copper with Ni/Au flash)
    coil: str | None           # antenna coil material, None: no coil
    coil_wall: float           # coil track width (all turns) mm
    coil_t: float              # coil thickness mm
    coil_inset: float
    die: float                 # silicon die edge mm (0: none)
    plug: bool = False         # punched-out 2FF plug (25 x 15 mm) instead of an ID-1 card


def _card_design(d: _Draw, kind: str) -> _CardDesign:
    """Physical design of one card of a kind (SIM, IoT, bank or look-alike)."""
    if kind == "sim":
        return _CardDesign(d.pick(("pvc",) * 5 + ("abs",)), (d.u(10.0, 11.6), d.u(9.0, 10.6)),
                           d.u(0.03, 0.06), None, 0, 0, 0, d.u(2.0, 3.5))
    if kind == "iot":
        return _CardDesign(d.pick(("pvc", "pvc", "pc")), (d.u(10.0, 11.6), d.u(9.0, 10.6)),
                           d.u(0.03, 0.06), None, 0, 0, 0, d.u(2.0, 3.5))
    if kind == "bank":
        dual = d.chance(0.7)
        return _CardDesign("pvc", (d.u(11.4, 13.0), d.u(10.6, 12.6)), d.u(0.03, 0.07),
                           "copper" if dual else None, d.u(0.3, 0.8), d.u(0.06, 0.12),
                           d.u(3.0, 7.0), d.u(3.0, 5.0))
    if kind == "hotel":
        return _CardDesign("pvc", None, 0, d.pick(("aluminium", "copper")), d.u(0.8, 3.0),
                           d.u(0.02, 0.08), d.u(3.0, 9.0), d.u(0.6, 1.2))
    if kind == "membership":
        return _CardDesign(d.pick(("pvc",) * 4 + ("pet",)), None, 0,
                           None, 0, 0, 0, 0)
    if kind == "gift":
        return _CardDesign("pvc", None, 0, None, 0, 0, 0, 0)
    if kind == "business":
        return _CardDesign("paper", None, 0, None, 0, 0, 0, 0)
    raise ValueError(f"unknown card kind {kind!r}")


def _card_stack_flat(design: _CardDesign, n: int, thick: float) -> list[Part]:
    """n identical cards lying flat and aligned, centred on (0, 0)."""
    if design.plug:
        length, width = 25.0, 15.0
    else:
        length, width = (90.0, 54.0) if design.body == "paper" else (CARD_L, CARD_W)
    parts = [Part(design.body, "rect", 0.0, 0.0, length, width, n * thick)]
    if design.module:
        mw, mh = design.module
        if design.plug:
            mx, my = 0.0, 0.0
        else:
            mx = MODULE_X0 + mw / 2 - length / 2
            my = MODULE_Y0 + mh / 2 - width / 2
        parts.append(Part("copper", "rect", mx, my, mw, mh, n * design.copper_t))
        parts.append(Part("epoxy", "rect", mx, my, mw * 0.7, mh * 0.7, n * 0.25))
    if design.die:
        dx = MODULE_X0 + 6.0 - length / 2 if design.module and not design.plug else (
            0.0 if design.plug else length * 0.25)
        dy = MODULE_Y0 + 5.5 - width / 2 if design.module and not design.plug else 0.0
        parts.append(Part("silicon", "rect", dx, dy, design.die, design.die, n * 0.15))
    if design.coil:
        ci = design.coil_inset
        parts.append(Part(design.coil, "frame", 0.0, 0.0, length - 2 * ci, width - 2 * ci,
                          n * design.coil_t, wall=design.coil_wall))
    return parts


def _card_stack_on_edge(design: _CardDesign, n: int, thick: float) -> list[Part]:
    """n cards standing on their long edge in a row (a card box seen from above).

    The beam runs through the card's height, so the stack's footprint is length x n*pitch
    and each material's thickness is the card height times its share of the pitch.
    """
    length, height = (CARD_L, CARD_W) if design.body != "paper" else (90.0, 54.0)
    pitch = thick * 1.05
    depth = n * pitch
    fill = thick / pitch
    parts = [Part(design.body, "rect", 0.0, 0.0, length, depth, height * fill)]
    if design.module:
        mw, mh = design.module
        mx = MODULE_X0 + mw / 2 - length / 2
        parts.append(Part("copper", "rect", mx, 0.0, mw, depth, mh * design.copper_t / pitch))
    if design.coil:
        ci = design.coil_inset
        # the coil's two vertical runs become two strips through the card height
        for sx in (-1, 1):
            parts.append(Part(design.coil, "rect", sx * (length / 2 - ci), 0.0,
                              design.coil_wall, depth, (height - 2 * ci) * design.coil_t / pitch))
    return parts


def _card_group(d: _Draw, design: _CardDesign, n: int, layout: str,
                thick: float, room: tuple[float, float] = (1e9, 1e9)) -> list[list[Part]]:
    """Local part groups (each placed separately) for n cards in a layout.

    ``room`` (length, width) mm of the box: shingled rows and grids are built no larger
    than it (more cards to a bundle instead)."""
    groups: list[list[Part]] = []
    if layout == "on_edge":
        left = n
        while left > 0:
            k = min(left, d.logi(20, 200))
            groups.append(_card_stack_on_edge(design, k, thick))
            left -= k
        return groups
    if layout == "shingled":
        pitch = d.u(4.0, 14.0)
        k_room = max(1, int((room[0] - CARD_L) / pitch) + 1)
        left = n
        while left > 0:
            k = min(left, d.logi(5, 25), k_room)
            row: list[Part] = []
            for i in range(k):
                row += _place(_card_stack_flat(design, 1, thick), (i - k / 2) * pitch,
                              d.nuis(-0.5, 0.5), d.nuis(-1.5, 1.5))
            groups.append(row)
            left -= k
        return groups
    if layout == "grid":
        per = max(1, d.logi(5, 50))
        gap = d.u(2.0, 15.0)
        fit_c = max(1, int((room[0] + gap) / (CARD_L + gap)))
        fit_r = max(1, int((room[1] + gap) / (CARD_W + gap)))
        per = max(per, math.ceil(n / (fit_c * fit_r)))
        nb = math.ceil(n / per)
        cols = min(fit_c, max(1, int(math.ceil(math.sqrt(nb * 1.5)))))
        grid: list[Part] = []
        for b in range(nb):
            k = min(per, n - b * per)
            r, c = divmod(b, cols)
            grid += _place(_jittered_stack(d, design, k, thick), c * (CARD_L + gap),
                           r * (CARD_W + gap), d.nuis(-1.0, 1.0))
        hx, hy = _extent(grid)
        cx = (max(p.cx for p in grid) + min(p.cx for p in grid)) / 2
        cy = (max(p.cy for p in grid) + min(p.cy for p in grid)) / 2
        del hx, hy
        groups.append(_place(grid, -cx, -cy, 0.0))
        return groups
    if layout == "plugs":
        plug = replace(design, plug=True)
        left = n
        while left > 0:
            k = min(left, d.logi(10, 60))
            spread = 12.0 * math.sqrt(k)
            heap = [p for _ in range(k) for p in _place(
                _card_stack_flat(plug, 1, thick), d.nuis(-spread, spread) * 0.6,
                d.nuis(-spread, spread) * 0.4, d.nuis(0, 180))]
            heap.append(Part("pe", "rect", 0.0, 0.0, spread * 1.4, spread, 0.1))
            groups.append(heap)
            left -= k
        return groups
    # flat_stack and in_clothes: bundles of aligned cards, jittered
    per = n if layout == "flat_stack" and d.chance(0.4) else d.logi(5, 60)
    left = n
    while left > 0:
        k = min(left, max(1, per))
        groups.append(_jittered_stack(d, design, k, thick))
        left -= k
    return groups


def _jittered_stack(d: _Draw, design: _CardDesign, n: int, thick: float) -> list[Part]:
    """A bundle of n cards, aligned within a jitter of a few tenths of a mm to a few mm."""
    jit = d.u(0.0, 2.5)
    sub = max(1, d.logi(4, 12))
    parts: list[Part] = []
    left = n
    while left > 0:
        k = min(left, sub)
        parts += _place(_card_stack_flat(design, k, thick), d.nuis(-jit, jit),
                        d.nuis(-jit, jit), d.nuis(-jit, jit))
        left -= k
    if d.chance(0.5):  # rubber band or paper sleeve around the bundle
        mat = d.pick(("rubber", "paper", "pe"))
        parts.append(Part(mat, "rect", d.nuis(-20, 20), 0.0, d.u(3.0, 8.0), CARD_W + 2,
                          2 * d.u(0.3, 1.0)))
    return parts


def _clothes_parts(d: _Draw) -> list[Part]:
    """One folded garment: textile slab with folds, sometimes buttons, zip or buckle."""
    lx, ly = d.u(200, 380), d.u(140, 280)
    parts = [Part("textile", "rect", 0.0, 0.0, lx, ly, d.u(8, 50), texture=d.u(0.3, 0.7),
                  tex_seed=d.seed())]
    if d.chance(0.5):
        nb = int(d.u(3, 8))
        mat = d.pick(("pe", "abs", "abs", "brass"))
        size = d.u(9, 16)
        for i in range(nb):
            parts.append(Part(mat, "ellipse", -lx / 4 + d.nuis(-2, 2), (i - nb / 2) * ly / nb,
                              size, size, d.u(1.5, 3.0)))
    if d.chance(0.35):
        parts.append(Part(d.pick(("steel", "brass", "pe")), "rect", lx / 5, 0.0, 4.0,
                          ly * d.u(0.4, 0.9), d.u(0.8, 1.6)))
    if d.chance(0.15):
        parts.append(Part("steel", "ring", lx / 3, 0.0, 40, 30, 3.0, wall=d.u(3.0, 6.0)))
    return parts


# ---------------------------------------------------------------------------------------
# Clutter families


def _books(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        lx, ly, t = d.u(130, 260), d.u(100, 190), d.u(8, 45)
        parts = [Part("paper", "rect", 0, 0, lx, ly, t)]
        if d.chance(0.5):
            parts.append(Part("cardboard", "frame", 0, 0, lx + 4, ly + 4, 2 * d.u(1.5, 3.0),
                              wall=(lx + ly) / 2))
        out += box.put(parts)
    return out


def _shoes(d: _Draw, box: _Box) -> list[Part]:
    lx, ly = d.u(220, 300), d.u(80, 110)
    pair: list[Part] = []
    eyelet_mat = d.pick(("brass", "steel", "pe", "abs"))
    n_eye = int(d.u(4, 9))
    for side in (-1, 1):
        y = side * (ly / 2 + 8)
        pair.append(Part("rubber", "ellipse", 0, y, lx, ly, d.u(12, 35)))
        pair.append(Part(d.pick(("leather", "textile")), "ellipse", -lx * 0.1, y, lx * 0.8,
                         ly * 0.9, d.u(20, 60), texture=0.3, tex_seed=d.seed()))
        if d.chance(0.6):
            for i in range(n_eye):
                for s2 in (-1, 1):
                    pair.append(Part(eyelet_mat, "ring", -lx * 0.05 + i * 9.0,
                                     y + s2 * 12, 5.0, 5.0, 1.2, wall=1.2))
        if d.chance(0.4):
            pair.append(Part("steel", "rect", lx * 0.15, y, 80, 12, d.u(1.0, 2.0)))
    return box.put(pair)


def _electronics(d: _Draw, box: _Box) -> list[Part]:
    kind = d.pick(("phone", "charger", "powerbank", "cable", "router"))
    if kind == "phone":
        lx, ly = d.u(140, 170), d.u(68, 80)
        parts = [Part("glass", "rect", 0, 0, lx, ly, d.u(1.2, 2.0)),
                 Part("aluminium", "frame", 0, 0, lx, ly, d.u(7, 9), wall=d.u(2, 4)),
                 Part("battery", "rect", 10, 0, lx * 0.55, ly * 0.8, d.u(4, 6)),
                 Part("fr4", "rect", -lx * 0.3, 0, lx * 0.3, ly * 0.8, 1.0)]
        for _ in range(int(d.u(4, 12))):
            s = d.u(2, 10)
            parts.append(Part(d.pick(("silicon", "copper", "steel")), "rect",
                              -lx * 0.3 + d.nuis(-20, 20), d.nuis(-25, 25), s, s, d.u(0.3, 1.5)))
    elif kind == "charger":
        parts = [Part("abs", "rect", 0, 0, d.u(40, 70), d.u(40, 60), d.u(25, 35)),
                 Part("copper", "ellipse", 0, 0, 22, 22, d.u(2, 5)),
                 Part("ferrite", "rect", 0, 0, 14, 14, d.u(8, 14)),
                 Part("fr4", "rect", 0, 8, 35, 25, 1.6),
                 Part("brass", "rect", 0, -28, 8, 20, 1.5)]
    elif kind == "powerbank":
        n = int(d.u(2, 8))
        parts = [Part("abs", "rect", 0, 0, 70, n * 19 + 6, 25)]
        for i in range(n):
            y = (i - (n - 1) / 2) * 19
            parts.append(Part("steel", "tube", 0, y, 65, 18, wall=0.25))
            parts.append(Part("battery", "rod", 0, y, 64, 17.4))
        parts.append(Part("fr4", "rect", 40, 0, 12, n * 17, 1.6))
    elif kind == "cable":
        r = d.u(50, 110)
        parts = [Part("copper", "ring", 0, 0, r, r * d.u(0.6, 1.0), d.u(0.6, 1.5),
                      wall=d.u(6, 15)),
                 Part("pe", "ring", 0, 0, r + 4, r * 0.8 + 4, d.u(3, 6), wall=d.u(8, 18))]
    else:
        lx, ly = d.u(150, 230), d.u(100, 160)
        parts = [Part("abs", "rect", 0, 0, lx, ly, d.u(25, 40)),
                 Part("fr4", "rect", 0, 0, lx * 0.8, ly * 0.8, 1.6)]
        for _ in range(int(d.u(4, 20))):
            s = d.u(2, 14)
            parts.append(Part(d.pick(("silicon", "copper", "steel", "aluminium")), "rect",
                              d.nuis(-lx / 3, lx / 3), d.nuis(-ly / 3, ly / 3), s, s * d.u(0.5, 2),
                              d.u(0.3, 3.0)))
    return box.put(parts)


def _bottles(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        kind = d.pick(("pet", "glass", "jar"))
        liquid = d.pick(("water", "oil", "cream"))
        if kind == "jar":
            dia = d.u(40, 80)
            h = d.u(30, 70)
            parts = [Part(d.pick(("glass", "pe")), "ring", 0, 0, dia, dia, h, wall=d.u(2, 5)),
                     Part(liquid, "ellipse", 0, 0, dia - 8, dia - 8, h * 0.8)]
        else:
            dia, length = d.u(50, 85), d.u(150, 300)
            wall = d.u(0.3, 0.6) if kind == "pet" else d.u(2.5, 5.0)
            parts = [Part(kind, "tube", 0, 0, length, dia, wall=wall),
                     Part(liquid, "rod", 0, 0, length * d.u(0.6, 0.95), dia - 2 * wall),
                     Part("pe", "rod", length / 2 + 12, 0, 24, 28)]
        out += box.put(parts)
    return out


def _cans(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    mat, wall = (("aluminium", d.u(0.08, 0.15)) if d.chance(0.6)
                 else ("steel", d.u(0.15, 0.3)))
    n = int(d.u(1, 7))
    standing = d.chance(0.5)
    for _ in range(n):
        dia, h = d.u(52, 85), d.u(95, 140)
        if standing:
            parts = [Part(mat, "ring", 0, 0, dia, dia, h, wall=wall),
                     Part(mat, "ellipse", 0, 0, dia, dia, 2 * wall * 2),
                     Part(d.pick(("water", "oil", "cream")), "ellipse", 0, 0, dia, dia, h * 0.9)]
        else:
            parts = [Part(mat, "tube", 0, 0, h, dia, wall=wall),
                     Part(d.pick(("water", "oil", "cream")), "rod", 0, 0, h * 0.95, dia)]
        out += box.put(parts)
    return out


def _tea_tin_parts(d: _Draw, fill: float) -> list[Part]:
    """A tinplate tea tin standing up (round or square), filled with tea leaves."""
    wall = d.u(0.18, 0.35)
    h = d.u(70, 160)
    if d.chance(0.6):
        dia = d.u(60, 110)
        return [Part("steel", "ring", 0, 0, dia, dia, h, wall=wall),
                Part("steel", "ellipse", 0, 0, dia, dia, 2 * wall + d.u(0.2, 0.6)),
                Part("tea", "ellipse", 0, 0, dia - 1, dia - 1, h * fill,
                     texture=0.25, tex_seed=d.seed())]
    lx, ly = d.u(60, 120), d.u(60, 100)
    return [Part("steel", "frame", 0, 0, lx, ly, h, wall=wall),
            Part("steel", "rect", 0, 0, lx, ly, 2 * wall + d.u(0.2, 0.6)),
            Part("tea", "rect", 0, 0, lx - 1, ly - 1, h * fill, texture=0.25,
                 tex_seed=d.seed())]


def _tea_tins(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        out += box.put(_tea_tin_parts(d, d.u(0.5, 0.95)))
    return out


def _documents(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        kind = d.pick(("envelope", "folder", "notepad"))
        if kind == "notepad":
            lx, ly = d.u(75, 210), d.u(75, 150)
            parts = [Part("paper", "rect", 0, 0, lx, ly, d.u(3, 15)),
                     Part("cardboard", "rect", 0, 0, lx, ly, 1.5)]
            if d.chance(0.4):
                parts.append(Part("steel", "rect", 0, -ly / 2 + 3, lx, 4, 0.6))
        else:
            lx, ly = (d.u(220, 240), d.u(105, 120)) if kind == "envelope" else (
                d.u(225, 320), d.u(215, 240))
            parts = [Part("paper", "rect", 0, 0, lx, ly, d.u(0.3, 8))]
            if d.chance(0.5):
                parts.append(Part("steel", "rect", -lx / 2 + 20, -ly / 2 + 10, 12, 1.0, 0.5))
            if d.chance(0.3):
                parts.append(Part("steel", "rect", 0, -ly / 2 + 8, 32, 12, 1.5))
        out += box.put(parts)
    return out


def _toys(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        kind = d.pick(("plastic", "plush", "car"))
        if kind == "plush":
            parts = [Part("textile", "ellipse", 0, 0, d.u(120, 250), d.u(100, 200), d.u(30, 90),
                          texture=0.4, tex_seed=d.seed()),
                     Part("foam", "ellipse", 0, 0, 100, 80, 60)]
        else:
            lx, ly = d.u(60, 200), d.u(40, 120)
            parts = [Part("abs", "rect", 0, 0, lx, ly, d.u(2, 6)),
                     Part("abs", "frame", 0, 0, lx, ly, d.u(20, 60), wall=d.u(2, 3))]
            if kind == "car" or d.chance(0.3):
                parts += [Part("copper", "rod", 0, 0, 25, 20), Part("steel", "tube", 0, 0, 25, 20,
                                                                    wall=0.5)]
                for i in range(int(d.u(1, 4))):
                    parts += [Part("steel", "tube", 30, -15 + i * 15, 50, 14.5, wall=0.3),
                              Part("alkaline", "rod", 30, -15 + i * 15, 48, 13.5)]
        out += box.put(parts)
    return out


def _tools(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        kind = d.pick(("wrench", "screwdriver", "pliers", "screws", "sinkers"))
        if kind == "wrench":
            length = d.u(120, 300)
            parts = [Part("steel", "rect", 0, 0, length, d.u(12, 25), d.u(4, 9)),
                     Part("steel", "ring", length / 2, 0, 32, 32, d.u(5, 9), wall=8)]
        elif kind == "screwdriver":
            length = d.u(80, 200)
            parts = [Part("steel", "rod", 0, 0, length, d.u(4, 7)),
                     Part("abs", "rod", -length / 2 - 45, 0, 90, d.u(22, 32))]
        elif kind == "pliers":
            parts = [Part("steel", "rect", 0, 0, 110, 14, 9), Part("steel", "rect", 10, 10, 90, 12, 9,
                                                                   angle=8),
                     Part("pvc", "rect", -30, 5, 70, 30, 10)]
        elif kind == "screws":
            n = int(d.u(20, 120))
            parts = [Part("pe", "rect", 0, 0, 90, 70, 30)]
            for _ in range(n):
                parts.append(Part("steel", "rod", d.nuis(-40, 40), d.nuis(-30, 30),
                                  d.u(10, 35), d.u(3, 6), angle=d.nuis(0, 180)))
        else:
            n = int(d.u(5, 40))
            parts = [Part("pe", "rect", 0, 0, 80, 60, 20)]
            for _ in range(n):
                s = d.u(4, 14)
                parts.append(Part("lead", "ellipse", d.nuis(-35, 35), d.nuis(-25, 25),
                                  s, s * d.u(0.6, 1.0), s * 0.6))
        out += box.put(parts)
    return out


def _clothes(d: _Draw, box: _Box) -> list[Part]:
    out: list[Part] = []
    for _ in range(int(d.u(1, 4))):
        out += box.put(_clothes_parts(d), fit="fold")
    return out


_CLUTTER: dict[str, Callable[[_Draw, _Box], list[Part]]] = {
    "clothes": _clothes, "books": _books, "shoes": _shoes, "electronics": _electronics,
    "bottles": _bottles, "cans": _cans, "tea_tins": _tea_tins, "documents": _documents,
    "toys": _toys, "tools": _tools,
}


# ---------------------------------------------------------------------------------------
# Look-alikes


def _cards_in_layout(d: _Draw, box: _Box, kind: str, n: int, layout: str,
                     design: _CardDesign | None = None) -> tuple[list[Part], list[Part]]:
    """Cards of one design in a layout, placed in the box; (card parts, wrapping parts)."""
    design = design or _card_design(d, kind)
    thick = 0.35 if kind == "business" else CARD_T * d.u(0.97, 1.03)
    cards: list[Part] = []
    extra: list[Part] = []
    groups = _card_group(d, design, n, layout, thick, (box.length, box.width))
    base_angle = d.nuis(-5, 5) + (90 if d.chance(0.3) else 0)
    for g in groups:
        if layout == "in_clothes":
            garment = box.put(_clothes_parts(d), fit="fold")
            extra += garment
            gx, gy = garment[0].cx, garment[0].cy
            cards += box.put(g, angle=d.nuis(0, 180), at=(gx + d.nuis(-60, 60),
                                                         gy + d.nuis(-40, 40)), fit="pile")
        elif layout in ("grid", "on_edge", "flat_stack") and len(groups) > 1:
            cards += box.put(g, angle=base_angle + d.nuis(-3, 3), fit="pile")
        else:
            cards += box.put(g, fit="pile")
    if layout in ("grid", "on_edge") and d.chance(0.7):
        # a carton around the cards (their footprint, inside the box)
        x0, y0, x1, y1 = _footprint(cards)
        x0, y0 = max(x0 - 2.0, 0.0), max(y0 - 2.0, 0.0)
        x1, y1 = min(x1 + 2.0, box.length), min(y1 + 2.0, box.width)
        extra.append(Part("cardboard", "rect", (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0,
                          y1 - y0, 2 * d.u(0.5, 1.5)))
    return cards, extra


def _lookalike(d: _Draw, box: _Box, family: str) -> tuple[list[Part], list[Part], int]:
    """Parts of one honest look-alike family: (item parts, wrapping parts, count)."""
    lay = d.pick(("flat_stack", "shingled", "grid", "on_edge"))
    if family == "business_cards":
        n = d.logi(50, 600)
        cards, extra = _cards_in_layout(d, box, "business", n, lay)
        return cards, extra, n
    if family == "pvc_cards":
        n = d.logi(20, 500)
        cards, extra = _cards_in_layout(d, box, "membership", n, lay)
        return cards, extra, n
    if family == "hotel_keycards":
        n = d.logi(20, 500)
        cards, extra = _cards_in_layout(d, box, "hotel", n, lay)
        return cards, extra, n
    if family == "gift_cards":
        n = d.logi(1, 12)
        cards, extra = _cards_in_layout(d, box, "gift", n, d.pick(("flat_stack", "shingled")))
        extra += box.put([Part("cardboard", "rect", 0, 0, 120, 80, 1.0)])
        return cards, extra, n
    if family == "personal_cards":
        # a wallet's worth: a few chip cards (bank, SIM) among loyalty cards
        parts: list[Part] = []
        n = d.logi(1, 4)
        for _ in range(n):
            g = _card_stack_flat(_card_design(d, d.pick(("bank", "bank", "sim"))), 1, CARD_T)
            parts += box.put(g, fit="pile")
        for _ in range(int(d.u(0, 4))):
            parts += box.put(_card_stack_flat(_card_design(d, "membership"), 1, CARD_T), fit="pile")
        return parts, box.put([Part("leather", "rect", 0, 0, 110, 95, 4)]), n
    if family == "jewellery":
        parts = []
        for _ in range(int(d.u(1, 8))):
            mat = d.pick(("silver", "silver", "brass", "steel", "gold"))
            kind = d.pick(("ring", "chain", "pendant", "bangle"))
            if kind == "ring":
                s = d.u(16, 24)
                g = [Part(mat, "ring", 0, 0, s, s, d.u(1.5, 4), wall=d.u(1.2, 2.5))]
            elif kind == "bangle":
                s = d.u(55, 75)
                g = [Part(mat if mat != "gold" else "brass", "ring", 0, 0, s, s, d.u(2, 6),
                          wall=d.u(2, 4))]
            elif kind == "pendant":
                g = [Part(mat, "ellipse", 0, 0, d.u(10, 25), d.u(10, 30), d.u(0.8, 2))]
            else:
                links = int(d.u(20, 60))
                r = d.u(15, 40)
                g = [Part(mat, "ellipse", r * math.cos(2 * math.pi * i / links),
                          r * math.sin(2 * math.pi * i / links), 2.5, 1.8, d.u(0.4, 0.9))
                     for i in range(links)]
            parts += box.put(g, fit="pile")
        box_parts = box.put([Part("cardboard", "rect", 0, 0, 90, 90, 3),
                             Part("foam", "rect", 0, 0, 85, 85, 25)])
        return parts, box_parts, 0
    if family == "coins":
        parts = []
        for _ in range(int(d.u(1, 6))):
            mat, dia, t = [("steel", 25.0, 1.85), ("brass", 20.5, 1.65),
                           ("aluminium", 19.0, 1.67), ("cupronickel", 22.0, 1.8),
                           ("silver", 40.0, 2.8)][int(d.rng.integers(0, 5))]
            n = d.logi(1, 50)
            if d.chance(0.4) and n > 5:   # a coin roll lying on its side
                g = [Part(mat, "rod", 0, 0, n * t, dia), Part("paper", "tube", 0, 0, n * t + 4,
                                                               dia + 1, wall=0.3)]
            else:
                g = [Part(mat, "ellipse", d.nuis(-10, 10), d.nuis(-10, 10), dia, dia,
                          t * max(1, n // int(d.u(1, 6)))) for _ in range(int(d.u(1, 6)))]
            parts += box.put(g, fit="pile")
        return parts, [], 0
    if family == "paper_reams":
        parts = []
        for _ in range(int(d.u(1, 3))):
            fmt = d.pick(("a4", "a5", "letter"))
            lx, ly = {"a4": (297, 210), "a5": (210, 148), "letter": (279, 216)}[fmt]
            parts += box.put([Part("paper", "rect", 0, 0, lx, ly, d.u(25, 55)),
                              Part("paper", "frame", 0, 0, lx, ly, 0.3, wall=lx / 2)])
        return parts, [], 0
    if family == "red_envelopes":
        parts = []
        n_total = 0
        for _ in range(int(d.u(1, 6))):
            n = d.logi(1, 20)
            n_total += n
            parts += box.put([Part("paper", "rect", 0, 0, 170, 90, 0.4),
                              Part("banknote", "rect", d.nuis(-3, 3), d.nuis(-2, 2),
                                   NOTE_L / 2 if d.chance(0.5) else NOTE_L * 0.95, NOTE_W,
                                   n * NOTE_T * (2 if d.chance(0.5) else 1))], fit="pile")
        return parts, [], n_total
    raise ValueError(f"unknown look-alike family {family!r}")


# ---------------------------------------------------------------------------------------
# Threats


def _gold(d: _Draw, box: _Box, layout: str) -> tuple[list[Part], list[Part], float]:
    """Gold in a layout; (gold parts, cover parts, grams of gold)."""
    target = d.logu(GOLD_MIN_G, 3000.0)
    parts: list[Part] = []
    cover: list[Part] = []
    if layout in ("bars", "in_tea_tin"):
        sizes = [(1000.0, 116.0, 52.0), (500.0, 90.0, 42.0), (100.0, 55.0, 31.0),
                 (50.0, 41.0, 24.0), (20.0, 33.0, 19.0), (10.0, 27.0, 16.0)]
        mass = 0.0
        bars: list[list[Part]] = []
        while mass < target * 0.9 and len(bars) < 30:
            grams, lx, ly = sizes[int(d.rng.integers(0, len(sizes)))]
            if grams > target * 1.3 and grams > 10:
                continue
            t = grams / 19.32 * 1000 / (lx * ly)
            bar = [Part("gold", "rect", 0, 0, lx, ly, t)]
            if d.chance(0.5):   # assay card or plastic case around a small bar
                bar.append(Part(d.pick(("pvc", "pet", "cardboard")), "rect", 0, 0, lx + 14,
                                ly + 24, 1.5))
            bars.append(bar)
            mass += grams
        if layout == "in_tea_tin":
            tin = box.put(_tea_tin_parts(d, d.u(0.4, 0.9)))
            cover += tin
            cx, cy = tin[0].cx, tin[0].cy
            r = min(tin[0].lx, tin[0].ly) / 4
            for b in bars:
                parts += box.put(b, at=(cx + d.nuis(-r, r), cy + d.nuis(-r, r)), fit="pile")
            if d.chance(0.5):
                cover += box.put(_tea_tin_parts(d, d.u(0.5, 0.95)))
        else:
            stacked = d.chance(0.5)
            anchor = None
            for b in bars:
                if stacked and anchor is not None:
                    parts += box.put(b, at=(anchor[0] + d.nuis(-4, 4), anchor[1] + d.nuis(-4, 4)), fit="pile")
                else:
                    placed = box.put(b, fit="pile")
                    anchor = (placed[0].cx, placed[0].cy)
                    parts += placed
        return parts, cover, mass
    if layout == "granules":
        mass = 0.0
        # a bag of grains, no wider than the box: heavier bags are piled thicker
        bag_r = min(15 + 4 * math.sqrt(target), 0.45 * box.width)
        grains: list[Part] = [Part("pe", "ellipse", 0, 0, 2 * bag_r, 1.4 * bag_r, 0.2)]
        while mass < target:
            s = d.u(1.5, 7.0)
            grain = Part("gold", "ellipse", d.nuis(-bag_r * 0.8, bag_r * 0.8),
                         d.nuis(-bag_r * 0.55, bag_r * 0.55), s, s * d.u(0.6, 1.0), s * 0.6)
            grains.append(grain)
            mass += grain.mass_g()
        if d.chance(0.5):
            tin = box.put(_tea_tin_parts(d, d.u(0.4, 0.9)))
            cover += tin
            grains = [replace(q, cx=q.cx * 0.5, cy=q.cy * 0.5) for q in grains]
            parts += box.put(grains, at=(tin[0].cx, tin[0].cy), fit="pile")
        else:
            parts += box.put(grains, fit="pile")
        return parts, cover, mass
    if layout == "gold_coins":
        mass = 0.0
        while mass < target:
            n = d.logi(1, 20)
            dia, t = d.pick(("32.7", "38.6", "22.0")), 0.0
            di = float(dia)
            t = {32.7: 2.8, 38.6: 2.9, 22.0: 1.5}[di]
            if d.chance(0.4) and n > 4:
                g = [Part("gold", "rod", 0, 0, n * t, di), Part("pc", "tube", 0, 0, n * t + 4,
                                                                 di + 3, wall=1.5)]
            else:
                g = [Part("gold", "ellipse", 0, 0, di, di, n * t),
                     Part("pc", "ellipse", 0, 0, di + 6, di + 6, 4.0)]
            parts += box.put(g, fit="pile")
            mass += sum(p.mass_g() for p in g if p.material == "gold")
        return parts, cover, mass
    # gold_jewellery: bangles and heavy chains
    mass = 0.0
    while mass < target:
        if d.chance(0.5):
            s = d.u(55, 75)
            g = [Part("gold", "ring", 0, 0, s, s, d.u(3, 7), wall=d.u(2.5, 5))]
        else:
            links = int(d.u(40, 90))
            r = d.u(20, 50)
            g = [Part("gold", "ellipse", r * math.cos(2 * math.pi * i / links),
                      r * math.sin(2 * math.pi * i / links) * 0.7, 4.0, 3.0, d.u(1.5, 2.5))
                 for i in range(links)]
        parts += box.put(g, fit="pile")
        mass += sum(p.mass_g() for p in g)
    return parts, cover, mass


def _cash(d: _Draw, box: _Box, layout: str) -> tuple[list[Part], list[Part], int]:
    """RMB 100 notes in a layout; (note parts, cover parts, number of notes)."""
    bundles = max(1, d.logi(1, 50))
    parts: list[Part] = []
    cover: list[Part] = []
    strap = d.pick(("paper", "pe", "pvc"))

    def bundle_flat(n_bundles: int) -> list[Part]:
        g = [Part("banknote", "rect", d.nuis(-0.8, 0.8), d.nuis(-0.5, 0.5), NOTE_L, NOTE_W,
                  100 * NOTE_T * d.u(0.95, 1.08), angle=d.nuis(-0.8, 0.8))
             for _ in range(n_bundles)]
        # one paper band per bundle, a plastic strap around a brick of ten
        g.append(Part("paper", "rect", d.nuis(-30, 30), 0, d.u(18, 32), NOTE_W + 1,
                      n_bundles * 0.2))
        if n_bundles >= 5:
            g.append(Part(strap, "rect", 0, 0, d.u(10, 16), NOTE_W + 2, 2 * d.u(0.4, 0.9)))
        return g

    if layout == "loose_in_clothes":
        notes = max(100, int(d.logu(100, 1200)))
        left = notes
        while left > 0:
            k = min(left, int(d.u(20, 100)))
            garment = box.put(_clothes_parts(d), fit="fold")
            cover += garment
            stack = [Part("banknote", "rect", d.nuis(-4, 4), d.nuis(-3, 3), NOTE_L, NOTE_W,
                          NOTE_T * k / 4, angle=d.nuis(-8, 8)) for _ in range(4)]
            parts += box.put(stack, at=(garment[0].cx + d.nuis(-50, 50),
                                        garment[0].cy + d.nuis(-30, 30)), fit="pile")
            left -= k
        return parts, cover, notes
    if layout == "bundles_on_edge":
        row: list[Part] = []
        pitch = 10.5
        for i in range(bundles):
            row.append(Part("banknote", "rect", 0, (i - (bundles - 1) / 2) * pitch, NOTE_L,
                            10.0, NOTE_W * 0.98))
        per_row = max(1, min(20, int(box.width / pitch)))
        while row:
            chunk = row[:per_row]
            mid = (chunk[0].cy + chunk[-1].cy) / 2
            parts += box.put([replace(q, cy=q.cy - mid) for q in chunk], fit="pile")
            row = row[per_row:]
        return parts, cover, bundles * 100
    if layout == "brick":
        left = bundles
        while left > 0:
            k = min(left, 10)
            g = bundle_flat(k) + [Part("pe", "rect", 0, 0, NOTE_L + 6, NOTE_W + 6, 0.3)]
            parts += box.put(g, fit="pile")
            left -= k
        return parts, cover, bundles * 100
    if layout == "bundles_row":
        per = max(1, d.logi(1, 8))
        gap = d.u(0.0, 20.0)
        fit_c = max(1, int((box.length + gap) / (NOTE_L + gap)))
        fit_r = max(1, int((box.width + gap) / (NOTE_W + gap)))
        per = max(per, math.ceil(bundles / (fit_c * fit_r)))
        piles = math.ceil(bundles / per)
        cols = min(fit_c, max(1, int(round(math.sqrt(piles)))))
        grid: list[Part] = []
        for p in range(piles):
            r, c = divmod(p, cols)
            k = min(per, bundles - p * per)
            grid += _place(bundle_flat(k), c * (NOTE_L + gap), r * (NOTE_W + gap), 0.0)
        cx = (max(q.cx for q in grid) + min(q.cx for q in grid)) / 2
        cy = (max(q.cy for q in grid) + min(q.cy for q in grid)) / 2
        parts += box.put(_place(grid, -cx, -cy, 0.0), fit="pile")
        return parts, cover, bundles * 100
    # bundles_flat: piles of bundles
    left = bundles
    while left > 0:
        k = min(left, max(1, d.logi(1, 12)))
        parts += box.put(bundle_flat(k), fit="pile")
        left -= k
    return parts, cover, bundles * 100


# ---------------------------------------------------------------------------------------


def _as_generator(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, random.Random):
        return np.random.default_rng(rng.getrandbits(63))
    if isinstance(rng, int):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, random.Random or int, not {type(rng)}")


def _allowed(options: Iterable[str], exclude: frozenset[str]) -> list[str]:
    return [o for o in options if o not in exclude]


def sample_parcel(rng: np.random.Generator | random.Random | int, profile: str = "train", *,
                  category: str | None = None, card_kind: str | None = None,
                  layout: str | None = None, rates: dict[str, float] | None = None,
                  lookalike_rate: float = LOOKALIKE_RATE,
                  exclude_families: Iterable[str] = (),
                  include_families: Iterable[str] = ()) -> ParcelSpec:
    """Draw one parcel.

    ``rng`` a numpy ``Generator`` (or ``random.Random`` / int seed); ``profile``
    ``train`` or ``heldout`` (disjoint parameter sub-ranges). Knobs: ``category`` forces
    the truth category, ``card_kind`` and ``layout`` the threat's kind and layout,
    ``rates`` the threat probabilities per category when not forced (default
    :data:`DEFAULT_RATES`), ``lookalike_rate`` the chance of a look-alike in a parcel,
    ``exclude_families`` families never drawn, ``include_families`` families always
    present (a clutter or look-alike family, or the threat layout).
    Returns a :class:`ParcelSpec` whose weight is computed from its parts.
    """
    g = _as_generator(rng)
    d = _Draw(g, profile)
    exclude = frozenset(exclude_families)
    include = [f for f in include_families]
    for f in include:
        if f not in ALL_FAMILIES:
            raise ValueError(f"unknown family {f!r}")
    if category is None:
        rates = rates or DEFAULT_RATES
        x = float(g.random())
        category = "none"
        for cat in ("card_batch", "gold", "cash"):
            x -= rates.get(cat, 0.0)
            if x < 0:
                category = cat
                break
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")

    length = d.u(200, 600)
    width = d.u(150, min(450.0, length))
    height = d.u(80, 350)
    box = _Box(d, length, width)
    items: list[Item] = []
    families: list[str] = []

    # threat first so that the layout can ask for its own cover (clothes, tea tins)
    kind: str | None = None
    threat_layout: str | None = None
    card_count = note_count = 0
    gold_g = 0.0
    if category == "card_batch":
        kinds = _allowed(CARD_KINDS, frozenset(k[5:] for k in exclude if k.startswith("card_")))
        kind = card_kind or d.pick(kinds or CARD_KINDS)
        layouts = [lay for lay in CARD_LAYOUTS if lay != "plugs" or kind in ("sim", "iot")]
        threat_layout = layout or _forced(include, layouts) or d.pick(
            _allowed(layouts, exclude) or layouts)
        card_count = d.logi(CARD_BATCH_MIN, 400)
        cards, extra = _cards_in_layout(d, box, kind, card_count, threat_layout)
        items.append(Item(f"card_{kind}", "threat", kind, tuple(cards), card_count,
                          threat_layout))
        if extra:
            items.append(Item("clothes" if threat_layout == "in_clothes" else "packaging",
                              "clutter" if threat_layout == "in_clothes" else "packaging",
                              "cover", tuple(extra)))
        families += [f"card_{kind}", threat_layout]
    elif category == "gold":
        threat_layout = layout or _forced(include, GOLD_LAYOUTS) or d.pick(
            _allowed(GOLD_LAYOUTS, exclude) or GOLD_LAYOUTS)
        gparts, cover, gold_g = _gold(d, box, threat_layout)
        items.append(Item("gold", "threat", "gold", tuple(gparts), 0, threat_layout))
        if cover:
            items.append(Item("tea_tins", "clutter", "cover", tuple(cover)))
        families += ["gold", threat_layout]
    elif category == "cash":
        threat_layout = layout or _forced(include, CASH_LAYOUTS) or d.pick(
            _allowed(CASH_LAYOUTS, exclude) or CASH_LAYOUTS)
        cparts, cover, note_count = _cash(d, box, threat_layout)
        items.append(Item("cash", "threat", "cash", tuple(cparts), note_count, threat_layout))
        if cover:
            items.append(Item("clothes", "clutter", "cover", tuple(cover)))
        families += ["cash", threat_layout]

    # clutter: the same distribution whatever the category
    clutter_opts = _allowed(CLUTTER_FAMILIES, exclude) or ["clothes"]
    n_clutter = int(d.u(1, 4.99))
    chosen = [f for f in include if f in CLUTTER_FAMILIES]
    while len(chosen) < n_clutter:
        chosen.append(d.pick(clutter_opts))
    for fam in chosen:
        items.append(Item(fam, "clutter", fam, tuple(_CLUTTER[fam](d, box))))
        families.append(fam)

    look_opts = _allowed(LOOKALIKE_FAMILIES, exclude)
    looks = [f for f in include if f in LOOKALIKE_FAMILIES]
    if not looks and look_opts and d.chance(lookalike_rate):
        looks.append(d.pick(look_opts))
    for fam in looks:
        lparts, lextra, n = _lookalike(d, box, fam)
        items.append(Item(fam, "lookalike", fam, tuple(lparts), n))
        if lextra:
            items.append(Item("packaging", "packaging", fam, tuple(lextra)))
        families.append(fam)

    # packaging: filler sometimes, then the box itself (two faces plus the walls edge-on)
    if d.chance(0.4):
        items.append(Item("packaging", "packaging", "filler", tuple(box.put(
            [Part(d.pick(("foam", "paper", "pe")), "rect", 0, 0, length * 0.9, width * 0.9,
                  d.u(1, 8), texture=0.6, tex_seed=d.seed())], angle=0.0,
            at=(length / 2, width / 2)))))
    wall = d.u(3.0, 7.0)
    items.append(Item("packaging", "packaging", "box", (
        Part("corrugated", "rect", length / 2, width / 2, length, width, 2 * wall),
        Part("corrugated", "frame", length / 2, width / 2, length, width, height, wall=wall),
        Part("pe", "rect", length / 2, width / 2, d.u(40, 60), width, 0.1))))

    weight_kg = sum(it.mass_g for it in items) / 1000.0
    declared, honest, value = _declaration(d, category, kind, chosen, looks)
    sender_verified = d.chance(0.9 if category == "none" else 0.6)
    rfid = int(d.chance(0.15 if category == "none" else 0.2)) + int(d.chance(0.03))
    uniq = tuple(dict.fromkeys(families))
    return ParcelSpec((length, width, height), tuple(items), category, kind, uniq,
                      declared, value, honest, sender_verified, weight_kg, profile,
                      threat_layout, card_count, note_count, gold_g, rfid)


def _forced(include: list[str], layouts: Iterable[str]) -> str | None:
    for f in include:
        if f in layouts:
            return f
    return None


def _declaration(d: _Draw, category: str, kind: str | None, clutter: list[str],
                 looks: list[str]) -> tuple[str, bool, int]:
    """What the waybill declares, whether that is honest, and the declared value (CNY)."""
    if category != "none":
        if d.chance(0.1):
            key = kind if category == "card_batch" and kind else category
            return _THREAT_HONEST[key], True, int(d.logu(200, 50000))
        cover = d.pick(_THREAT_COVER + tuple(_DECLARE[c][0] for c in clutter))
        return cover, False, int(d.logu(20, 800))
    main = looks[0] if looks and d.chance(0.6) else (clutter[0] if clutter else "documents")
    x = float(d.rng.random())
    if x < 0.88:
        return d.pick(_DECLARE[main]), True, int(d.logu(20, 3000))
    if x < 0.96:
        return d.pick(_GENERIC), True, int(d.logu(20, 1500))
    wrong = d.pick([f for f in CLUTTER_FAMILIES if f not in clutter] or ["documents"])
    return _DECLARE[wrong][0], False, int(d.logu(20, 1500))
