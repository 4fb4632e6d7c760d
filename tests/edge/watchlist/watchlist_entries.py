"""List entries drawn by the hypothesis tests: (kind, index, pseudonymised?, expiry)."""

from __future__ import annotations

from pathlib import Path

from edge.downlink.watchlist import WatchlistStore
from edge.report.pseudonym import Pseudonymiser


def list_entries(drawn: list, pools: dict[str, list[str]], p: Pseudonymiser) -> list[dict]:
    """Snapshot entries for ``drawn``: the value is ``pools[kind][index]`` (wrapping),
    in the clear or pseudonymised with ``p`` as a police issuer would send it."""
    raw = []
    for kind, i, pseudo, exp in drawn:
        pool = pools[kind]
        v = pool[i % len(pool)]
        dom = {"msisdn": "phone"}.get(kind, kind)
        raw.append({"kind": kind, "value": p.pseudonym(dom, v) if pseudo else v,
                    **({"expires": exp} if exp is not None else {})})
    return raw


def stores_with(d: Path, names: tuple[str, ...], entries: list[dict], now: float
                ) -> dict[str, WatchlistStore]:
    """One store per name under ``d``, each holding the same version-1 snapshot."""
    stores = {}
    for name in names:
        s = stores[name] = WatchlistStore(d / name)
        s.apply({"id": "w", "version": 1, "type": "snapshot", "entries": entries}, now=now)
    return stores
