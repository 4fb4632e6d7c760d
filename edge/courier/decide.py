"""Parcel decisions: card batches, gold and cash found on the device, diverted, reported.

In: assembled :class:`~edge.courier.records.Parcel` records (issue 11's assembly) and the
:class:`~edge.records.CommandOutcome` of the diverts this stage asked for. Out:
``parcel.card_batch`` / ``parcel.gold`` / ``parcel.cash`` detections (route police,
subject the waybill, sender and receiver as related subjects that the reporter
pseudonymises), a divert :class:`~edge.records.Command` to the station controller
(target ``station``) with a deadline from the belt speed and the distance from the
X-ray exit to the diverter, a ``parcel.divert`` detection with the outcome (acted, too
late, failed, rejected, or no answer), ``parcel.incomplete`` for parcels that could not
be judged (no image, corrupt image: reported, never fatal), and the waybill on the
on-device inspection list.

The decision itself is :func:`judge`, explicit rules over the image model's scores and
the parcel's facts (:class:`ParcelFacts`: weight, volume, density, declaration, sender
verification, RFID), each rule quoting its feature values in the evidence:

- ``image``: the image model's score for a category reaches its threshold;
- ``image_supported``: the score reaches ``support_ratio`` x threshold (default 0.8) and
  at least one independent signal supports it: the sender is not verified, or (gold) the
  parcel is denser than ``gold_density_kg_l``. A declaration that does not account for
  what the image shows is quoted as evidence but counts as support only with
  ``support_from_declaration``: on validation parcels it is about as common without a
  threat (80-89 %) as with one (54-95 % by category), so it carries no information and,
  counted, it made the lower threshold fire on most honest parcels
  (2.7 false alarms per 100 at 0.8, against 0.92 without; models/xray/README.md);
- ``declared``: the waybill declares a reportable content (SIM / IoT / bank cards, gold,
  cash) and the image shows some of it (score >= ``support_ratio`` x threshold).

Every finding quotes, besides the score and the parcel's facts, the image's physical cues
for its category when the model computes them (model 1.2: the chip-module spot at its
ISO 7816 place in a card-sized PVC region, the near-black area left after erosions in
mm2, the flat organic share of the best note-sized window), so an inspector reads what
the image shows, not only a score.

Honest look-alikes stay quiet because nothing here is triggered by their declaration
alone: business cards declared as business cards are only reported when the image
model is sure they are chip cards.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.courier.records import Parcel
from edge.courier.xray_scorer import LABELS, XrayScorer, XrayScores
from edge.detection import Detection, Evidence, ModelInfo, Scalar, Subject
from edge.records import Command, CommandOutcome

log = logging.getLogger(__name__)

ROUTE = ["police"]
KIND_OF = {"card_batch": "parcel.card_batch", "gold": "parcel.gold", "cash": "parcel.cash"}
# declarations that account for what the image shows (lower-case substrings)
_EXPLAINS = {
    "card_batch": ("card", "sim", "printed matter"),
    "gold": ("gold", "jewel", "coin", "accessor", "collectible", "tools", "hardware"),
    "cash": ("cash", "money", "banknote", "paper", "books", "documents", "printed",
             "office"),
}
_DECLARES_THREAT = {
    "card_batch": ("sim card", "iot card", "bank card", "phone card"),
    "gold": ("gold",),
    "cash": ("cash", "banknote", "money"),
}


@dataclass
class DecideSettings:
    """What the stage needs from the ``[depot]`` table (``decide_*`` keys and geometry)."""
    enabled: bool = True
    divert: bool = True
    thresholds: dict[str, float] = field(default_factory=dict)   # from the model contract
    support_ratio: float = 0.8
    support_from_declaration: bool = False
    gold_density_kg_l: float = 0.5
    kind_confidence: float = 0.7
    crop_jpeg_in_report: bool = False
    crop_dir: Path | None = None
    inspection_list: Path | None = None
    divert_margin_s: float = 0.15
    answer_grace_s: float = 5.0
    belt_mps: float = 0.5
    xray_len_m: float = 1.0
    xray_to_diverter_m: float = 2.0
    lane: str = "L1"


@dataclass(frozen=True, slots=True)
class ParcelFacts:
    """The non-image facts of a parcel that the rules read."""
    weight_kg: float | None
    volume_l: float | None
    declared: str
    declared_value_cny: float | None
    sender_verified: bool | None
    rfid_tags: int

    @property
    def density_kg_l(self) -> float | None:
        if self.weight_kg is None or not self.volume_l:
            return None
        return self.weight_kg / self.volume_l

    @classmethod
    def of(cls, p: Parcel) -> ParcelFacts:
        wb = p.waybill_record
        vol = None
        if p.dims_cm is not None:
            length, width, height = p.dims_cm
            vol = length * width * height / 1000.0
        return cls(p.weight_kg, vol, (wb.declared if wb else "") or "",
                   wb.declared_value_cny if wb else None,
                   wb.sender_verified if wb else None, len(p.rfid_epcs))


@dataclass(frozen=True, slots=True)
class Finding:
    """One category the rules decided on, with the rule and the evidence."""
    category: str
    rule: str
    score: float
    card_kind: str | None
    evidence: tuple[Evidence, ...]


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


def card_kind(kind: dict[str, float], declared: str, confidence: float) -> str | None:
    """``sim``, ``iot``, ``bank``, ``sim_or_iot`` or None when the image cannot tell."""
    d = declared.lower()
    for k, words in (("sim", ("sim card", "phone card")), ("iot", ("iot",)),
                     ("bank", ("bank card",))):
        if any(w in d for w in words):
            return k
    if kind.get("bank", 0.0) >= confidence:
        return "bank"
    sim, iot = kind.get("sim", 0.0), kind.get("iot", 0.0)
    if sim >= confidence:
        return "sim"
    if iot >= confidence:
        return "iot"
    if sim + iot >= confidence:
        return "sim_or_iot"
    return None


def judge(x: XrayScores, facts: ParcelFacts, st: DecideSettings) -> list[Finding]:
    """The explicit rules (module doc) over image scores and parcel facts."""
    out: list[Finding] = []
    declared = facts.declared.lower()
    dens = facts.density_kg_l
    for cat in LABELS:
        s = x.scores[cat]
        thr = st.thresholds.get(cat, 0.5)
        low = thr * st.support_ratio
        if s < low:
            continue
        explained = any(w in declared for w in _EXPLAINS[cat]) if declared else False
        declares = any(w in declared for w in _DECLARES_THREAT[cat])
        support: list[Evidence] = []
        quoted: list[Evidence] = []     # evidence that does not count as support
        if declared and not explained:
            (support if st.support_from_declaration else quoted).append(Evidence(
                f"declared '{facts.declared}' does not account for "
                f"{cat.replace('_', ' ')} in the image", {"declared": facts.declared}))
        if facts.sender_verified is False:
            support.append(Evidence("sender identity not verified",
                                    {"sender_verified": False}))
        if cat == "gold" and dens is not None and dens >= st.gold_density_kg_l:
            support.append(Evidence(f"dense parcel: {dens:.2f} kg/L",
                                    {"density_kg_l": _round(dens)}))
        if s >= thr:
            rule = "image"
        elif declares:
            rule = "declared"
        elif support:
            rule = "image_supported"
        else:
            continue
        region = x.regions[cat]
        ev = [Evidence(f"image model: {cat.replace('_', ' ')} score {s:.3f} "
                       f"(threshold {thr:.3f}, rule {rule})",
                       {"score": _round(s), "threshold": _round(thr), "rule": rule,
                        "region_px": f"{region[0]},{region[1]},{region[2]},{region[3]}",
                        "heat_peak": _round(float(x.heat[LABELS.index(cat)].max()))})]
        ev.append(Evidence(
            f"image: {100 * x.dense_share:.1f} % near-black, {100 * x.green_share:.1f} % "
            f"green, {100 * x.blue_share:.1f} % blue, {100 * x.organic_share:.1f} % organic",
            {"dense_share": _round(x.dense_share, 4), "green_share": _round(x.green_share, 4),
             "blue_share": _round(x.blue_share, 4),
             "organic_share": _round(x.organic_share, 4)}))
        ev.append(Evidence(
            "parcel: " + ", ".join(
                p for p in (f"{facts.weight_kg:.2f} kg" if facts.weight_kg is not None
                            else "weight unknown",
                            f"{facts.volume_l:.1f} L" if facts.volume_l else "volume unknown",
                            f"{dens:.2f} kg/L" if dens is not None else "",
                            f"{facts.rfid_tags} RFID tag(s)") if p),
            {"weight_kg": _round(facts.weight_kg), "volume_l": _round(facts.volume_l, 2),
             "density_kg_l": _round(dens), "rfid_tags": facts.rfid_tags,
             "declared": facts.declared,
             "declared_value_cny": _round(facts.declared_value_cny, 0),
             "sender_verified": facts.sender_verified}))
        ev += support + quoted
        cues = _physical_cues(x, cat)
        if cues:
            ev.append(cues)
        kind = None
        if cat == "card_batch":
            kind = card_kind(x.kind, facts.declared, st.kind_confidence)
            ev.append(Evidence(f"card kind: {kind or 'cannot tell'}",
                               {f"p_{k}": _round(v) for k, v in x.kind.items()}))
        out.append(Finding(cat, rule, s, kind, tuple(ev)))
    return out


# the image features an inspector can read as physics, per category (model 1.2's names;
# a model without them gives no such line)
_CUES = {
    "card_batch": (("n_card_blue_chip_max", "chip-module spot at the ISO 7816 place in a "
                    "card-sized PVC region, optical depth"),
                   ("n_card_blue_ratio_max", "that spot's depth over the card's"),
                   ("spots_green_px", "chip-like spots in PVC, pixels at 3.5 mm")),
    "gold": (("n_black_e1_mm2", "near-black area surviving a 3 mm erosion, mm2"),
             ("n_black_e2_mm2", "surviving a 6 mm erosion, mm2")),
    "cash": (("n_note_flat_max", "flat organic share of the best note-sized window"),
             ("note_slab_step", "note-sized slab's depth step over its frame")),
}


def _physical_cues(x: XrayScores, cat: str) -> Evidence | None:
    """The category's explicit image features in words, or None without them."""
    if not x.features:
        return None
    got = [(name, text, x.features[name]) for name, text in _CUES[cat] if name in x.features]
    if not got:
        return None
    return Evidence("image cues: " + "; ".join(f"{text} {v:.3g}" for _, text, v in got),
                    {name: _round(v, 4) for name, _, v in got})


