"""Typed records of the courier depot station (field-formats section 2).

Device readings come out of the protocol cores in ``drivers/serial`` and the X-ray
folder watcher in ``drivers/xray``; waybills out of the depot's export (2f). The
assembly (``edge/courier/assembly.py``) ties them into one :class:`Parcel` per parcel,
which goes on to the decision stages. Every record carries ``ts``, event time in Unix
epoch seconds, and ``lane``, the conveyor lane it was read on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True, frozen=True)
class Waybill:
    """One waybill of the depot's daily export (field-formats 2f).

    ``sender_id``, ``sender_phone`` and ``receiver_phone`` are personal data: they
    stay inside the pipeline and are pseudonymised by the reporter before any report
    leaves the device (see ``edge.courier.privacy``).
    """

    waybill: str
    declared: str = ""
    declared_value_cny: float | None = None
    sender_verified: bool | None = None
    sender_id: str | None = None
    sender_phone: str | None = None
    receiver_phone: str | None = None
    origin: str | None = None
    dest: str | None = None


@dataclass(slots=True, frozen=True)
class ScanRead:
    """One decode from the barcode scanner (2a).

    ``code`` is the decoded text without the AIM prefix (``aim``, e.g. ``"]C1"``, or
    ``""``). ``noread`` is True for the scanner's no-read message, then ``code`` is
    ``""``. ``valid`` says whether ``code`` has the shape of a waybill number
    (10 to 15 alphanumerics).
    """

    ts: float
    lane: str
    code: str
    aim: str = ""
    noread: bool = False
    valid: bool = True


@dataclass(slots=True, frozen=True)
class WeightReading:
    """One MT-SICS weight response (2b), converted to kilograms.

    ``status`` is ``"stable"`` (``S S``), ``"dynamic"`` (``S D``), ``"not_ready"``
    (``S I``), ``"over"`` (``S +``), ``"under"`` (``S -``) or ``"error"`` (``ES``,
    ``ET``, ``EL``; the code is in ``detail``). ``kg`` is None unless a value was sent.
    ``unit`` and ``raw_value`` are as sent; ``decimals`` is the number of decimals.
    """

    ts: float
    lane: str
    status: str
    kg: float | None = None
    raw_value: float | None = None
    unit: str = ""
    decimals: int = 0
    detail: str = ""


@dataclass(slots=True, frozen=True)
class DimsReading:
    """One dimensioner reply (2c), converted to cm and kg.

    ``ok`` is False for ``MN`` and for a reply with any field under range, unstable or
    over range; ``flags`` then names them, e.g. ``("L:unstable", "K:over")``.
    ``unit`` is the length unit as sent (``"cm"`` or ``"in"``), ``weight_unit``
    ``"kg"`` or ``"lb"``.
    """

    ts: float
    lane: str
    ok: bool
    length_cm: float | None = None
    width_cm: float | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    dim_weight_kg: float | None = None
    unit: str = ""
    weight_unit: str = ""
    flags: tuple[str, ...] = ()

    @property
    def dims_cm(self) -> tuple[float, float, float] | None:
        """(L, W, H) in cm when all three were read, else None."""
        if self.length_cm is None or self.width_cm is None or self.height_cm is None:
            return None
        return (self.length_cm, self.width_cm, self.height_cm)


@dataclass(slots=True, frozen=True)
class RfidRead:
    """One UHF tag inventory notice (2d) whose checksum and tag CRC-16 verified."""

    ts: float
    lane: str
    epc: str  # upper-case hex
    rssi: int  # as sent, signed dBm
    pc: int


@dataclass(slots=True, frozen=True)
class XrayImage:
    """One X-ray image from the watched folder (2e).

    ``pixels`` is a numpy uint8 array of shape (H, W, 3), or None when the PNG was
    corrupt (such images are counted and normally not emitted). ``sidecar_ok`` is
    False when the sidecar never came and the defaults were used. ``ts`` is the
    sidecar's ``ts``, else the ``<epoch_ms>`` of the file name.
    """

    ts: float
    lane: str
    path: Path
    pixels: Any  # numpy.ndarray | None; Any keeps numpy out of the record's import
    mm_per_px: float
    belt_mps: float
    sidecar_ok: bool


@dataclass(slots=True)
class Parcel:
    """One assembled parcel, handed to the decision stages.

    ``seq`` counts parcels per lane from 1. ``missing`` names the pieces that never
    came: ``"barcode"``, ``"weight"``, ``"dims"``, ``"xray"``, ``"waybill_record"``.
    ``notes`` says what was ambiguous and why (double read, cross-read tag, unstable
    weight, ...). ``xray_exit_ts`` is the event time at which the parcel leaves the
    X-ray machine, from which the divert deadline is computed.
    """

    ts: float
    lane: str
    seq: int
    waybill: str | None
    waybill_record: Waybill | None
    weight_kg: float | None
    dims_cm: tuple[float, float, float] | None
    dim_weight_kg: float | None
    rfid_epcs: tuple[str, ...]
    xray: XrayImage | None
    missing: tuple[str, ...]
    notes: tuple[str, ...]
    xray_exit_ts: float | None
