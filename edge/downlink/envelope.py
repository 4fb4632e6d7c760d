"""Signed downlink messages: one signature line, then the JSON body (sans-IO).

    afe-sig-v1 <key id> <base64 Ed25519 signature>\\n
    {"id": "...", "version": 8, ...}

The signature is a detached signature (:mod:`edge.security.signing`) over the body
bytes exactly as sent, under the context ``downlink/<kind>`` (so a signed command
cannot be replayed as a config update). It is checked *before* the body is parsed:
a message without a valid signature costs a size check, a line split and, only if
its key id is trusted, one sha256 over at most the size limit and one Ed25519
verification; no JSON, no schema. :func:`seal` is what an issuer (fleet server,
``edge-agent keys``) calls to make a message.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.errors import SignatureError
from edge.security.signing import (
    MAGIC,
    MAX_LINE,
    DetachedSignature,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    sign_detached,
    verify_detached,
)

_PREFIX = MAGIC.encode() + b" "


def context(kind: str) -> str:
    return f"downlink/{kind}"


def seal(kind: str, body: bytes, key: Ed25519PrivateKey) -> bytes:
    """The payload to publish on ``.../down/<kind>``: signature line + body."""
    return sign_detached(body, key, context(kind)).encode() + b"\n" + body


def split(payload: bytes) -> tuple[bytes | None, bytes]:
    """(signature line or None, body). Only the first MAX_LINE bytes are looked at."""
    if not payload.startswith(_PREFIX):
        return None, payload
    cut = payload.find(b"\n", 0, MAX_LINE + 1)
    if cut < 0:
        return payload[:MAX_LINE + 1], b""
    return payload[:cut], payload[cut + 1:]


def open_sealed(kind: str, payload: bytes, keys: Mapping[str, Ed25519PublicKey]
                ) -> tuple[str, bytes]:
    """(key id, body) of a correctly signed message; SignatureError with the reason."""
    line, body = split(payload)
    if line is None:
        raise SignatureError(f"signature required: the message must start with a "
                             f"'{MAGIC} <key id> <base64>' line")
    sig = DetachedSignature.parse(line)
    return verify_detached(body, sig, keys, context(kind)), body
