"""Cross-site correlation: reports that share an identifier become one case.

A *key* is what two reports must share to be about the same thing, computed from
what the boxes sent, never from clear identifiers:

- a fleet-scoped pseudonym (``fleet_id``, ``f1:...``) matches across every site;
- a per-site pseudonym (``h1:...``) of a box without a fleet key matches only within
  its own site (another site's key gives another pseudonym);
- a non-personal identifier that names one object (a waybill) matches as is.

:func:`group` is pure (union-find over the keys): the same SIM reported at three
sites, or moving between them, is one case; depot alerts that share a sender or a
receiver are one case, transitively. A key shared by more than ``max_key_reports``
reports (a placeholder value, a shared hotline) is left out rather than merging the
whole day into one case. :func:`load_cases` reads the identifiers of a time window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

#: non-personal subject types that name one object across the fleet
CLEAR_KEY_TYPES = frozenset({"waybill"})
#: report kinds about the boxes themselves, never part of a case
NOT_ALERTS = ("agent.", "parcel.divert")


@dataclass(slots=True, frozen=True)
class Member:
    report_id: str
    site: str
    ts: datetime
    kind: str
    keys: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class Case:
    id: str                      # the earliest report id of the case (stable)
    reports: tuple[str, ...]     # by time
    site_path: tuple[str, ...]   # sites in the order the case reached them
    kinds: tuple[str, ...]
    keys: tuple[str, ...]
    first_ts: datetime
    last_ts: datetime

    @property
    def cross_site(self) -> bool:
        return len(set(self.site_path)) > 1

    @property
    def moves(self) -> int:
        """How many times the case went on to another site."""
        return len(self.site_path) - 1


def identifier_key(id_type: str, pseudonym: str, fleet_id: str | None, site: str
                   ) -> str | None:
    """The correlation key of one identifier (see the module docstring), or None."""
    if fleet_id:
        return fleet_id
    if pseudonym.startswith("h1:"):
        return f"site:{site}:{pseudonym}"
    if id_type in CLEAR_KEY_TYPES:
        return f"{id_type}:{pseudonym}"
    return None


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        p = self.parent.setdefault(x, x)
        while p != self.parent[p]:
            self.parent[p] = self.parent[self.parent[p]]
            p = self.parent[p]
        self.parent[x] = p
        return p

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group(members: Iterable[Member], max_key_reports: int = 500) -> list[Case]:
    """Cases of two or more reports, newest first."""
    by_id = {m.report_id: m for m in members}
    holders: dict[str, list[str]] = {}
    for m in by_id.values():
        for k in m.keys:
            holders.setdefault(k, []).append(m.report_id)
    uf = _Union()
    for ids in holders.values():
        if 1 < len(ids) <= max_key_reports:
            for other in ids[1:]:
                uf.union(ids[0], other)
    comps: dict[str, list[Member]] = {}
    for rid in by_id:
        if rid in uf.parent:
            comps.setdefault(uf.find(rid), []).append(by_id[rid])
    cases = []
    for ms in comps.values():
        if len(ms) < 2:
            continue
        ms.sort(key=lambda m: (m.ts, m.report_id))
        path: list[str] = []
        for m in ms:
            if not path or path[-1] != m.site:
                path.append(m.site)
        shared = sorted({k for m in ms for k in m.keys if len(holders[k]) > 1})
        cases.append(Case(min(m.report_id for m in ms), tuple(m.report_id for m in ms),
                          tuple(path), tuple(sorted({m.kind for m in ms})), tuple(shared),
                          ms[0].ts, ms[-1].ts))
    cases.sort(key=lambda c: c.last_ts, reverse=True)
    return cases


def load_members(conn: Any, since: datetime, until: datetime,
                 kind_prefixes: tuple[str, ...] = ()) -> list[Member]:
    # the kind filters run in SQL, so a day of agent.status reports costs nothing here
    where = ["id_ts >= %s", "id_ts < %s"] + ["kind NOT LIKE %s"] * len(NOT_ALERTS)
    args: list[Any] = [since, until, *(p + "%" for p in NOT_ALERTS)]
    if kind_prefixes:
        where.append("(" + " OR ".join(["kind LIKE %s"] * len(kind_prefixes)) + ")")
        args += [p + "%" for p in kind_prefixes]
    rows = conn.execute("SELECT report_id, site, ts, kind, id_type, pseudonym, fleet_id "
                        "FROM report_identifiers WHERE " + " AND ".join(where),
                        args).fetchall()
    acc: dict[str, tuple[str, datetime, str, set[str]]] = {}
    for rid, site, ts, kind, id_type, pseudo, fid in rows:
        if kind.startswith(NOT_ALERTS):
            continue
        if kind_prefixes and not kind.startswith(kind_prefixes):
            continue
        key = identifier_key(id_type, pseudo, fid, site)
        entry = acc.setdefault(rid, (site, ts, kind, set()))
        if key is not None:
            entry[3].add(key)
    return [Member(rid, s, ts, k, tuple(sorted(keys))) for rid, (s, ts, k, keys) in acc.items()]


def load_cases(conn: Any, days: int = 1, until: datetime | None = None,
               kind_prefixes: tuple[str, ...] = ()) -> list[Case]:
    """Cases among the reports of the last ``days`` days (by report id time)."""
    until = until or datetime.now(UTC) + timedelta(minutes=5)
    return group(load_members(conn, until - timedelta(days=days), until, kind_prefixes))
