"""Police watchlists as data: typed entries, snapshots and deltas, O(1) matching.

An entry names one identifier of one *kind* — ``imsi``, ``iccid``, ``imei``,
``msisdn`` (also matched against callers and callees, SIP users and waybill phones:
all are phone numbers), ``ip`` (an address or a CIDR prefix), ``domain`` (matched
against DNS queries and TLS SNI, subdomains included), ``url``, ``waybill_phone``
(an alias of msisdn), ``sender_id`` — with the reason, the case reference, the issuer
and an expiry. The value is either clear (normalised as reports are) or already a
keyed pseudonym ``h1:...`` computed with the site key (:mod:`edge.report.pseudonym`),
so clear identifiers need not travel; prefixes and domains must be clear.

Lookups are O(1) per identifier: one dict probe per form (clear, pseudonym); an
address walks the prefix lengths present in the list, longest first (at most 33 or
129 probes, usually a handful); a domain walks its labels.

Updates (:func:`apply_update`) are pure: a *snapshot* replaces everything, a *delta*
adds and removes entries and must name the version it applies to (``base_version``);
versions only go up; an update past its own ``expires`` is refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

from edge.report.pseudonym import PREFIX, Pseudonymiser, normalise

KINDS = ("imsi", "iccid", "imei", "msisdn", "ip", "domain", "url", "waybill_phone",
         "sender_id")
_ALIAS = {"waybill_phone": "msisdn", "phone": "msisdn", "peer": "msisdn"}
#: pseudonym domain of each kind (the reporter's, so police lists and reports agree)
_PSEUDO_TYPE = {"imsi": "imsi", "iccid": "iccid", "imei": "imei", "msisdn": "phone",
                "ip": "ip", "sender_id": "sender_id", "domain": "domain", "url": "url"}
MAX_ENTRIES = 5_000_000


class Entry(NamedTuple):
    """One listed identifier (a tuple: a million of them load in well under a second)."""

    kind: str
    value: str            # normalised clear value, CIDR text, or "h1:..." pseudonym
    reason: str = ""
    case: str = ""
    issuer: str = ""
    expires: float | None = None
    list: str = "default"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "value": self.value}
        for k in ("reason", "case", "issuer", "list"):
            v = getattr(self, k)
            if v and not (k == "list" and v == "default"):
                d[k] = v
        if self.expires is not None:
            d["expires"] = self.expires
        return d


def canonical_kind(kind: str) -> str:
    return _ALIAS.get(kind, kind)


def entry_key(kind: str, value: str) -> tuple[str, str]:
    """(kind, normalised value) as entries are indexed."""
    kind = _ALIAS.get(kind, kind)
    if value.isdigit() and value.isascii():  # the common case, as feeds carry them
        if kind == "imei":
            return kind, value[:14]
        if kind != "msisdn" or not value.startswith("00"):
            return kind, value
    if value.startswith(PREFIX):
        return kind, value
    if kind == "ip":
        try:
            net = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            return kind, value.strip()
        return kind, str(net) if net.num_addresses > 1 else str(net.network_address)
    if kind in ("domain",):
        return kind, value.strip().lower().rstrip(".")
    if kind == "url":
        return kind, value.strip()
    return kind, normalise(_PSEUDO_TYPE.get(kind, kind), value)[1]


class _EntriesView(Mapping[tuple[str, str], "Entry"]):
    """All entries keyed by (kind, value), over the per-kind tables (no copy)."""

    def __init__(self, kinds: dict[str, dict[str, list[Any]]]) -> None:
        self._kinds = kinds

    def __getitem__(self, key: tuple[str, str]) -> Entry:
        return Entry(key[0], key[1], *self._kinds[key[0]][key[1]])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and \
            key[1] in self._kinds.get(key[0], {})

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for k, d in self._kinds.items():
            for v in d:
                yield k, v

    def __len__(self) -> int:
        return sum(len(d) for d in self._kinds.values())


@dataclass(slots=True)
class Watchlist:
    """The current lists: one table per kind (value -> the entry's other fields, a
    row: reason, case, issuer, expires, list), prefix tables, version. Rows, not
    objects: a stored million-entry list loads as orjson builds it, and an
    :class:`Entry` is made only for a hit."""

    version: int = 0
    kinds: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    _nets: dict[int, dict[int, dict[int, Entry]]] = field(default_factory=dict)
    _pseudo_kinds: set[str] = field(default_factory=set)
    _clear_kinds: set[str] = field(default_factory=set)  # holding values not pseudonyms
    _any: set[str] = field(default_factory=set)
    _n: int = 0
    updated: float = 0.0

    def __len__(self) -> int:
        return self._n

    @property
    def entries(self) -> _EntriesView:
        return _EntriesView(self.kinds)

    @classmethod
    def build(cls, version: int, entries: Iterable[Entry], updated: float = 0.0) -> Watchlist:
        wl = cls(version=version, updated=updated)
        kinds = wl.kinds
        for e in entries:
            d = kinds.get(e.kind)
            if d is None:
                d = kinds[e.kind] = {}
            d[e.value] = list(e[2:])
        wl._index()
        return wl

    def _index(self) -> None:
        """Derived tables: prefixes, kinds holding pseudonyms and kinds holding clear
        values, the count."""
        self._nets = {}
        self._pseudo_kinds = set()
        self._clear_kinds = set()
        self._any = {"any"} if self.kinds.get("any") else set()
        self._n = sum(len(d) for d in self.kinds.values())
        for kind, d in self.kinds.items():
            # in C, each stopping at the first that tells: one pass of 1 M values at
            # most (~20 ms)
            if any(map(str.startswith, d, repeat(PREFIX))):
                self._pseudo_kinds.add(kind)
            if not all(map(str.startswith, d, repeat(PREFIX))):
                self._clear_kinds.add(kind)
        for v, row in self.kinds.get("ip", {}).items():
            if "/" in v:
                version, plen, net = _network(v)
                self._nets.setdefault(version, {}).setdefault(plen, {})[net] = \
                    Entry("ip", v, *row)

    def exact(self, kind: str, value: str, pseudo: Pseudonymiser | None = None,
              now: float | None = None) -> Entry | None:
        """Fast path for identifiers as feeds carry them (ASCII digits already)."""
        d = self.kinds.get(kind)
        key = value
        row = d.get(value) if d is not None else None
        if row is None:
            if self._any or not (value.isdigit() and value.isascii()) or \
                    (kind == "imei" and len(value) > 14) or value.startswith("00"):
                return self.lookup(kind, value, pseudo, now)  # needs normalising
            if d is None or kind not in self._pseudo_kinds or pseudo is None:
                return None
            key = pseudo.pseudonym(_PSEUDO_TYPE.get(kind, kind), value)
            row = d.get(key)
            if row is None:
                return None
        if row[3] is not None and now is not None and now > row[3]:
            return None
        return Entry(kind, key, *row)

    def lookup(self, kind: str, value: str, pseudo: Pseudonymiser | None = None,
               now: float | None = None) -> Entry | None:
        """The entry matching an observed identifier (clear, as seen), or None."""
        if not self._n or not value:
            return None
        kind = canonical_kind(kind)
        if kind == "ip":
            hit = self._lookup_ip(value)
        elif kind == "domain":
            hit = self._lookup_domain(value)
        else:
            k, v = entry_key(kind, value)
            hit = self._get(k, v)
            if hit is None and pseudo is not None and k in self._pseudo_kinds:
                hit = self._get(k, pseudo.pseudonym(_PSEUDO_TYPE.get(k, k), value))
            if hit is None and self._any:
                hit = self._get("any", v)
                if hit is None and pseudo is not None:
                    hit = self._get("any", pseudo.pseudonym(_PSEUDO_TYPE.get(k, k), value))
        if hit is not None and hit.expires is not None and now is not None and now > hit.expires:
            return None
        return hit

    def _get(self, kind: str, value: str) -> Entry | None:
        row = self.kinds.get(kind, {}).get(value)
        return None if row is None else Entry(kind, value, *row)

    def _lookup_ip(self, value: str) -> Entry | None:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return None
        hit = self._get("ip", str(addr))
        if hit is not None:
            return hit
        fam = self._nets.get(addr.version)
        if not fam:
            return None
        bits = 32 if addr.version == 4 else 128
        a = int(addr)
        for plen in sorted(fam, reverse=True):
            net = a & (((1 << plen) - 1) << (bits - plen)) if plen else 0
            hit = fam[plen].get(net)
            if hit is not None:
                return hit
        return None

    def _lookup_domain(self, value: str) -> Entry | None:
        name = value.strip().lower().rstrip(".")
        while name:
            hit = self._get("domain", name)
            if hit is not None:
                return hit
            _, _, name = name.partition(".")
        return None


def _network(cidr: str) -> tuple[int, int, int]:
    """(IP version, prefix length, network as int) of a CIDR: IPv4 by hand (a stored
    list holds its prefixes canonical, and ``ipaddress`` costs ~5 us each), the rest
    and anything unusual by ``ipaddress``."""
    addr, _, plen = cidr.partition("/")
    parts = addr.split(".")
    if len(parts) == 4 and plen.isdigit() and all(p.isdigit() and len(p) <= 3 for p in parts):
        n = int(plen)
        a = (int(parts[0]) << 24) | (int(parts[1]) << 16) | (int(parts[2]) << 8) | int(parts[3])
        if n <= 32 and a < 1 << 32 and all(int(p) < 256 for p in parts):
            return 4, n, a & (((1 << n) - 1) << (32 - n)) if n else 0
    net = ipaddress.ip_network(cidr, strict=False)
    return net.version, net.prefixlen, int(net.network_address)


class UpdateError(ValueError):
    """A watchlist update refused; the message says why (it goes into the ack)."""


def parse_entry(raw: Any, default_kind: str | None, now: float) -> Entry:
    if isinstance(raw, str):
        if default_kind in (None, "any"):
            # the first format: bare identifiers for every call-plane field
            return Entry("any", raw.strip() if raw.startswith(PREFIX)
                         else normalise("phone", raw)[1] if raw.strip().lstrip("+").isdigit()
                         else raw.strip())
        raw = {"kind": default_kind, "value": raw}
    if not isinstance(raw, Mapping):
        raise UpdateError("an entry must be an object or a string")
    kind = canonical_kind(str(raw.get("kind", default_kind or "")))
    if kind not in KINDS:
        raise UpdateError(f"unknown entry kind {kind!r} (known: {', '.join(KINDS)})")
    value = raw.get("value")
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise UpdateError("an entry's value must be a string of 1-256 characters")
    if kind == "ip" and not value.startswith(PREFIX):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise UpdateError(f"not an IP address or prefix: {value[:60]!r}") from None
    if kind in ("domain",) and value.startswith(PREFIX):
        raise UpdateError("domains are matched by suffix and must be clear")
    exp = raw.get("expires")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, (int, float))
                            or not exp == exp):
        raise UpdateError("expires must be an epoch number")
    k, v = entry_key(kind, value)
    text = {f: str(raw.get(f, ""))[:200] for f in ("reason", "case", "issuer")}
    return Entry(k, v, text["reason"], text["case"], text["issuer"],
                 None if exp is None else float(exp), str(raw.get("list", "default"))[:64])


def apply_update(current: Watchlist, body: Mapping[str, Any], now: float) -> Watchlist:
    """The watchlist after ``body`` (a snapshot or a delta); UpdateError if refused."""
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UpdateError("version must be a positive integer")
    if version <= current.version:
        raise UpdateError(f"version {version} is not newer than the current version "
                          f"{current.version} (out of order or replayed)")
    exp = body.get("expires")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and now > exp:
        raise UpdateError(f"the update expired at {exp} (now {now:.0f}): refused")
    kind = body.get("type", "snapshot")
    default_kind = body.get("id_type")
    if kind == "snapshot":
        entries = [parse_entry(r, default_kind, now) for r in body.get("entries", [])]
        if len(entries) > MAX_ENTRIES:
            raise UpdateError(f"more than {MAX_ENTRIES} entries")
        return Watchlist.build(version, (e for e in entries
                                         if e.expires is None or e.expires > now), now)
    if kind != "delta":
        raise UpdateError("type must be 'snapshot' or 'delta'")
    base = body.get("base_version")
    if base != current.version:
        raise UpdateError(f"delta applies to version {base}, the current version is "
                          f"{current.version}: send the missing deltas or a snapshot")
    merged = {k: dict(d) for k, d in current.kinds.items()}
    for r in body.get("remove", []):
        if not isinstance(r, Mapping):
            raise UpdateError("a removal must be an object with kind and value")
        k, v = entry_key(str(r.get("kind", "")), str(r.get("value", "")))
        merged.get(k, {}).pop(v, None)
    for r in body.get("add", []):
        e = parse_entry(r, default_kind, now)
        merged.setdefault(e.kind, {})[e.value] = list(e[2:])
    wl = Watchlist(version=version, kinds={k: d for k, d in merged.items() if d}, updated=now)
    wl._index()
    if len(wl) > MAX_ENTRIES:
        raise UpdateError(f"more than {MAX_ENTRIES} entries")
    return wl


def expire(wl: Watchlist, now: float) -> int:
    """Drop expired entries in place; how many went."""
    gone = [(k, v) for k, d in wl.kinds.items() for v, row in d.items()
            if row[3] is not None and row[3] <= now]
    for k, v in gone:
        del wl.kinds[k][v]
    if gone:
        wl._index()
    return len(gone)
