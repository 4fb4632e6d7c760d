"""Protocol cores of the depot's serial devices, driven with byte literals."""

from __future__ import annotations

import random

import pytest

from drivers.serial.barcode import BarcodeCore
from drivers.serial.cubiscan import CubiscanCore
from drivers.serial.lines import LineSplitter
from drivers.serial.mtsics import MtSicsCore
from drivers.serial.rfid import RfidCore, crc16_gen2, frame, notice
from edge.courier.records import DimsReading, RfidRead, ScanRead, WeightReading
from edge.records import Malformed


def bytewise(core: object, data: bytes, ts: float = 1.0) -> list[object]:
    """Feed one byte at a time: every split point of a read."""
    out: list[object] = []
    for i in range(len(data)):
        out += core.feed(data[i:i + 1], ts)  # type: ignore[attr-defined]
    return out


def good(items: list[object]) -> list[object]:
    return [x for x in items if not isinstance(x, Malformed)]


# -- lines ------------------------------------------------------------------------------

@pytest.mark.parametrize("term", [b"\r\n", b"\r", b"\n"])
def test_line_splitter_terminators(term: bytes) -> None:
    sp = LineSplitter(term)
    assert sp.feed(b"ABC" + term + b"DE") == ["ABC"]
    assert sp.feed(b"F" + term) == ["DEF"]


def test_line_noise_costs_only_the_line_it_hits() -> None:
    sp = LineSplitter(b"\r\n")
    out = sp.feed(b"AB\x00\xffCD\r\nEF\r\n")
    assert out[-2:] == ["CD", "EF"]
    assert [type(x).__name__ for x in out] == ["Dropped", "str", "str"]
    assert out[0].offset == 0 and out[0].length == 4  # type: ignore[union-attr]


def test_line_overlong_dropped_then_resyncs() -> None:
    sp = LineSplitter(b"\n", max_len=8)
    out = sp.feed(b"X" * 30 + b"\nOK\n")
    assert out[-1] == "OK" and len(out) == 2 and sp.pending == 0


# -- barcode ------------------------------------------------------------------------------

def test_barcode_reads_aim_noread_and_invalid() -> None:
    core = BarcodeCore("L1")
    out = core.feed(b"]C1SF1234567890123\r\nYT7390012345678\r\nNoRead\r\nHELLO\r\n", 5.0)
    assert out == [ScanRead(5.0, "L1", "SF1234567890123", "]C1"),
                   ScanRead(5.0, "L1", "YT7390012345678"),
                   ScanRead(5.0, "L1", "", noread=True, valid=False),
                   ScanRead(5.0, "L1", "HELLO", valid=False)]
    assert core.counters() == {"reads": 2, "noreads": 1, "invalid": 1, "malformed": 0}


def test_barcode_double_read_passes_both_and_split_reads_rejoin() -> None:
    core = BarcodeCore("L2", terminator=b"\r")
    out = bytewise(core, b"JT0001234567890\rJT0001234567890\r")
    assert [r.code for r in out] == ["JT0001234567890"] * 2  # type: ignore[attr-defined]


def test_barcode_aim_required_and_none() -> None:
    core = BarcodeCore("L1", aim="require")
    out = core.feed(b"SF1234567890123\r\n]E0SF1234567890123\r\n", 1.0)
    assert isinstance(out[0], Malformed) and out[1] == ScanRead(1.0, "L1", "SF1234567890123",
                                                                "]E0")
    raw = BarcodeCore("L1", aim="none").feed(b"]C1ABCDEFGHIJ\r\n", 1.0)
    assert raw[0].code == "]C1ABCDEFGHIJ" and not raw[0].valid  # type: ignore[union-attr]


def test_barcode_garbage_burst_loses_at_most_one_read() -> None:
    rng = random.Random(3)
    core = BarcodeCore("L1")
    noise = bytes(rng.randrange(256) for _ in range(40))
    out = core.feed(b"SF0000000000001\r\n" + noise + b"SF0000000000002\r\nSF0000000000003\r\n",
                    1.0)
    codes = [r.code for r in good(out)]  # type: ignore[attr-defined]
    assert codes[0] == "SF0000000000001" and codes[-1] == "SF0000000000003"
    assert core.malformed >= 1


# -- MT-SICS --------------------------------------------------------------------------------

def test_mtsics_responses() -> None:
    core = MtSicsCore("L1")
    data = (b"S S      1.234 kg\r\nS D      1.2 kg\r\nS I\r\nS +\r\nS -\r\nES\r\nET\r\nEL\r\n"
            b"S S     1234.5 g\r\nS S      2.500 lb\r\nS S     -0.010 kg\r\n")
    out = core.feed(data, 2.0)
    assert out[0] == WeightReading(2.0, "L1", "stable", kg=1.234, raw_value=1.234, unit="kg",
                                   decimals=3)
    assert [r.status for r in out] == ["stable", "dynamic", "not_ready", "over", "under",  # type: ignore[union-attr]
                                       "error", "error", "error", "stable", "stable", "stable"]
    assert out[1].decimals == 1  # type: ignore[union-attr]
    assert [r.detail for r in out[5:8]] == ["ES", "ET", "EL"]  # type: ignore[union-attr]
    assert out[8].kg == pytest.approx(1.2345) and out[9].kg == pytest.approx(1.133981, abs=1e-6)  # type: ignore[union-attr]
    assert out[10].kg == pytest.approx(-0.01)  # type: ignore[union-attr]


@pytest.mark.parametrize("line", [b"S S      1.2e3 kg", b"S S        nan kg", b"S S      1.234 st",
                                  b"X S 1 kg", b"S S", b"S Q 1.0 kg"])
