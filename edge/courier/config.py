"""The ``[depot]`` config table: one conveyor lane of a courier depot station.

Ports take what :func:`drivers.transport.factory.open_transport` takes: a device path
(``/dev/ttyUSB0``, a pty), a pyserial URL (``socket://``, ``rfc2217://``,
``loop://``) or ``usb:VID:PID[:SERIAL]``. An empty port means the device is absent
(its piece is then reported missing on every parcel). Distances are metres along
the belt from the barcode scanner, where a parcel's leading edge defines its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from edge.config import Range


@dataclass
class DepotSection:
    lane: str = "L1"
    """Conveyor lane this agent reads (X-ray files of other lanes are ignored)."""
    scanner_port: str = ""
    """Barcode scanner serial port (field-formats 2a)."""
    scanner_terminator: Literal["crlf", "cr", "lf"] = "crlf"
    """Line terminator the scanner is set to."""
    scanner_aim: Literal["auto", "require", "none"] = "auto"
    """AIM symbology prefix: split off when present, required, or never looked for."""
    scanner_line_gap_s: Annotated[float, Range(0.001, 10.0)] = 0.03
    """A pause longer than this inside a line means its start was noise (dropped)."""
    scale_port: str = ""
    """MT-SICS scale serial port (2b)."""
    scale_mode: Literal["poll_si", "poll_s", "stream"] = "poll_si"
    """Send SI (weight now) or S (stable weight) every scale_poll_s, or just listen."""
    scale_poll_s: Annotated[float, Range(0.005, 10.0)] = 0.2
    """Polling interval of the scale."""
    dims_port: str = ""
    """Cubiscan-style dimensioner serial port (2c)."""
    dims_poll_s: Annotated[float, Range(0.005, 10.0)] = 0.25
    """Interval of measure requests to the dimensioner."""
    rfid_port: str = ""
    """UHF RFID reader serial port (2d, M100 / JRD-4035 frames)."""
    rfid_poll_s: Annotated[float, Range(0.005, 10.0)] = 0.1
    """Interval of single-poll inventories."""
    baudrate: Annotated[int, Range(1200, 921_600)] = 9600
    """Baud rate of every port (8N1)."""
    xray_dir: Path | None = None
    """Folder the X-ray machine writes <epoch_ms>_<lane>.png and .json into (2e)."""
    xray_poll_s: Annotated[float, Range(0.01, 10.0)] = 0.1
    """How often the X-ray folder is listed."""
    sidecar_wait_s: Annotated[float, Range(0.0, 60.0)] = 2.0
    """A PNG whose sidecar has not come after this long is used with the defaults."""
    xray_mm_per_px: Annotated[float, Range(0.05, 20.0)] = 1.5
    """Default image scale when the sidecar is missing."""
    waybills: Path | None = None
    """The depot's waybill export, JSON Lines (2f); re-read when it changes."""
    waybills_refresh_s: Annotated[float, Range(1.0, 86_400.0)] = 30.0
    """How often the waybill export is checked for changes (event time)."""
    belt_mps: Annotated[float, Range(0.01, 20.0)] = 0.5
    """Belt speed (default for X-ray images whose sidecar is missing, and timing)."""
    scale_at_m: Annotated[float, Range(0.0, 100.0)] = 0.6
    """Where the weighing section starts."""
    scale_len_m: Annotated[float, Range(0.05, 10.0)] = 0.9
    """Length of the weighing section."""
    dims_at_m: Annotated[float, Range(0.0, 100.0)] = 2.0
    """Where the dimensioner measures (it replies once the parcel has passed)."""
    rfid_at_m: Annotated[float, Range(0.0, 100.0)] = 0.0
    """Where the RFID reader's antenna is."""
    xray_at_m: Annotated[float, Range(0.0, 100.0)] = 3.0
    """Where the X-ray tunnel starts (the image's time is the parcel's entry)."""
    xray_to_diverter_m: Annotated[float, Range(0.0, 100.0)] = 2.0
    """From the X-ray tunnel's exit to the diverter (the divert deadline)."""
    xray_len_m: Annotated[float, Range(0.1, 10.0)] = 1.0
    """Length of the X-ray tunnel."""
    typical_parcel_m: Annotated[float, Range(0.05, 5.0)] = 0.35
    """Typical parcel length, for the expected time of length-dependent readings."""
    match_window_s: Annotated[float, Range(0.05, 60.0)] = 0.9
    """A reading belongs to the parcel whose expected time is nearest, within this.
    Keep it below half the smallest gap between parcels' leading edges."""
    double_read_s: Annotated[float, Range(0.05, 60.0)] = 0.6
    """Scanner reads closer than this are one parcel (double reads)."""
    rfid_settle_s: Annotated[float, Range(0.0, 60.0)] = 1.0
    """After a parcel's tags can last be read (the antenna's field passed, plus the
    match window), wait this long for late inventory replies before an X-ray image
    completes the parcel. Scale it with a sped-up simulated station."""
    xray_wait_s: Annotated[float, Range(0.0, 600.0)] = 8.0
    """A parcel still missing a piece is closed this long after its expected X-ray entry
    (complete parcels close at once)."""
    parcels_out: Path | None = None
    """When set, every assembled parcel is appended here as a JSON line (no personal
    fields)."""
    record_dir: Path | None = None
    """When set, raw device bytes and X-ray files are recorded here (replay them with
    edge-agent replay --depot DIR)."""
    # -- parcel decisions (edge/courier/decide.py, issue 12)
    decide_enabled: bool = True
    """Judge every assembled parcel for card batches, gold and cash on the device."""
    decide_divert: bool = True
    """Ask the station controller to divert flagged parcels to manual inspection."""
    decide_divert_margin_s: Annotated[float, Range(0.0, 10.0)] = 0.15
    """The divert deadline is this much before the parcel reaches the diverter."""
    decide_support_ratio: Annotated[float, Range(0.1, 1.0)] = 0.8
    """An image score of at least this share of the threshold is reported when the
    sender is not verified or (gold) the parcel is dense (1.0: only the image threshold
    decides). 0.8 was chosen on validation parcels (train profile) as the step that keeps
    false alarms under 1 per 100 parcels: models/xray/README.md."""
    decide_support_from_declaration: bool = False
    """Also count a declaration that does not account for what the image shows as
    support (it is as common on honest parcels as on threats: 2.7 false alarms per 100
    parcels at a ratio of 0.8 on validation parcels, against 0.92 without)."""
    decide_threshold_card_batch: Annotated[float, Range(0.0, 1.0)] = 0.0
    """Image-model threshold for card batches (0: the model contract's)."""
    decide_threshold_gold: Annotated[float, Range(0.0, 1.0)] = 0.0
    """Image-model threshold for gold (0: the model contract's)."""
    decide_threshold_cash: Annotated[float, Range(0.0, 1.0)] = 0.0
    """Image-model threshold for cash (0: the model contract's)."""
    decide_crop_dir: Path | None = None
    """Where crops of suspicious regions are kept (default <data_dir>/parcel-crops)."""
    decide_crop_jpeg_in_report: bool = False
    """Put a downscaled JPEG (128 px) of the crop into the report itself."""
    decide_inspection_list: Path | None = None
    """The on-device inspection list, JSON Lines (default <data_dir>/inspection.jsonl)."""
