"""The depot's waybill export (field-formats 2f), loaded and kept fresh.

In: a JSON Lines file, one waybill object a line. Out: ``get(code) -> Waybill | None``.
Lines that are not an object, lack ``waybill`` or carry a field of the wrong type are
skipped and counted with their line number (the first few are logged). The file is
re-read when its size or mtime changed, checked at most every ``refresh_s`` of
event time; a file that vanished or became unreadable keeps the last good table
(counted), so a half-written export never empties the lookup.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from edge.courier.records import Waybill

log = logging.getLogger(__name__)
_STR = ("declared", "sender_id", "sender_phone", "receiver_phone", "origin", "dest")
LOG_FIRST = 5


def parse_waybill(obj: object) -> Waybill | str:
    """A ``Waybill`` from one decoded line, or the reason it is not one."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    code = obj.get("waybill")
    if not isinstance(code, str) or not code:
        return "no waybill number"
    kw: dict[str, object] = {}
    for k in _STR:
        v = obj.get(k)
        if v is not None and not isinstance(v, str):
            return f"{k} is not a string"
        kw[k] = v
    value = obj.get("declared_value_cny")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "declared_value_cny is not a number"
    verified = obj.get("sender_verified")
    if verified is not None and not isinstance(verified, bool):
        return "sender_verified is not true/false"
    return Waybill(waybill=code, declared=str(kw.pop("declared") or ""),
                   declared_value_cny=None if value is None else float(value),
                   sender_verified=verified, **kw)  # type: ignore[arg-type]


class WaybillStore:
    def __init__(self, path: Path | None, refresh_s: float = 30.0) -> None:
        self.path = path
        self.refresh_s = refresh_s
        self._table: dict[str, Waybill] = {}
        self._stamp: tuple[int, int] | None = None
        self._next_check = float("-inf")
        self.loads = 0
        self.rejected = 0
        self.load_failures = 0
        if path is not None:
            self.reload()

    def get(self, code: str) -> Waybill | None:
        return self._table.get(code)

    def __len__(self) -> int:
        return len(self._table)

    def maybe_refresh(self, now: float) -> None:
        """Re-read the file if it changed (checked at most every ``refresh_s``)."""
        if self.path is None or now < self._next_check:
            return
        self._next_check = now + self.refresh_s
        try:
            st = self.path.stat()
        except OSError:
            self.load_failures += 1
            return
        if (st.st_mtime_ns, st.st_size) != self._stamp:
            self.reload()

    def reload(self) -> None:
        assert self.path is not None
        try:
            st = self.path.stat()
            data = self.path.read_bytes()
        except OSError as exc:
            self.load_failures += 1
            log.warning("waybills %s: cannot read (%s); keeping %d known waybills",
                        self.path, exc, len(self._table))
            return
        table: dict[str, Waybill] = {}
        bad = 0
        for n, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                got = parse_waybill(orjson.loads(line))
            except orjson.JSONDecodeError:
                got = "not JSON"
            if isinstance(got, str):
                bad += 1
                if bad <= LOG_FIRST:
                    log.warning("waybills %s line %d: %s", self.path, n, got)
                continue
            table[got.waybill] = got
        if not data.endswith(b"\n") and data:
            # the exporter may still be writing: keep what we had for codes missing now
            for code, wb in self._table.items():
                table.setdefault(code, wb)
        self._table = table
        self._stamp = (st.st_mtime_ns, st.st_size)
        self.rejected += bad
        self.loads += 1

    def counters(self) -> dict[str, int | float]:
        return {"known": len(self._table), "loads": self.loads, "rejected": self.rejected,
                "load_failures": self.load_failures}