def test_mtsics_rejects_bad_lines(line: bytes) -> None:
    core = MtSicsCore("L1")
    out = core.feed(line + b"\r\nS S      0.500 kg\r\n", 1.0)
    assert isinstance(out[0], Malformed) and out[1].kg == 0.5  # type: ignore[union-attr]


def test_mtsics_split_reads() -> None:
    out = bytewise(MtSicsCore("L1"), b"S D      0.9 kg\r\nS S      1.000 kg\r\n")
    assert [r.status for r in out] == ["dynamic", "stable"]  # type: ignore[attr-defined]


# -- Cubiscan ------------------------------------------------------------------------------

REPLY = b"\x02MAC,L 36.0,W 20.5,H 12.0cm,K 1.545,D 1.333kg,F0166,D\x03\r\n"


def test_cubiscan_reply_cm_kg() -> None:
    out = CubiscanCore("L1").feed(REPLY, 3.0)
    assert out == [DimsReading(3.0, "L1", ok=True, length_cm=36.0, width_cm=20.5,
                               height_cm=12.0, weight_kg=1.545, dim_weight_kg=1.333,
                               unit="cm", weight_unit="kg")]


def test_cubiscan_inches_pounds() -> None:
    r = CubiscanCore("L1").feed(b"\x02MAC,L 10.0,W 5.0,H 2.0in,K 3.0,D 1.2lb,F0166,D\x03\r\n",
                                1.0)[0]
    assert isinstance(r, DimsReading) and r.dims_cm == (25.4, 12.7, 5.08)
    assert r.weight_kg == pytest.approx(1.360777) and r.unit == "in" and r.weight_unit == "lb"


def test_cubiscan_mn_and_range_flags() -> None:
    core = CubiscanCore("L1")
    out = core.feed(b"\x02MN\x03\r\n\x02MAC,L ____,W 20.5,H ----cm,K ~~~~,D 1.3kg,F0166,D\x03\r\n",
                    1.0)
    assert out[0] == DimsReading(1.0, "L1", ok=False, flags=("MN",))
    r = out[1]
    assert isinstance(r, DimsReading) and not r.ok
    assert r.flags == ("L:under", "H:unstable", "K:over") and r.width_cm == 20.5
    assert r.dims_cm is None


def test_cubiscan_garbage_and_cut_frames_resync() -> None:
    core = CubiscanCore("L1")
    data = b"\xff\x13junk" + b"\x02MAC,L 36" + REPLY + b"\x02MAX,L 1\x03\r\n" + REPLY
    out = bytewise(core, data)
    assert len(good(out)) == 2
    assert sum(isinstance(x, Malformed) for x in out) >= 3
    assert core.counters()["replies"] == 2


# -- RFID ---------------------------------------------------------------------------------

def test_crc16_gen2_check_value() -> None:
    assert crc16_gen2(b"123456789") == 0xD64E  # CRC-16/GENIBUS check


def test_rfid_notice_with_7e_inside_epc_and_crc() -> None:
    epc = bytes.fromhex("E2007E7E0000BB7E00000001")
    f = notice(epc, rssi=-55)
    core = RfidCore("L1")
    out = bytewise(core, f + notice(bytes(12), rssi=-70))
    assert out[0] == RfidRead(1.0, "L1", epc.hex().upper(), -55, 0x3000)
    assert len(out) == 2 and core.malformed == 0


def test_rfid_bad_crc_and_checksum_counted() -> None:
    epc = bytes.fromhex("300833B2DDD9014000000000")
    f = bytearray(notice(epc))
    f[10] ^= 0x01  # a bit error in the EPC: the tag CRC no longer matches
    body = f[1:-2]
    f[-2] = sum(body) & 0xFF  # ... even though the frame checksum was fixed up
    core = RfidCore("L1")
    out = core.feed(bytes(f), 1.0)
    assert isinstance(out[0], Malformed) and core.bad_crc == 1
    g = bytearray(notice(epc))
    g[-2] ^= 0x55
    out = core.feed(bytes(g) + notice(epc), 2.0)
    assert [type(x).__name__ for x in out] == ["Malformed", "RfidRead"]
    assert core.bad_checksum == 1


def test_rfid_no_tag_response_and_commands() -> None:
    core = RfidCore("L1")
    assert core.feed(frame(0x01, 0xFF, b"\x15"), 1.0) == []
    assert core.no_tag == 1
    assert RfidCore.single_poll() == bytes.fromhex("BB00220000227E")
    assert RfidCore.multi_poll(10000) == bytes.fromhex("BB00270003222710837E")


def test_rfid_random_garbage_never_hides_more_than_one_frame() -> None:
    rng = random.Random(11)
    epcs = [bytes(rng.randrange(256) for _ in range(12)) for _ in range(200)]
    stream = bytearray()
    for epc in epcs:
        if rng.random() < 0.3:
            stream += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
        stream += notice(epc)
    core = RfidCore("L1")
    got: list[object] = []
    pos = 0
    while pos < len(stream):
        n = rng.randrange(1, 40)
        got += core.feed(bytes(stream[pos:pos + n]), 1.0)
        pos += n
    reads = [r.epc for r in got if isinstance(r, RfidRead)]
    assert reads == [e.hex().upper() for e in epcs]


def test_barcode_stale_partial_line_dropped_after_a_gap() -> None:
    core = BarcodeCore("L1", line_gap_s=0.1)
    assert core.feed(b"q7#", 1.0) == []  # the printable tail of a noise burst
    out = core.feed(b"]C1SF1234567890123\r\n", 1.5)
    assert isinstance(out[0], Malformed) and out[1] == ScanRead(1.5, "L1", "SF1234567890123",
                                                                "]C1")
    assert good(core.feed(b"SF12345", 2.0) + core.feed(b"67890123\r\n", 2.01)) == [
        ScanRead(2.01, "L1", "SF1234567890123")]
