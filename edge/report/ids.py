"""ULID report ids: 48-bit millisecond time + 80 bits, Crockford base32, sortable.

In replay the 80 bits are derived from (agent, boot id, counter) so the same
inputs give the same ids; live agents use a random boot id so ids never repeat.
"""

from __future__ import annotations

import hashlib

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def encode_ulid(ms: int, rand80: int) -> str:
    value = (max(0, min(ms, (1 << 48) - 1)) << 80) | (rand80 & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class IdFactory:
    def __init__(self, namespace: str) -> None:
        self._ns = namespace.encode()
        self._counter = 0

    def next(self, ts: float) -> str:
        self._counter += 1
        h = hashlib.blake2b(self._ns + self._counter.to_bytes(8, "big"), digest_size=10)
        return encode_ulid(int(ts * 1000), int.from_bytes(h.digest(), "big"))
