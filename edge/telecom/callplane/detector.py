"""The call-plane SIM-box detector stage: events in, ``simbox.sim`` and
``simbox.device`` detections out.

``feed`` only folds an event into the per-entity tables (cheap, no model). ``tick``
scores the SIMs that changed and carry enough calls to judge, in one batched ONNX
call every ``score_interval_s`` of event time, applies the explicit rules, and raises
an alert per SIM (with the features that stand out) and per device: the flagged SIMs
one IMEI (or a block of consecutive IMEIs) carried, or flagged SIMs that call each
other. Everything runs on event time, so replay and live agree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final

import numpy as np

from edge.config import CallPlaneSection
from edge.detection import Detection, Evidence, ModelInfo, Scalar, Subject
from edge.records import BaseStationEvent
from edge.telecom.callplane.cohort import CohortTables
from edge.telecom.callplane.features import FEATURES, INDEX, sim_features
from edge.telecom.callplane.rules import RuleHit, certain, device_tell
from edge.telecom.callplane.state import (
    DIRTY,
    GROUP,
    IN_BLOCK,
    NO_NUMBER,
    SHARED_DEVICE,
    EntityTables,
    Judge,
    SimState,
)
from edge.telecom.callplane.tacs import is_module_tac

log = logging.getLogger(__name__)
NOTHING: tuple[()] = ()
ROUTE = ["telecom", "police"]
REALERT_S: Final = 24 * 3600.0
SWEEP_S: Final = 3600.0

ScoreHook = Callable[[str, float, list[float]], None]
_SAME_DEVICE = ("one device (same IMEI or consecutive module IMEIs) carried several SIMs "
                "flagged as SIM-box lines")
_CALL_LINKED = ("SIMs flagged as SIM-box lines call or text each other (boxes generating "
                "traffic between their own SIMs to look human): one operation")


class CallPlaneDetector(Judge):
    """Pipeline stage (see :class:`edge.pipeline.Stage`)."""

    name: ClassVar[str] = "callplane"
    consumes: ClassVar[tuple[type, ...]] = (BaseStationEvent,)

    def __init__(self, cfg: CallPlaneSection, model: Any = None, *,
                 on_scored: ScoreHook | None = None, alerts: bool = True) -> None:
        self.cfg = cfg
        self.model = model
        self.model_info: ModelInfo | None = model.info if model is not None else None
        self._model_threshold = (float(model.contract.get("threshold", 0.9))
                                 if model is not None else 1.1)
        ref = model.contract.get("reference", {}) if model is not None else {}
        self._ref = [(ref.get(f, [0.0, 1.0])[0], max(1e-6, ref.get(f, [0.0, 1.0])[1]))
                     for f in FEATURES]
        self.tables = EntityTables(idle_evict_s=cfg.idle_evict_s, max_sims=cfg.max_entities)
        self.cohort = CohortTables()  # attach cohorts per cell, judged SIMs' numbers
        self.on_scored = on_scored
        self.alerts = alerts  # False: only score (training collects the vectors)
        self._dirty: list[tuple[str, SimState]] = []
        self._next_score = -math.inf
        self._next_sweep = -math.inf
        self._flagged_blocks: dict[str, dict[str, float]] = {}  # imei[:12] -> imsi -> ts
        self._block_reported: dict[str, int] = {}
        # Boxes that call each other to look human: alerted SIMs linked by calls.
        self._alerted_numbers: dict[int, str] = {}  # MSISDN hash -> alerted IMSI
        self._group_of: dict[str, str] = {}  # IMSI -> group key
        self._groups: dict[str, set[str]] = {}
        self._group_reported: dict[str, int] = {}
        self.scored = 0
        self.batches = 0
        self.alerts_sim = 0
        self.alerts_device = 0
        self.rule_alerts = 0

    @property
    def threshold(self) -> float:
        """The alert threshold: the config's (read live, so a downlink config update
        applies at once) or else the model contract's."""
        thr = self.cfg.threshold
        return self._model_threshold if thr is None else thr

    # -- stage interface
    def feed(self, ev: BaseStationEvent) -> Sequence[Detection]:
        self.tables.fold((ev,), self)
        return NOTHING

    def feed_many(self, evs: Sequence[BaseStationEvent],
                  on_error: Callable[[Exception], None]) -> None:
        """Fold a run of events (the pipeline hands them over in runs, always before
        the next ``tick``): the same as ``feed`` on each, without a call per event.
        ``feed`` emits nothing, so nothing is lost by folding them together."""
        self.tables.fold(evs, self, on_error)

    def judge(self, st: SimState, ev: BaseStationEvent) -> None:
        """Called by the fold right after each outgoing call start and each attach:
        only these can make a SIM look more like a box; other events are folded in
        and count at its next scoring."""
        if ev.type == "attach":
            # the table's IMSI string, not the event's copy: the cell's list keeps it
            self.cohort.on_attach(ev.ts, ev.cell, st.imsi, st)
        if st.flags & DIRTY or ev.dir == "mt" or st.alerted:
            return
        n = st.mo_n
        if n == 1 and ev.type == "call_start":
            self.tables.check_luhn(st, ev.imei)
        if n >= self.cfg.min_calls or (n >= self.cfg.early_min_calls and (self._device_evidence(
                st, ev.imei, n) or self._group_evidence(ev.imsi, st, ev.ts, n))):
            st.flags |= DIRTY
            self._dirty.append((st.imsi, st))

    def _device_evidence(self, st: SimState, imei: str | None, mo_n: int) -> bool:
        """Early judging: a SIM whose device carried other SIMs (a SIM-bank swap) or
        whose IMEI has 2+ devices within two serials (ports of one box, a batch of
        phones) is judged from its first outgoing calls, since the device view is
        evidence a single busy person cannot produce. The neighbour test runs on the
        SIM's 1st and 3rd outgoing call only (a box's ports attach together, so its
        neighbours are known by then)."""
        fl = st.flags
        if fl & (SHARED_DEVICE | IN_BLOCK):
            return True
        if imei is not None and (mo_n == 1 or mo_n == 3) \
                and self.tables.has_neighbours(imei):
            st.flags = fl | IN_BLOCK
            return True
        return False

    def _group_evidence(self, imsi: str, st: SimState, now: float, mo_n: int) -> bool:
        """Early judging on group evidence: on its 3rd outgoing call, the SIM's attach
        cohort on its cell holds 3+ SIMs dialling out in parallel with nothing
        coming in (:func:`~edge.telecom.callplane.cohort.group_tell`)."""
        if st.flags & GROUP:
            return True
        if mo_n != 3 or not self.cohort.tells(imsi, st, self.tables, now):
            return False
        st.flags |= GROUP
        return True

    def tick(self, now: float) -> Sequence[Detection]:
        out: list[Detection] = []
        if now >= self._next_score:
            self._next_score = now + self.cfg.score_interval_s
            # Wait out the lateness allowance so a scoring sees every event up to it.
            out = self.score(now - self.cfg.max_lateness_s)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_S
            self.tables.sweep(now)
            self.cohort.sweep(now)
            self._sweep_blocks(now)
        return out or NOTHING

    def flush(self, now: float) -> Sequence[Detection]:
        return self.score(now, force=True) or NOTHING

    def model_swapped(self, model: Any) -> None:
        """A new model took over (between two batches): its identity, threshold and
        reference statistics come with it."""
        self.model_info = model.info
        self._model_threshold = float(model.contract.get("threshold", 0.9))
        ref = model.contract.get("reference", {})
        self._ref = [(ref.get(f, [0.0, 1.0])[0], max(1e-6, ref.get(f, [0.0, 1.0])[1]))
                     for f in FEATURES]

    def counters(self) -> dict[str, int | float]:
        return {**self.tables.counters(), "scored": self.scored, "batches": self.batches,
                "alerts_sim": self.alerts_sim, "alerts_device": self.alerts_device,
                "rule_alerts": self.rule_alerts, "late_events": self.tables.late,
                "pending": len(self._dirty)}

    # -- scoring
    def score(self, now: float, force: bool = False) -> list[Detection]:
        """Score the SIMs that changed since their last scoring, in one batch."""
        if not self._dirty:
            return []
        keep: list[tuple[str, SimState]] = []
        batch: list[tuple[str, SimState]] = []
        for imsi, st in self._dirty:
            if self.tables.sims.get(imsi) is not st:  # evicted meanwhile
                continue
            if st.next_score > now and not force:
                keep.append((imsi, st))
            else:
                batch.append((imsi, st))
        self._dirty = keep
        if not batch:
            return []
        cohort = self.cohort
        rows_all = [sim_features(st, self.tables, now, self.cfg.utc_offset_h)
                    + cohort.features(imsi, st, self.tables, now) for imsi, st in batch]
        for (_, st) in batch:
            st.flags &= ~DIRTY
            st.next_score = now + self.cfg.score_interval_s
        self.scored += len(batch)
        self.batches += 1
        # Judged: enough calls of its own, or early with device evidence (the 24 h
        # window may have dropped calls since the SIM was marked).
        min_calls, early = self.cfg.min_calls, self.cfg.early_min_calls
        judged = [(b, x) for b, x in zip(batch, rows_all, strict=True)
                  if x[INDEX["mo_24h"]] >= min_calls or (
                      x[INDEX["mo_24h"]] >= early
                      and b[1].flags & (SHARED_DEVICE | IN_BLOCK | GROUP))]
        if not judged:
            return []
        for (imsi, st), _ in judged:
            cohort.note_judged(imsi, st.number)
        rows = [x for _, x in judged]
        if self.on_scored is not None:
            for ((imsi, _), x) in judged:
                self.on_scored(imsi, now, x)
        if not self.alerts:
            return []
        probs: Any = None
        if self.model is not None:
            probs = self.model.predict_proba(np.asarray(rows, dtype=np.float32))
        out: list[Detection] = []
        threshold = self.threshold
        gate = self.cfg.require_device_evidence
        for i, ((imsi, st), x) in enumerate(judged):
            hit = certain(x)
            p = float(probs[i]) if probs is not None else 0.0
            if hit is None and (p < threshold or (gate and not device_tell(x))):
                continue
            out.extend(self._alert(imsi, st, x, p, hit, now))
        return out

    def _top_features(self, x: list[float], k: int = 6) -> dict[str, Scalar]:
        dev = sorted(range(len(FEATURES)),
                     key=lambda i: -abs(x[i] - self._ref[i][0]) / self._ref[i][1])
        return {FEATURES[i]: round(x[i], 3) for i in dev[:k]}

    def _alert(self, imsi: str, st: SimState, x: list[float], p: float,
               hit: RuleHit | None, now: float) -> list[Detection]:
        st.alerted = now
        self.alerts_sim += 1
        imeis = sorted(st.imei_set())
        evidence: list[Evidence] = []
        if hit is not None:
            self.rule_alerts += 1
            evidence.append(Evidence(f"rule {hit.name}: {hit.reason}",
                                     {f: round(x[INDEX[f]], 3) for f in hit.features}))
        if self.model is not None and p >= self.threshold:
            evidence.append(Evidence(
                f"model score {p:.3f} >= {self.threshold:.3f}; features furthest from "
                f"ordinary subscribers", self._top_features(x)))
        model_decided = hit is None
        score = max(p, 0.99) if hit is not None else p
        det = Detection(
            now, "simbox.sim", "critical" if hit is not None else "high", score,
            Subject("imsi", imsi), evidence, list(ROUTE),
            model=self.model_info if model_decided else None,
            related=[Subject("imei", i) for i in imeis], detector=self.name)
        out = [det]
        cells = list(st.cell_set())
        for c in cells:
            cs = self.tables.cells.get(c)
            if cs is not None and len(cs.alerted) < 1024:
                cs.alerted.add(imsi)
        for imei in imeis:
            blk = imei[:12]
            flagged = self._flagged_blocks.setdefault(blk, {})
            flagged[imsi] = now
            n = len(flagged)
            reported = self._block_reported.get(blk, 0)
            if n >= 2 and n >= 2 * reported:
                self._block_reported[blk] = n
                out.append(self._device_alert(imei, flagged, now, cells, _SAME_DEVICE))
        out.extend(self._link_by_calls(imsi, st, now, cells))
        return out

    def _link_by_calls(self, imsi: str, st: SimState, now: float,
                       cells: list[str]) -> list[Detection]:
        """Group alerted SIMs that called or texted each other (in either direction:
        the callee's feed carries the caller's number as its peer)."""
        nums = self._alerted_numbers
        if st.number != NO_NUMBER:
            nums[st.number] = imsi
        linked: set[str] = set()
        pq = st.pq
        if pq:
            for j in range(0, len(pq), 2):
                other = nums.get(pq[j])
                if other is not None and other != imsi:
                    linked.add(other)
        if not linked:
            return []
        group = {imsi}
        old_keys = set()
        for o in linked:
            key = self._group_of.get(o, o)
            old_keys.add(key)
            group |= self._groups.get(key, {o})
        key = min(group)
        reported = max((self._group_reported.pop(k, 0) for k in old_keys), default=0)
        for k in old_keys:
            self._groups.pop(k, None)
        for m in group:
            self._group_of[m] = key
        self._groups[key] = group
        self._group_reported[key] = reported
        n = len(group)
        if n < 2 or n < 2 * reported:
            return []
        self._group_reported[key] = n
        imei = st.imei
        if imei is None:
            return []
        return [self._device_alert(imei, dict.fromkeys(group, now), now, cells, _CALL_LINKED)]

    def _device_alert(self, imei: str, flagged: dict[str, float], now: float,
                      cells: list[str], reason: str) -> Detection:
        self.alerts_device += 1
        imsis = sorted(flagged)
        # 14-digit keys (TAC + serial) so IMEI and IMEISV of one device count once.
        imeis: set[str] = set(self.tables.block_imeis(imei))
        max_per_imei = 0
        for s in imsis:
            st = self.tables.sims.get(s)
            if st is not None:
                imeis.update(i[:14] for i in st.imei_set())
        for i in imeis:
            max_per_imei = max(max_per_imei, len(self.tables.device_imsis(i, now - REALERT_S)))
        imeis.discard(imei[:14])
        cell_alerted = max((len(self.tables.cells[c].alerted) for c in cells
                            if c in self.tables.cells), default=0)
        feats: dict[str, Scalar] = {
            "flagged_sims": len(imsis), "imeis": len(imeis) + 1,
            "max_imsis_per_imei": max_per_imei, "module_tac": is_module_tac(imei),
            "alerted_sims_on_cell": cell_alerted}
        return Detection(
            now, "simbox.device", "critical", min(0.99, 0.8 + 0.03 * len(imsis)),
            Subject("imei", imei),
            [Evidence(reason, feats)],
            list(ROUTE), model=None,
            related=[Subject("imsi", s) for s in imsis] + [Subject("imei", i)
                                                          for i in sorted(imeis)],
            detector=self.name)

    def _sweep_blocks(self, now: float) -> None:
        horizon = now - REALERT_S
        for blk in list(self._flagged_blocks):
            fl = self._flagged_blocks[blk]
            for s in [s for s, ts in fl.items() if ts < horizon]:
                del fl[s]
            if not fl:
                del self._flagged_blocks[blk]
                self._block_reported.pop(blk, None)
        for st in self.tables.sims.values():
            if st.alerted and st.alerted < horizon:
                st.alerted = 0.0
        sims = self.tables.sims

        def gone(s: str) -> bool:
            st = sims.get(s)
            return st is None or not st.alerted

        for num in [k for k, s in self._alerted_numbers.items() if gone(s)]:
            del self._alerted_numbers[num]
        for key in list(self._groups):
            members = {m for m in self._groups[key] if not gone(m)}
            for m in self._groups[key] - members:
                self._group_of.pop(m, None)
            if len(members) < 2:
                for m in members:
                    self._group_of.pop(m, None)
                del self._groups[key]
                self._group_reported.pop(key, None)
            else:
                self._groups[key] = members
        for cs in self.tables.cells.values():
            if len(cs.alerted) > 512:
                cs.alerted.clear()
