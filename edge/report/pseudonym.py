"""Keyed pseudonyms for personal identifiers (IMSI, IMEI, phone numbers, ids, IPs).

Scheme (documented in the README so that an authority holding the site key can
match identifiers it already knows):

    pseudonym = "h1:" + hex(HMAC-SHA256(key, domain + ":" + normalised))[:32]

The *domain* groups identifier types that name the same thing, so a phone number
matches whether it appeared as an MSISDN, a B-number or a waybill sender phone:

    imsi   -> "imsi"   digits only
    imei   -> "imei"   first 14 digits (TAC + serial: IMEI and IMEISV match)
    msisdn, phone, peer, sender_phone, receiver_phone -> "phone"
                       digits only, a leading "00" or "+" dropped, a leading
                       national "0" kept (numbers are matched as written)
    ip     -> "ip"     canonical text form (ipaddress module)
    other personal types -> their own name, value stripped

Optional fleet-scoped pseudonym (``[privacy] fleet_key_file``; docs/fleet-pseudonyms.md):
every box of one operator holds the same fleet key and adds, beside the per-site
pseudonym, ``fleet_id = "f1:" + hex(HMAC-SHA256(fleet_key, "fleet:" + domain + ":" +
normalised))[:32]`` to each pseudonymised subject, so the collector can tell the same
SIM, device or endpoint across sites without ever seeing it in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import ipaddress
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

PREFIX = "h1:"
FLEET_PREFIX = "f1:"
DEFAULT_PERSONAL_TYPES = frozenset(
    {"imsi", "imei", "msisdn", "phone", "peer", "sender_phone", "receiver_phone",
     "sender_id", "ip", "endpoint", "iccid"}
)
_DOMAIN = {"msisdn": "phone", "peer": "phone", "sender_phone": "phone",
           "receiver_phone": "phone", "endpoint": "ip"}


def normalise(id_type: str, value: str) -> tuple[str, str]:
    """(domain, normalised value) for an identifier of the given type."""
    domain = _DOMAIN.get(id_type, id_type)
    v = value.strip()
    if domain in ("imsi", "imei", "phone", "iccid"):
        digits = "".join(c for c in v if "0" <= c <= "9")  # ASCII only
        if domain == "phone":
            if v.startswith("+"):
                pass
            elif digits.startswith("00"):
                digits = digits[2:]
        if domain == "imei":
            digits = digits[:14]
        return domain, digits or v
    if domain == "ip":
        host, sep, port = v.rpartition(":") if v.count(":") == 1 else (v, "", "")
        try:
            canon = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            return domain, v
        return domain, canon + (sep + port if sep else "")
    return domain, v


def _small_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (the one ``hashlib`` falls back on): for inputs of a block
    or two its ``copy`` is a struct copy, ~35 % cheaper a hash than OpenSSL's, whose
    context copies allocate. Same digests (a test compares with ``hmac``)."""
    for name in ("_sha2", "_sha256"):  # 3.12+, 3.11
        try:
            return importlib.import_module(name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_KEYED: list[Any] = []  # the C hasher's type (None: not built), once looked for


def _keyed_in_c() -> Any:
    """The C ``Keyed`` type of the compiled build, or None (see edge/native.py)."""
    if not _KEYED:
        from edge import native

        module = native.extension("edge.report._keyed_sha256")
        _KEYED.append(getattr(module, "Keyed", None))
    return _KEYED[0]


class Pseudonymiser:
    """Replaces personal identifiers with keyed HMACs. Cheap: results are memoised."""

    def __init__(self, key: bytes, personal_types: frozenset[str] = DEFAULT_PERSONAL_TYPES,
                 cache_size: int = 200_000, fleet_key: bytes | None = None) -> None:
        if len(key) < 16:
            raise ConfigError("privacy key must be at least 16 bytes", key="privacy.key")
        if fleet_key is not None and (len(fleet_key) < 16 or fleet_key == key):
            raise ConfigError("the fleet key must be at least 16 bytes and differ from the "
                              "site key", key="privacy.fleet_key_file")
        self._key = key
        # the keyed state after the key block: copying it is half the cost of hmac.new
        self._hmac0 = hmac.new(key, digestmod=hashlib.sha256)
        self._fleet_key = fleet_key
        self.personal_types = personal_types
        self._cache: dict[tuple[str, str], str] = {}
        self._cache_size = cache_size

    def is_personal(self, id_type: str) -> bool:
        return id_type in self.personal_types

    def pseudonym(self, id_type: str, value: str) -> str:
        k = (id_type, value)
        hit = self._cache.get(k)
        if hit is not None:
            return hit
        out = self.of_normalised(*normalise(id_type, value))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[k] = out
        return out

    def of_normalised(self, domain: str, norm: str) -> str:
        """The pseudonym of an identifier already normalised for its domain (not
        memoised: for callers that memoise themselves, e.g. the watchlist matcher)."""
        h = self._hmac0.copy()
        h.update(f"{domain}:{norm}".encode())
        return PREFIX + h.hexdigest()[:32]

    def hasher(self, domain: str) -> Callable[[str], str]:
        """A function ``norm -> of_normalised(domain, norm)`` for callers that hash many
        identifiers of one domain (the watchlist matcher: one per distinct number seen).
        HMAC-SHA256 spelled out over hashlib states prepared once (RFC 2104: the key
        block XOR ipad, with ``domain:`` already fed in, and XOR opad), so a value costs
        two state copies and two short updates in C: about 40 % less than copying an
        ``hmac`` object, which wraps the same two states in Python. With the compiled
        build (edge/native.py) the same steps run in one C call over OpenSSL's SHA-256
        (``_keyed_sha256.c``): about a fifth of that again."""
        keyed = _keyed_in_c()
        if keyed is not None:
            in_c: Callable[[str], str] = keyed(self._key, f"{domain}:".encode(), PREFIX, 32)
            return in_c
        key = self._key
        if len(key) > 64:  # SHA-256's block: longer keys are hashed first
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        sha256 = _small_sha256()
        inner = sha256(bytes(b ^ 0x36 for b in key))
        inner.update(f"{domain}:".encode())
        outer = sha256(bytes(b ^ 0x5C for b in key))
        icopy, ocopy = inner.copy, outer.copy

        def pseudonym_of(norm: str) -> str:
            i = icopy()
            i.update(norm.encode())
            o = ocopy()
            o.update(i.digest())
            return PREFIX + o.hexdigest()[:32]

        return pseudonym_of

    @property
    def has_fleet_key(self) -> bool:
        return self._fleet_key is not None

    def fleet_pseudonym(self, id_type: str, value: str) -> str | None:
        """The fleet-scoped pseudonym, or None without a fleet key (not memoised: only
        subjects of reports take it, a few per detection)."""
        if self._fleet_key is None:
            return None
        domain, norm = normalise(id_type, value)
        msg = f"fleet:{domain}:{norm}".encode()
        return FLEET_PREFIX + hmac.new(self._fleet_key, msg, hashlib.sha256).hexdigest()[:32]

    def apply(self, id_type: str, value: str) -> tuple[str, bool]:
        """(identifier as it may leave the device, whether it was pseudonymised)."""
        if id_type in self.personal_types:
            return self.pseudonym(id_type, value), True
        return value, False


def load_fleet_key(key_file: Path | None) -> bytes | None:
    """The optional fleet key (never created on the box: the operator distributes it)."""
    if key_file is None:
        return None
    try:
        raw = key_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read fleet key file: {exc}",
                          key="privacy.fleet_key_file") from None
    if len(raw) < 16:
        raise ConfigError("fleet key file holds fewer than 16 bytes",
                          key="privacy.fleet_key_file")
    return raw


def load_key(key: str | None, key_file: Path | None, data_dir: Path) -> bytes:
    """The site key from config, from a key file, or created once under data_dir."""
    if key is not None:
        return key.encode()
    if key_file is not None:
        try:
            raw = key_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read key file: {exc}", key="privacy.key_file") from None
        if len(raw) < 16:
            raise ConfigError("key file holds fewer than 16 bytes", key="privacy.key_file")
        return raw
    path = data_dir / "privacy.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    new = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(new + b"\n")
    return new
