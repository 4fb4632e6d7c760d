"""HMAC-SHA256 signatures of downlink messages.

The signature covers the message's canonical JSON without its ``sig`` field: keys
sorted, no whitespace, UTF-8 (what ``orjson.dumps(body, option=OPT_SORT_KEYS)``
gives). ``sig`` is the lowercase hex digest. The sender signs with the same key the
agent has in ``downlink.watchlist_key`` (watchlists) or ``downlink.command_key``
(config updates and commands).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson


def canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in body.items() if k != "sig"},
                        option=orjson.OPT_SORT_KEYS)


def sign(body: dict[str, Any], key: str | bytes) -> str:
    """The ``sig`` value for a message body."""
    k = key.encode() if isinstance(key, str) else key
    return hmac.new(k, canonical(body), hashlib.sha256).hexdigest()


def verify(body: dict[str, Any], key: str | bytes) -> str | None:
    """None when the signature is valid, else the reason it is not."""
    sig = body.get("sig")
    if not isinstance(sig, str):
        return "signature required (field 'sig')"
    if not hmac.compare_digest(sig.lower(), sign(body, key)):
        return "bad signature"
    return None
