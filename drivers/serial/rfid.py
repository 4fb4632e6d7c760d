"""UHF RFID reader protocol core, M100 / JRD-4035 frames (field-formats 2d).

In: bytes from the reader and the time they arrived. Out: ``RfidRead`` for every
inventory notice whose frame checksum and tag CRC-16 verify, ``Malformed`` for
frames that fail either check and for noise. Commands out: ``single_poll()``,
``multi_poll(count)``, ``stop()``.

Frame: ``BB | type | cmd | PL (2, big-endian) | params (PL) | checksum | 7E``; the
checksum is the low byte of the sum of type..params. Frames are cut by their length
field, never by searching for ``7E``: that byte can occur inside an EPC, a CRC or a
checksum. A candidate frame that fails (bad type, absurd length, wrong end byte or
checksum) costs one byte: the core resynchronises on the next ``BB`` after the
candidate's start, so garbage never hides the frame behind it.

Inventory notices (type 02, cmd 22) carry RSSI (1), PC (2), EPC (PL-5), CRC (2).
The CRC is the tag's own EPC Gen2 CRC-16 over PC+EPC (CRC-16/GENIBUS: poly 0x1021,
init 0xFFFF, output inverted): a cross-talk or bit error in the air shows up here.
The reader answers an inventory that found nothing with an error response (type 01,
cmd FF, code 15), counted as ``no_tag``.
"""

from __future__ import annotations

from edge.courier.records import RfidRead
from edge.records import Malformed

HEADER, END = 0xBB, 0x7E
T_CMD, T_RESP, T_NOTICE = 0x00, 0x01, 0x02
CMD_INVENTORY, CMD_MULTI, CMD_STOP, CMD_ERROR = 0x22, 0x27, 0x28, 0xFF
# Longest params a candidate frame may claim. An inventory notice is at most
# 1 + 2 + 62 (a 496-bit EPC) + 2; the responses this driver asks for are short. A
# tight bound matters: a false header in garbage makes the core wait for PL bytes
# before it can reject the candidate and find the real frames behind it.
MAX_PL_NOTICE = 67
MAX_PL_RESPONSE = 64


def crc16_gen2(data: bytes) -> int:
    """EPC Class-1 Gen-2 CRC-16 of ``data`` (what a tag stores after PC+EPC)."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc ^ 0xFFFF


def frame(ftype: int, cmd: int, params: bytes = b"") -> bytes:
    """One complete M100 frame."""
    body = bytes([ftype, cmd, len(params) >> 8, len(params) & 0xFF]) + params
    return bytes([HEADER]) + body + bytes([sum(body) & 0xFF, END])


def notice(epc: bytes, rssi: int = -60, pc: int | None = None) -> bytes:
    """An inventory notice for one tag (what the reader sends; used by simulators)."""
    if pc is None:
        pc = (len(epc) // 2) << 11 | 0x0000
    pcb = pc.to_bytes(2, "big")
    crc = crc16_gen2(pcb + epc).to_bytes(2, "big")
    return frame(T_NOTICE, CMD_INVENTORY, bytes([rssi & 0xFF]) + pcb + epc + crc)


def _plausible(ftype: int, cmd: int, pl: int) -> bool:
    if ftype == T_NOTICE:
        return cmd == CMD_INVENTORY and 7 <= pl <= MAX_PL_NOTICE
    return ftype in (T_CMD, T_RESP) and pl <= MAX_PL_RESPONSE


class RfidCore:
    """Sans-IO: ``feed(data, ts) -> [RfidRead | Malformed]``."""

    def __init__(self, lane: str, *, source: str = "rfid") -> None:
        self.lane = lane
        self.source = source
        self._buf = bytearray()
        self._start = 0
        self.tags = 0
        self.no_tag = 0
        self.responses = 0
        self.bad_checksum = 0
        self.bad_crc = 0
        self.malformed = 0

    @staticmethod
    def single_poll() -> bytes:
        return frame(T_CMD, CMD_INVENTORY)

    @staticmethod
    def multi_poll(count: int = 10000) -> bytes:
        return frame(T_CMD, CMD_MULTI, bytes([0x22]) + count.to_bytes(2, "big"))

    @staticmethod
    def stop() -> bytes:
        return frame(T_CMD, CMD_STOP)

    def feed(self, data: bytes, ts: float) -> list[RfidRead | Malformed]:
        out: list[RfidRead | Malformed] = []
        buf = self._buf
        buf += data
        noise_from = -1  # start of a run of skipped bytes, reported as one record
        while buf:
            if buf[0] != HEADER:
                nxt = buf.find(HEADER)
                n = len(buf) if nxt < 0 else nxt
                if noise_from < 0:
                    noise_from = self._start
                self._consume(n)
                continue
            if len(buf) < 5:
                break
            pl = buf[3] << 8 | buf[4]
            if not _plausible(buf[1], buf[2], pl):
                noise_from = self._start if noise_from < 0 else noise_from
                self._consume(1)
                continue
            total = 7 + pl
            if len(buf) < total:
                break
            if buf[total - 1] != END or sum(buf[1:5 + pl]) & 0xFF != buf[5 + pl]:
                # a false header inside garbage, or a damaged frame: skip one byte only
                if buf[total - 1] == END:
                    self.bad_checksum += 1
                noise_from = self._start if noise_from < 0 else noise_from
                self._consume(1)
                continue
            if noise_from >= 0:
                out.append(self._bad(noise_from, f"noise ({self._start - noise_from} bytes)",
                                     ts))
                noise_from = -1
            rec = self._decode(bytes(buf[:total]), self._start, ts)
            self._consume(total)
            if rec is not None:
                out.append(rec)
        if noise_from >= 0:
            out.append(self._bad(noise_from, f"noise ({self._start - noise_from} bytes)", ts))
        return out

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._start += n

    def _bad(self, offset: int, reason: str, ts: float) -> Malformed:
        self.malformed += 1
        return Malformed(self.source, f"byte {offset}", reason, ts)

    def _decode(self, f: bytes, offset: int, ts: float) -> RfidRead | Malformed | None:
        ftype, cmd, params = f[1], f[2], f[5:-2]
        if ftype == T_NOTICE and cmd == CMD_INVENTORY:
            if len(params) < 7 or (len(params) - 5) % 2:
                return self._bad(offset, f"inventory notice of {len(params)} bytes", ts)
            rssi = params[0] - 256 if params[0] > 127 else params[0]
            pc = params[1] << 8 | params[2]
            epc = params[3:-2]
            crc = params[-2] << 8 | params[-1]
            if crc16_gen2(params[1:-2]) != crc:
                self.bad_crc += 1
                return self._bad(offset, "tag CRC-16 mismatch", ts)
            if (pc >> 11) * 2 != len(epc):
                return self._bad(offset, f"PC says {(pc >> 11) * 2} EPC bytes, frame has "
                                 f"{len(epc)}", ts)
            self.tags += 1
            return RfidRead(ts, self.lane, epc.hex().upper(), rssi, pc)
        if ftype == T_RESP and cmd == CMD_ERROR:
            if params[:1] == b"\x15":
                self.no_tag += 1
            else:
                self.responses += 1
            return None
        self.responses += 1  # command acknowledgements: nothing to pass on
        return None

    def counters(self) -> dict[str, int | float]:
        return {"tags": self.tags, "no_tag": self.no_tag, "responses": self.responses,
                "bad_checksum": self.bad_checksum, "bad_crc": self.bad_crc,
                "malformed": self.malformed}
