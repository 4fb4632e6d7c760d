"""A simulated multi-site day of reports with planted cross-site cases and their truth.

The reports go through the agent's own :class:`~edge.report.reporter.Reporter`, one
per box with its site key and (except at ``legacy`` sites) the fleet key, so the
pseudonyms and ``fleet_id`` are exactly what boxes send. Background alerts use
identifiers drawn from a large population (collisions are rare and, where they
happen, recorded in the truth like any other shared identifier). Planted:

- a SIM-box SIM that moves across three base-station sites during the day;
- a SIM-box device (IMEI) seen at two sites; a GoIP endpoint seen at two sites;
- a SIM reported twice at one site (a one-site case);
- depot alerts at two depots that share a receiver phone, chained to a third by a
  shared sender phone; a card batch and its mismatch report on one waybill;
- a SIM also reported at a legacy site (no fleet key): it cannot join, by design.

:func:`make_day` returns the messages and :func:`truth_cases` the sets of report ids
that must come out as cases. Nothing here imports a detector.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.detection import Detection, Evidence, Subject
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import MemorySink
from edge.report.topics import report_topic

FLEET_KEY = b"simulated-operator-fleet-key-2026"


def crop_jpeg_b64(seed: int = 0) -> str:
    """A small JPEG standing in for the downscaled crop a depot box may put in a report:
    a belt-grey square with a stack of card-sized dark rectangles."""
    import base64
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 96), (172, 160, 120))
    draw = ImageDraw.Draw(img)
    for i in range(6):
        y = 20 + i * 9 + seed % 3
        draw.rectangle((18, y, 78, y + 6), fill=(40, 70, 150), outline=(20, 30, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(slots=True)
class DayMessage:
    topic: str
    payload: bytes
    report: dict[str, Any]


@dataclass(slots=True)
class Day:
    messages: list[DayMessage] = field(default_factory=list)
    planted: dict[str, list[str]] = field(default_factory=dict)  # name -> report ids
    clear_values: list[str] = field(default_factory=list)        # must never be stored


class _Box:
    def __init__(self, site: str, agent: str, fleet: bool, prefix: str) -> None:
        self.site, self.agent, self.prefix = site, agent, prefix
        self.sink = MemorySink()
        pseudo = Pseudonymiser(f"site-key-{site}-xxxxxxxx".encode(),
                               fleet_key=FLEET_KEY if fleet else None)
        self.reporter = Reporter(site=site, agent=agent, pseudonymiser=pseudo,
                                 ids=IdFactory(f"{site}/{agent}"), sinks=[self.sink])

    def report(self, det: Detection, day: Day) -> str:
        rep = self.reporter.report(det)
        day.messages.append(DayMessage(report_topic(self.prefix, self.site, self.agent,
                                                    rep["kind"]), orjson.dumps(rep), rep))
        return str(rep["id"])


def _sim(ts: float, imsi: str, n_calls: int) -> Detection:
    return Detection(ts=ts, kind="simbox.sim", severity="high", score=0.93,
                     subject=Subject("imsi", imsi),
                     evidence=[Evidence("many short outgoing calls, no incoming",
                                        {"calls_out": n_calls, "calls_in": 0,
                                         "distinct_b": n_calls - 3, "peer": "8613900000000"})],
                     route=["telecom", "police"], related=[Subject("imei", "86" + imsi[-12:])],
                     detector="callplane")


def _device(ts: float, imei: str) -> Detection:
    return Detection(ts=ts, kind="simbox.device", severity="high", score=0.88,
                     subject=Subject("imei", imei),
                     evidence=[Evidence("one device cycling through many SIMs",
                                        {"sims_seen": 14})], route=["telecom"],
                     detector="callplane")


def _goip(ts: float, endpoint: str) -> Detection:
    return Detection(ts=ts, kind="goip.endpoint", severity="critical", score=0.97,
                     subject=Subject("endpoint", endpoint),
                     evidence=[Evidence("GoIP management protocol seen", {"sig": "goip-sms"})],
                     route=["telecom", "police"], detector="ipplane")


def _parcel(ts: float, kind: str, waybill: str, sender: str, receiver: str, lane: str,
            seq: int) -> Detection:
    feats: dict[str, Any] = {"crop_ref": f"crop-{waybill}.jpg", "divert_status": "pending",
                             "alert_ref": f"divert-{lane}-{seq}", "lane": lane,
                             "parcel_seq": seq, "card_kind": "sim",
                             "crop_jpeg_b64": crop_jpeg_b64(seq)}
    return Detection(ts=ts, kind=kind, severity="high", score=0.91,
                     subject=Subject("waybill", waybill),
                     evidence=[Evidence("card batch found on the X-ray image (sim cards)",
                                        feats)], route=["police"],
                     related=[Subject("sender_phone", sender),
                              Subject("receiver_phone", receiver)], detector="parcel")


def _divert(ts: float, waybill: str, lane: str, seq: int, status: str) -> Detection:
    return Detection(ts=ts, kind="parcel.divert", severity="medium", score=1.0,
                     subject=Subject("waybill", waybill),
                     evidence=[Evidence(f"divert {status}", {
                         "divert_status": status, "alert_ref": f"divert-{lane}-{seq}",
                         "lane": lane, "parcel_seq": seq})], route=["police"],
                     detector="parcel")


def make_day(seed: int = 1, day: datetime | None = None, telecom_sites: int = 6,
             depots: int = 3, background: int = 120, prefix: str = "afe/v1") -> Day:
    """The day's messages in time order (see the module docstring)."""
    rng = random.Random(seed)
    start = (day or datetime(2026, 12, 1, tzinfo=UTC)).timestamp()
    out = Day()
    bs = [_Box(f"bs-{i:02d}", "gw1", True, prefix) for i in range(telecom_sites)]
    dp = [_Box(f"depot-{i:02d}", "st1", True, prefix) for i in range(depots)]
    legacy = _Box("bs-legacy", "gw1", False, prefix)

    def t(hour: float) -> float:
        return start + hour * 3600 + rng.uniform(0, 60)

    # background: unrelated alerts all day
    for _ in range(background):
        hour = rng.uniform(0, 23.5)
        if rng.random() < 0.7:
            box = rng.choice(bs)
            which = rng.random()
            n = rng.randrange(10**9)
            if which < 0.6:
                det = _sim(t(hour), f"46001{n:010d}", 40 + rng.randrange(60))
            elif which < 0.85:
                det = _device(t(hour), f"35{n:012d}")
            else:
                det = _goip(t(hour), f"198.51.{n % 250}.{n // 250 % 250 + 1}:5060")
        else:
            box = rng.choice(dp)
            seq = rng.randrange(10**6)
            det = _parcel(t(hour), "parcel.card_batch", f"SF{rng.randrange(10**12):012d}",
                          f"139{rng.randrange(10**8):08d}", f"137{rng.randrange(10**8):08d}",
                          "L1", seq)
        box.report(det, out)

    moving_sim = "460019876543210"
    out.clear_values += [moving_sim, "8613900000000"]
    out.planted["moving_sim"] = [bs[0].report(_sim(t(2), moving_sim, 80), out),
                                 bs[1].report(_sim(t(6), moving_sim, 95), out),
                                 bs[2].report(_sim(t(11), moving_sim, 70), out)]
    dev = "861234567890120"
    out.clear_values += [dev]
    out.planted["device_two_sites"] = [bs[3].report(_device(t(4), dev), out),
                                       bs[4].report(_device(t(9), dev), out)]
    ep = "203.0.113.77:5060"
    out.clear_values += ["203.0.113.77"]
    out.planted["goip_two_sites"] = [bs[1].report(_goip(t(13), ep), out),
                                     bs[5].report(_goip(t(15), ep), out)]
    same = "460015550000001"
    out.clear_values += [same]
    out.planted["sim_one_site"] = [bs[2].report(_sim(t(16), same, 50), out),
                                   bs[2].report(_sim(t(17), same, 65), out)]
    recv, send, send2 = "13700000042", "13900000007", "13600000099"
    out.clear_values += [recv, send, send2]
    a = dp[0].report(_parcel(t(8), "parcel.card_batch", "SF100000000001", send2, recv,
                             "L1", 11), out)
    b = dp[1].report(_parcel(t(10), "parcel.card_batch", "SF100000000002", send, recv,
                             "L2", 12), out)
    c = dp[2].report(_parcel(t(12), "parcel.card_batch", "SF100000000003", send,
                             "13511112222", "L1", 13), out)
    m = dp[0].report(_parcel(t(8.02), "parcel.mismatch", "SF100000000001", send2,
                             "13422223333", "L1", 11), out)
    out.planted["depot_chain"] = [a, b, c, m]
    dp[0].report(_divert(t(8.01), "SF100000000001", "L1", 11, "acted"), out)
    dp[1].report(_divert(t(10.01), "SF100000000002", "L2", 12, "too_late"), out)
    legacy_sim = "460017770000007"
    out.clear_values += [legacy_sim]
    out.planted["legacy_alone"] = [bs[0].report(_sim(t(18), legacy_sim, 60), out),
                                   bs[3].report(_sim(t(19), legacy_sim, 61), out),
                                   legacy.report(_sim(t(20), legacy_sim, 62), out)]
    out.messages.sort(key=lambda msg: str(msg.report["ts"]))
    return out


def truth_cases(day: Day) -> list[set[str]]:
    """The cases that must come out: the planted groups (background identifiers come
    from spaces of 10^8..10^12 values, so that a handful of them colliding is not a
    case the seeded days contain; the test would show one as an extra case)."""
    cases = [set(v) for k, v in day.planted.items() if k != "legacy_alone"]
    cases.append(set(day.planted["legacy_alone"][:2]))  # fleet-keyed sites only
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description="Print a simulated multi-site day of reports "
                                 "(JSONL: topic and report) with planted cases.")
    ap.add_argument("--seed", type=int, default=1, help="random seed")
    ap.add_argument("--background", type=int, default=120, help="unrelated alerts")
    args = ap.parse_args()
    day = make_day(args.seed, background=args.background)
    for msg in day.messages:
        print(json.dumps({"topic": msg.topic, "report": msg.report}))


if __name__ == "__main__":
    main()