class InspectionList:
    """The on-device list of waybills to inspect by hand: JSON Lines, appended.

    Each line is one event (``flagged`` then ``divert``) for a waybill; the newest state
    per waybill is also kept in memory (bounded) for the station's screen.
    """

    def __init__(self, path: Path | None, max_entries: int = 10_000) -> None:
        self.path = path
        self.entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.max_entries = max_entries
        self.write_errors = 0

    def record(self, key: str, **fields: Any) -> None:
        entry = self.entries.pop(key, {"key": key})
        entry.update(fields)
        self.entries[key] = entry
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, **fields}, default=str) + "\n")
        except OSError as exc:
            self.write_errors += 1
            log.warning("inspection list not written: %s", exc)


def _jpeg(pixels: np.ndarray, max_side: int, quality: int) -> bytes:
    from PIL import Image

    img = Image.fromarray(pixels)
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))),
                         Image.Resampling.BOX)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class _Pending:
    cmd: Command
    key: str
    kinds: tuple[str, ...]
    detection: Detection


class ParcelDecisionStage:
    """Pipeline stage: judges each parcel, reports, diverts, follows the outcome."""

    name = "parcel"
    consumes: tuple[type, ...] = (Parcel, CommandOutcome)

    def __init__(self, scorer: XrayScorer | None, settings: DecideSettings,
                 model_info: ModelInfo | None = None) -> None:
        self.scorer = scorer
        self.st = settings
        self.model_info = model_info
        self.inspection = InspectionList(settings.inspection_list)
        self.pending: dict[str, _Pending] = {}
        self.c: dict[str, int | float] = {
            "parcels": 0, "judged": 0, "incomplete": 0, "xray_errors": 0, "alerts": 0,
            "diverts": 0, "divert_not_possible": 0, "crop_errors": 0, "model_ms_total": 0.0,
            "model_ms_max": 0.0, "decide_ms_max": 0.0, "outcomes_unknown": 0}

    # -- the Stage protocol ------------------------------------------------------------
    def feed(self, item: Any) -> Sequence[Any]:
        if isinstance(item, CommandOutcome):
            return self._outcome(item)
        if isinstance(item, Parcel) and self.st.enabled:
            t0 = time.perf_counter()
            out = self._parcel(item)
            ms = (time.perf_counter() - t0) * 1000
            self.c["decide_ms_max"] = max(float(self.c["decide_ms_max"]), ms)
            return out
        return ()

    def tick(self, now: float) -> Sequence[Any]:
        out: list[Any] = []
        for cid, p in list(self.pending.items()):
            if now > p.cmd.deadline + self.st.answer_grace_s:
                del self.pending[cid]
                out.append(self._divert_report(p, "no_answer", now,
                                               "the station did not answer", None))
        return out

    def flush(self, now: float) -> Sequence[Any]:
        return self.tick(math.inf) if self.pending else ()

    def counters(self) -> dict[str, int | float]:
        c = dict(self.c)
        c["pending_diverts"] = len(self.pending)
        c["inspection_list"] = len(self.inspection.entries)
        c["inspection_write_errors"] = self.inspection.write_errors
        c["model_ms_total"] = round(float(c["model_ms_total"]), 1)
        c["model_ms_max"] = round(float(c["model_ms_max"]), 2)
        c["decide_ms_max"] = round(float(c["decide_ms_max"]), 2)
        return c

    def close(self) -> None:
        return None

    # -- one parcel --------------------------------------------------------------------
    def _key(self, p: Parcel) -> str:
        return p.waybill or f"{p.lane}-{p.seq}-noread"

    def _subject(self, p: Parcel) -> tuple[Subject, list[Subject]]:
        if p.waybill:
            subj = Subject("waybill", p.waybill)
        else:
            subj = Subject("parcel", f"{p.lane}-{p.seq}")
        related: list[Subject] = []
        wb = p.waybill_record
        if wb is not None:
            for typ, val in (("sender_id", wb.sender_id), ("sender_phone", wb.sender_phone),
                             ("receiver_phone", wb.receiver_phone)):
                if val:
                    related.append(Subject(typ, val))
        return subj, related

    def _parcel(self, p: Parcel) -> list[Any]:
        self.c["parcels"] += 1
        now = max(p.ts, p.xray.ts if p.xray is not None else p.ts)
        x = p.xray
        problem = ""
        if x is None:
            problem = "no X-ray image"
        elif x.pixels is None:
            problem = "X-ray image corrupt or unreadable"
        elif self.scorer is None:
            problem = "image model not loaded"
        scores: XrayScores | None = None
        if not problem and x is not None:
            try:
                scores = self.scorer.score(x.pixels, x.mm_per_px)  # type: ignore[union-attr]
            except (ValueError, TypeError) as exc:
                self.c["xray_errors"] += 1
                problem = f"X-ray image not usable: {exc}"
        if scores is None:
            self.c["incomplete"] += 1
            return [self._incomplete(p, now, problem)]
        self.c["judged"] += 1
        self.c["model_ms_total"] += scores.model_ms
        self.c["model_ms_max"] = max(float(self.c["model_ms_max"]), scores.model_ms)
        findings = judge(scores, ParcelFacts.of(p), self.st)
        out: list[Any] = []
        if p.missing:
            out.append(self._incomplete(p, now, "pieces missing: " + ", ".join(p.missing)))
        if not findings:
            return out
        key = self._key(p)
        deadline = self._deadline(p)
        cid = f"divert-{p.lane}-{p.seq}-{int(now * 1000)}"
        crop_ref, crop_b64 = self._crop(p, scores, findings[0].category, cid)
        cmd: Command | None = None
        status = "not_possible"
        if self.st.divert and deadline is not None and deadline > now:
            cmd = Command(ts=now, target="station", action="divert",
                          args={"lane": p.lane, "parcel_seq": p.seq,
                                "waybill": p.waybill or ""},
                          deadline=deadline, correlation_id=cid, origin=self.name)
            status = "requested"
        elif not self.st.divert:
            status = "disabled"
        else:
            self.c["divert_not_possible"] += 1
        subj, related = self._subject(p)
        dets: list[Detection] = []
        for f in findings:
            self.c["alerts"] += 1
            self.c[f"alerts.{f.category}"] = int(self.c.get(f"alerts.{f.category}", 0)) + 1
            feats: dict[str, Scalar] = {"crop_ref": crop_ref, "divert_status": status,
                                        "alert_ref": cid, "lane": p.lane, "parcel_seq": p.seq,
                                        "divert_deadline": _round(deadline, 3)}
            if f.card_kind:
                feats["card_kind"] = f.card_kind
            if crop_b64:
                feats["crop_jpeg_b64"] = crop_b64
            reason = (f"{f.category.replace('_', ' ')} found on the X-ray image"
                      + (f" ({f.card_kind} cards)" if f.card_kind else "")
                      + f"; divert {status}")
            det = Detection(ts=now, kind=KIND_OF[f.category], severity="high",
                            score=round(f.score, 4), subject=subj,
                            evidence=[Evidence(reason, feats), *f.evidence], route=list(ROUTE),
                            model=self.model_info, related=list(related),
                            detector=self.name)
            dets.append(det)
        kinds = tuple(f.category for f in findings)
        self.inspection.record(key, ts=now, lane=p.lane, seq=p.seq, waybill=p.waybill,
                               categories=list(kinds), crop_ref=crop_ref, divert=status,
                               alert_ref=cid)
        if cmd is not None:
            # the divert goes first: the diverter's deadline does not wait for the reports
            self.c["diverts"] += 1
            self.pending[cid] = _Pending(cmd, key, kinds, dets[0])
            out.insert(0, cmd)
        out += dets
        return out

    def _deadline(self, p: Parcel) -> float | None:
        """When the divert must have acted: the parcel reaches the diverter."""
        belt = p.xray.belt_mps if p.xray is not None and p.xray.belt_mps > 0 else self.st.belt_mps
        exit_ts = p.xray_exit_ts
        if exit_ts is None and p.xray is not None:
            exit_ts = p.xray.ts + self.st.xray_len_m / belt
        if exit_ts is None:
            return None
        return exit_ts + self.st.xray_to_diverter_m / belt - self.st.divert_margin_s

    def _crop(self, p: Parcel, x: XrayScores, cat: str, cid: str) -> tuple[str, str]:
        """Keep the suspicious region on the device; (reference, base64 JPEG or "")."""
        if p.xray is None or p.xray.pixels is None:
            return "", ""
        x0, y0, x1, y1 = x.regions[cat]
        crop = np.ascontiguousarray(p.xray.pixels[y0:y1, x0:x1])
        if crop.size == 0:
            return "", ""
        ref = f"{cid}.jpg"
        b64 = ""
        try:
            if self.st.crop_dir is not None:
                self.st.crop_dir.mkdir(parents=True, exist_ok=True)
                (self.st.crop_dir / ref).write_bytes(_jpeg(crop, 512, 90))
            if self.st.crop_jpeg_in_report:
                b64 = base64.b64encode(_jpeg(crop, 128, 70)).decode("ascii")
        except (OSError, ValueError, ImportError) as exc:
            self.c["crop_errors"] += 1
            log.warning("crop not kept: %s", exc)
        return ref, b64

    def _incomplete(self, p: Parcel, now: float, problem: str) -> Detection:
        subj, related = self._subject(p)
        return Detection(ts=now, kind="parcel.incomplete", severity="low", score=0.0,
                         subject=subj,
                         evidence=[Evidence(problem, {"missing": ",".join(p.missing),
                                                      "notes": "; ".join(p.notes)[:500],
                                                      "lane": p.lane, "parcel_seq": p.seq})],
                         route=["ops"], related=related, detector=self.name)

    # -- divert outcomes ---------------------------------------------------------------
    def _outcome(self, res: CommandOutcome) -> list[Any]:
        p = self.pending.pop(res.correlation_id, None)
        if p is None:
            if res.correlation_id.startswith("divert-"):
                self.c["outcomes_unknown"] += 1
            return []
        return [self._divert_report(p, res.status, res.ts, res.detail, res.latency_s)]

    def _divert_report(self, p: _Pending, status: str, now: float, detail: str,
                       latency_s: float | None) -> Detection:
        self.c[f"divert.{status}"] = int(self.c.get(f"divert.{status}", 0)) + 1
        self.inspection.record(p.key, divert=status, divert_ts=now, divert_detail=detail)
        ok = status == "acted"
        margin = p.cmd.deadline - now if math.isfinite(now) else None
        return Detection(
            ts=p.cmd.ts if not math.isfinite(now) else now, kind="parcel.divert",
            severity="medium" if ok else "high", score=1.0 if ok else 0.0,
            subject=p.detection.subject,
            evidence=[Evidence(f"divert {status}" + (f": {detail}" if detail else ""),
                               {"divert_status": status, "alert_ref": p.cmd.correlation_id,
                                "categories": ",".join(p.kinds),
                                "latency_s": _round(latency_s),
                                "deadline_margin_s": _round(margin),
                                "lane": str(p.cmd.args.get("lane", "")),
                                "parcel_seq": p.cmd.args.get("parcel_seq")})],
            route=list(ROUTE) + (["ops"] if not ok else []), related=p.detection.related,
            detector=self.name)


