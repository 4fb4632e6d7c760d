"""Sans-IO framers: bytes in (any chunking), complete frames or counted errors out.

:class:`LineFramer` (a configurable terminator, e.g. barcode scanners and scales),
:class:`StxEtxFramer` (STX payload ETX [BCC], common on industrial controllers),
:class:`LengthCrcFramer` (sync, length, payload, CRC: binary links such as the
firmware bridge). Each has ``encode(payload)`` for the sending side.
"""

from drivers.framing.base import FrameError, Framer
from drivers.framing.crc import CRCS, crc16_ccitt, crc16_modbus
from drivers.framing.lengthcrc import LengthCrcFramer
from drivers.framing.line import LineFramer
from drivers.framing.stxetx import StxEtxFramer

__all__ = ["CRCS", "FrameError", "Framer", "LengthCrcFramer", "LineFramer",
           "StxEtxFramer", "crc16_ccitt", "crc16_modbus"]
