"""Ed25519 signatures for everything that reaches the agent and changes what it does.

Downlink messages, watchlists, model packages and firmware images are signed by an
*issuer* off the box with a private key; the agent holds only issuer **public** keys
(``security.issuer_keys`` in the TOML), so nothing on a box can forge a signature.

Two layers, both small:

Raw Ed25519
    :func:`sign_ed25519` / :func:`verify_ed25519` over a byte string.
    ``verify_ed25519(payload, signature, keys) -> key_id`` returns the id of the key
    that verified, or raises :class:`~edge.errors.SignatureError` with the reason.

Detached signatures (what the other modules use)
    One ASCII line, ``afe-sig-v1 <key_id> <base64 signature>``: a ``<file>.sig``
    beside a file, or the first line of a downlink message (see
    :mod:`edge.downlink.envelope`). What is signed is not the content itself but
    ``b"afe-sig-v1\\n" + context + b"\\n" + sha256(content)``: the *context* (e.g.
    ``"downlink/config"``, ``"watchlist"``, ``"model"``, ``"firmware"``) stops a
    signature made for one purpose being replayed for another, and the digest lets a
    large file be verified while streaming it (bounded memory, one pass).
    :func:`sign_detached` makes the line, :func:`verify_detached` checks it.

Key ids are the first 16 hex digits of sha256 over the raw 32-byte public key, so an
id cannot be mislabelled in a config: it is derived from the key. Public keys are
written ``ed25519:<base64 of the 32 raw bytes>``; private keys are PKCS#8 PEM files
(mode 0600), made with ``edge-agent keys gen``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from edge.errors import SignatureError

__all__ = [
    "Ed25519PrivateKey", "Ed25519PublicKey", "DetachedSignature", "SignatureError",
    "generate_private_key", "key_id", "public_key_text", "parse_public_key",
    "trusted_keys", "save_private_key", "load_private_key",
    "sign_ed25519", "verify_ed25519", "sign_detached", "verify_detached",
    "MAGIC", "MAX_LINE",
]

MAGIC = "afe-sig-v1"
#: Longest detached-signature line accepted (magic, 16-hex id, 88 base64 chars).
MAX_LINE = 160
_PUB_PREFIX = "ed25519:"
_CHUNK = 1 << 20


# ----------------------------------------------------------------------------- keys


def generate_private_key() -> Ed25519PrivateKey:
    """A new random Ed25519 private key (the issuer keeps it; boxes never see it)."""
    return Ed25519PrivateKey.generate()


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(pub: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """16 lowercase hex digits identifying a key pair (sha256 of the raw public key)."""
    if isinstance(pub, Ed25519PrivateKey):
        pub = pub.public_key()
    return hashlib.sha256(_raw(pub)).hexdigest()[:16]


def public_key_text(pub: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """``ed25519:<base64>``, the form written in ``security.issuer_keys``."""
    if isinstance(pub, Ed25519PrivateKey):
        pub = pub.public_key()
    return _PUB_PREFIX + base64.b64encode(_raw(pub)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An ``ed25519:<base64>`` string (the prefix is optional) -> public key.
    Raises SignatureError saying what is wrong with it."""
    if not isinstance(text, str):
        raise SignatureError(f"public key must be a string, got {type(text).__name__}")
    body = text.strip()
    if body.startswith(_PUB_PREFIX):
        body = body[len(_PUB_PREFIX):]
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("public key is not valid base64 "
                             "(expected 'ed25519:<base64 of 32 bytes>')") from None
    if len(raw) != 32:
        raise SignatureError(f"public key has {len(raw)} bytes, an Ed25519 key has 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def trusted_keys(texts: Iterable[str]) -> dict[str, Ed25519PublicKey]:
    """``{key_id: public key}`` for a list of ``ed25519:...`` strings (the config's
    ``security.issuer_keys``). Raises SignatureError naming the bad entry."""
    keys: dict[str, Ed25519PublicKey] = {}
    for i, text in enumerate(texts):
        try:
            pub = parse_public_key(text)
        except SignatureError as exc:
            raise SignatureError(f"entry {i}: {exc.reason}") from None
        keys[key_id(pub)] = pub
    return keys


def save_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a private key as unencrypted PKCS#8 PEM, created with mode 0600
    (never overwrites an existing file: FileExistsError)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PEM private key written by :func:`save_private_key` (or openssl
    ``genpkey -algorithm ed25519``). Raises SignatureError if it is not one."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


# ----------------------------------------------------------------------------- raw


def sign_ed25519(payload: bytes, key: Ed25519PrivateKey) -> bytes:
    """The 64-byte Ed25519 signature of ``payload``."""
    return key.sign(payload)


def verify_ed25519(payload: bytes, signature: bytes, keys: Mapping[str, Ed25519PublicKey],
                   *, key_id: str | None = None) -> str:
    """The id of the key in ``keys`` whose signature ``signature`` is over ``payload``.

    With ``key_id`` only that key is tried (one verification: the cost an
    unauthenticated sender can cause is one hash of the payload). Raises
    SignatureError: no keys, unknown key id, wrong length, or no key verifies."""
    if not keys:
        raise SignatureError("no issuer keys configured (security.issuer_keys)")
    if len(signature) != 64:
        raise SignatureError(f"signature has {len(signature)} bytes, Ed25519 has 64")
    if key_id is not None:
        pub = keys.get(key_id)
        if pub is None:
            raise SignatureError(f"unknown key id '{_printable(key_id)}' (trusted: "
                                 f"{', '.join(sorted(keys))})")
        candidates: Iterable[tuple[str, Ed25519PublicKey]] = ((key_id, pub),)
    else:
        candidates = keys.items()
    for kid, pub in candidates:
        try:
            pub.verify(signature, payload)
        except InvalidSignature:
            continue
        return kid
    raise SignatureError("bad signature" + (f" for key {key_id}" if key_id else
                                            " (no trusted key verifies it)"))


# ----------------------------------------------------------------------------- detached


@dataclass(slots=True, frozen=True)
class DetachedSignature:
    """One ``afe-sig-v1 <key_id> <base64>`` line, parsed."""

    key_id: str
    signature: bytes

    def line(self) -> str:
        return f"{MAGIC} {self.key_id} {base64.b64encode(self.signature).decode('ascii')}"

    @classmethod
    def parse(cls, line: bytes | str) -> DetachedSignature:
        """Parse a signature line (trailing newline allowed); SignatureError if bad."""
        if isinstance(line, str):
            line = line.encode("utf-8", "replace")
        line = line.rstrip(b"\r\n")
        if len(line) > MAX_LINE:
            raise SignatureError(f"signature line longer than {MAX_LINE} bytes")
        parts = line.split(b" ")
        if len(parts) != 3 or parts[0] != MAGIC.encode():
            raise SignatureError(f"not a signature line (expected '{MAGIC} <key id> "
                                 "<base64>')")
        kid = parts[1]
        if len(kid) != 16 or any(c not in b"0123456789abcdef" for c in kid):
            raise SignatureError("key id must be 16 lowercase hex digits")
        try:
            sig = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("signature is not valid base64") from None
        if len(sig) != 64:
            raise SignatureError(f"signature has {len(sig)} bytes, Ed25519 has 64")
        return cls(kid.decode("ascii"), sig)


def _digest(content: bytes | Path) -> bytes:
    h = hashlib.sha256()
    if isinstance(content, (bytes, bytearray, memoryview)):
        h.update(content)
    else:
        with open(content, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.digest()


def _to_sign(context: str, digest: bytes) -> bytes:
    if not context or "\n" in context:
        raise ValueError("context must be a non-empty single line")
    return f"{MAGIC}\n{context}\n".encode() + digest


def sign_detached(content: bytes | Path, key: Ed25519PrivateKey, context: str) -> str:
    """The signature line for ``content`` (bytes, or a file read in chunks) under
    ``context``. Write it to ``<file>.sig`` or put it before a downlink message."""
    sig = sign_ed25519(_to_sign(context, _digest(content)), key)
    return DetachedSignature(key_id(key), sig).line()


def verify_detached(content: bytes | Path, signature: bytes | str | DetachedSignature,
                    keys: Mapping[str, Ed25519PublicKey], context: str) -> str:
    """The key id that signed ``content`` under ``context``, or SignatureError.

    The line is parsed and the key looked up *before* the content is hashed, so a
    message with a malformed signature or an unknown key costs nothing more."""
    sig = signature if isinstance(signature, DetachedSignature) else \
        DetachedSignature.parse(signature)
    if not keys:
        raise SignatureError("no issuer keys configured (security.issuer_keys)")
    if sig.key_id not in keys:
        raise SignatureError(f"unknown key id '{sig.key_id}' (trusted: "
                             f"{', '.join(sorted(keys))})")
    return verify_ed25519(_to_sign(context, _digest(content)), sig.signature, keys,
                          key_id=sig.key_id)


def _printable(s: str, limit: int = 40) -> str:
    s = "".join(c if c.isascii() and c.isprintable() else "?" for c in s[:limit])
    return s