def settings_from(sec: Any, thresholds: dict[str, float], data_dir: Path) -> DecideSettings:
    """:class:`DecideSettings` from the ``[depot]`` section (``decide_*`` keys if present)."""
    def g(name: str, default: Any) -> Any:
        return getattr(sec, name, default)

    thr = dict(thresholds)
    for cat in LABELS:
        v = g(f"decide_threshold_{cat}", 0.0)
        if v:
            thr[cat] = float(v)
    crop_dir = g("decide_crop_dir", None) or data_dir / "parcel-crops"
    insp = g("decide_inspection_list", None) or data_dir / "inspection.jsonl"
    return DecideSettings(
        enabled=bool(g("decide_enabled", True)), divert=bool(g("decide_divert", True)),
        thresholds=thr, support_ratio=float(g("decide_support_ratio", 0.8)),
        support_from_declaration=bool(g("decide_support_from_declaration", False)),
        crop_jpeg_in_report=bool(g("decide_crop_jpeg_in_report", False)),
        crop_dir=Path(crop_dir), inspection_list=Path(insp),
        divert_margin_s=float(g("decide_divert_margin_s", 0.15)),
        belt_mps=float(g("belt_mps", 0.5)), xray_len_m=float(g("xray_len_m", 1.0)),
        xray_to_diverter_m=float(g("xray_to_diverter_m", 2.0)), lane=str(g("lane", "L1")))


def load_scorer(folder: Path | None = None) -> XrayScorer:
    """Verify and load the X-ray image model (``models/xray``) into a scorer."""
    from models.loader import MODELS_DIR, load_model

    return XrayScorer(load_model(folder or MODELS_DIR / "xray"))


def build_stage(ctx: Any) -> ParcelDecisionStage:
    """The decision stage for the depot domain (``edge.courier.domain``)."""
    sec = ctx.cfg.section("depot")
    scorer = load_scorer()
    ctx.models.append(scorer.model.info)
    thresholds = {k: float(v) for k, v in scorer.model.contract.get("thresholds", {}).items()}
    st = settings_from(sec, thresholds, Path(ctx.cfg.agent.data_dir))
    warm_up(scorer)
    return ParcelDecisionStage(scorer, st, scorer.model.info)


def warm_up(scorer: XrayScorer) -> None:
    """Run the model and the JPEG encoder once at start: the first parcel of the day
    must not pay for onnxruntime's first-run allocations and the codec's import (on a
    loaded box that cost a first divert its deadline)."""
    blank = np.full((96, 96, 3), 255, np.uint8)
    blank[30:60, 30:60] = 120
    scorer.score(blank, 3.5)
    _jpeg(blank, 64, 70)
