"""Chunked image transfer (firmware or config), sans-IO, both ends.

:class:`ImageUpload` is the agent's side: IMAGE_OFFER, then IMAGE_CHUNKs from the
offset the device asks for, at most ``window`` unconfirmed, go-back-N after
``timeout_s`` without an IMAGE_STATUS, IMAGE_QUERY after the link came back (a
reboot) to resume where the device's flash is. :class:`ImageReceiver` is the device's
side (the reference for the C implementation; the simulated firmware runs it): it
checks each chunk's CRC-32C and offset, keeps what it has in "flash" across reboots,
and when the image is complete checks its SHA-256 and the Ed25519 signature before
it reports ``done``.

What is signed is the detached-signature payload of :mod:`edge.security.signing`:
``b"afe-sig-v1\\n" + context + b"\\n" + sha256(image)`` with context ``firmware`` or
``config`` (the image kind), by an issuer key; the offer carries the 8 bytes of the key
id and the 64-byte signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.errors import SignatureError
from edge.security.signing import DetachedSignature, Ed25519PublicKey, verify_detached
from firmware_bridge import messages as M
from firmware_bridge.schema import crc32c

MAX_IMAGE = 16 << 20


def offer_for(image_id: int, image: bytes, signature_line: str, kind: str = "firmware",
              chunk_size: int = 256) -> M.ImageOffer:
    """The IMAGE_OFFER of ``image`` with its detached signature line."""
    sig = DetachedSignature.parse(signature_line)
    return M.ImageOffer(image_id, M.IMAGE_KINDS.index(kind), len(image), chunk_size,
                        hashlib.sha256(image).digest(), bytes.fromhex(sig.key_id),
                        sig.signature)


def verify_image(image: bytes, offer: M.ImageOffer,
                 keys: Mapping[str, Ed25519PublicKey]) -> str:
    """The key id that signed ``image`` as described by ``offer``; SignatureError."""
    if offer.kind >= len(M.IMAGE_KINDS):
        raise SignatureError(f"unknown image kind {offer.kind}")
    sig = DetachedSignature(offer.key_id.hex(), offer.signature)
    return verify_detached(image, sig, keys, M.IMAGE_KINDS[offer.kind])


# --------------------------------------------------------------------------- agent side


@dataclass
class ImageUpload:
    """Drives one upload. Feed it IMAGE_STATUS messages (:meth:`on_status`), call
    :meth:`poll` on every turn and send what both return; :meth:`link_up` after the
    link (re)negotiated. ``result`` is set when finished: "done" or the failure."""

    offer: M.ImageOffer
    image: bytes
    window: int = 4
    timeout_s: float = 0.5
    max_stalls: int = 20
    confirmed: int = 0
    next_send: int = 0
    result: str | None = None
    reason: str = ""
    chunks_sent: int = 0
    bytes_sent: int = 0
    resumes: int = 0
    _last_progress: float = 0.0
    _stalls: int = 0
    _offered: bool = False
    _link_up: bool = False

    def start(self, now: float) -> list[Any]:
        self._offered, self._last_progress = True, now
        return [self.offer]

    def link_up(self, now: float) -> list[Any]:
        """After a (re)negotiation: ask where the device is."""
        self._link_up = True
        self._last_progress = now
        if not self._offered or self.result is not None:
            return []
        self.next_send = self.confirmed  # anything in flight was lost with the link
        return [M.ImageQuery(self.offer.image_id)]

    def on_status(self, st: M.ImageStatus, now: float) -> list[Any]:
        if st.image_id != self.offer.image_id or self.result is not None:
            return []
        if st.state == M.IMG_DONE:
            self.result = "done"
            self.confirmed = self.offer.size
            return []
        if st.state == M.IMG_UNKNOWN:  # the device lost the offer: offer again
            return [self.offer]
        if st.state != M.IMG_RECEIVING:
            self.result = M.IMAGE_STATES[st.state] if st.state < len(M.IMAGE_STATES) \
                else f"state {st.state}"
            self.reason = st.reason
            return []
        if not 0 <= st.next_offset <= self.offer.size:
            self.result, self.reason = "failed", f"device asked for offset {st.next_offset}"
            return []
        off = st.next_offset
        if off > self.confirmed:
            self._last_progress, self._stalls = now, 0
        elif self.next_send > off:
            # no progress: the device dropped a chunk (bad CRC, out of order, lost
            # frame, reboot): go back to where it is
            self.next_send = off
            self.resumes += 1
        self.confirmed = off
        self.next_send = max(self.next_send, off)
        return self._chunks()

    def _chunks(self) -> list[Any]:
        out = []
        cs = self.offer.chunk_size
        while self.next_send < self.offer.size and \
                self.next_send < self.confirmed + self.window * cs:
            data = self.image[self.next_send:self.next_send + cs]
            out.append(M.ImageChunk(self.offer.image_id, self.next_send, crc32c(data), data))
            self.next_send += len(data)
            self.chunks_sent += 1
            self.bytes_sent += len(data)
        return out

    def poll(self, now: float) -> list[Any]:
        if self.result is not None or not self._offered:
            return []
        if now - self._last_progress > self.timeout_s:
            self._stalls += 1
            self._last_progress = now
            if self._stalls > self.max_stalls:
                self.result, self.reason = "failed", "no progress"
                return []
            self.next_send = self.confirmed
            return [M.ImageQuery(self.offer.image_id)]
        return []


# --------------------------------------------------------------------------- device side


@dataclass
class Flash:
    """What survives a reboot: the offer and the bytes received so far."""

    offer: M.ImageOffer | None = None
    data: bytearray = field(default_factory=bytearray)
    done: bool = False


class ImageReceiver:
    def __init__(self, keys: Mapping[str, Ed25519PublicKey], flash: Flash | None = None,
                 max_size: int = MAX_IMAGE) -> None:
        self.keys = keys
        self.flash = flash or Flash()
        self.max_size = max_size
        self.bad_chunks = 0
        self.verified_by: str | None = None
        self.state = M.IMG_RECEIVING

    def _status(self, state: int, reason: str = "") -> M.ImageStatus:
        f = self.flash
        return M.ImageStatus(f.offer.image_id if f.offer else 0, len(f.data), state,
                             reason[:120])

    def handle(self, msg: Any) -> M.ImageStatus | None:
        f = self.flash
        if isinstance(msg, M.ImageOffer):
            if msg.size > self.max_size or msg.chunk_size == 0:
                return M.ImageStatus(msg.image_id, 0, M.IMG_REFUSED,
                                     f"size {msg.size} / chunk {msg.chunk_size} refused")
            if f.offer is not None and f.offer == msg:  # the same image again: resume
                return self._status(M.IMG_DONE if f.done else self.state)
            self.flash = Flash(offer=msg)
            self.state = M.IMG_RECEIVING
            return self._status(M.IMG_RECEIVING)
        if isinstance(msg, M.ImageQuery):
            if f.offer is None or f.offer.image_id != msg.image_id:
                return M.ImageStatus(msg.image_id, 0, M.IMG_UNKNOWN, "no such image")
            return self._status(M.IMG_DONE if f.done else self.state)
        if isinstance(msg, M.ImageChunk):
            if f.offer is None or f.offer.image_id != msg.image_id:
                return M.ImageStatus(msg.image_id, 0, M.IMG_UNKNOWN, "no such image")
            if f.done:
                return self._status(M.IMG_DONE)
            if crc32c(msg.data) != msg.crc:
                self.bad_chunks += 1
                return self._status(M.IMG_RECEIVING, f"chunk at {msg.offset}: bad CRC")
            if msg.offset != len(f.data):  # out of order: say where to continue
                return self._status(M.IMG_RECEIVING)
            if len(f.data) + len(msg.data) > f.offer.size:
                return self._status(M.IMG_RECEIVING, "chunk beyond the image size")
            f.data += msg.data
            if len(f.data) < f.offer.size:
                return self._status(M.IMG_RECEIVING)
            return self._complete()
        return None

    def _complete(self) -> M.ImageStatus:
        f = self.flash
        assert f.offer is not None
        image = bytes(f.data)
        if hashlib.sha256(image).digest() != f.offer.sha256:
            self.state = M.IMG_BAD_HASH
            f.data.clear()  # start over on the next offer
            return M.ImageStatus(f.offer.image_id, 0, M.IMG_BAD_HASH, "SHA-256 differs")
        try:
            self.verified_by = verify_image(image, f.offer, self.keys)
        except SignatureError as exc:
            self.state = M.IMG_BAD_SIGNATURE
            return M.ImageStatus(f.offer.image_id, len(f.data), M.IMG_BAD_SIGNATURE,
                                 exc.reason)
        f.done = True
        self.state = M.IMG_DONE
        return self._status(M.IMG_DONE)
