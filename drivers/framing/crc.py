"""CRCs for binary framing (pure Python tables; binascii where it has one)."""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Callable


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection); '123456789' -> 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0); '123456789' -> 0x31C3."""
    return binascii.crc_hqx(data, 0)


def _modbus_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_MODBUS = _modbus_table()


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (reflected 0x8005, init 0xFFFF); '123456789' -> 0x4B37."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _MODBUS[(crc ^ b) & 0xFF]
    return crc


def crc32(data: bytes) -> int:
    """CRC-32 (zlib); '123456789' -> 0xCBF43926."""
    return zlib.crc32(data) & 0xFFFFFFFF


#: name -> (function, width in bytes)
CRCS: dict[str, tuple[Callable[[bytes], int], int]] = {
    "crc16-ccitt": (crc16_ccitt, 2),
    "crc16-xmodem": (crc16_xmodem, 2),
    "crc16-modbus": (crc16_modbus, 2),
    "crc32": (crc32, 4),
}
