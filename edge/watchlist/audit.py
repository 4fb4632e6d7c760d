"""An append-only, hash-chained audit log of every response action on the device.

One JSON object per line in ``<data_dir>/audit.jsonl``::

    {"seq": 7, "ts": ..., "who": issuer, "list": ..., "entry": {"kind", "subject"},
     "action": "block_ip", "args": {...}, "outcome": "acted", "detail": "...",
     "prev": "<hash of line 6>", "hash": "<sha256 of this object without 'hash'>"}

Each line is written and fsync'd before the action is reported, so a ``kill -9``
loses at most a line being written; a torn last line is recognised on open and
set aside (kept in ``audit.jsonl.torn``, counted) instead of breaking the chain.
:func:`verify` walks the chain and names the first line whose hash, sequence or
link does not hold: an entry edited, removed or inserted afterwards is detected.
The entry's subject is stored pseudonymised, as reports carry it; ``args`` keep what
an undo needs (the blocked address, the SIM to release), on the device only.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GENESIS = "0" * 64


def _digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    entries: int
    broken_at: int | None = None  # 1-based line number
    reason: str = ""


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.torn = 0
        self.seq, self.last_hash = self._recover()
        self._fh: Any = None  # opened at the first entry: building an agent writes nothing

    def _recover(self) -> tuple[int, str]:
        if not self.path.exists():
            return 0, GENESIS
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path.with_name(self.path.name + ".torn"), "ab") as fh:
                fh.write(data[cut:] + b"\n")
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)
            data = data[:cut]
            self.torn += 1
        lines = data.splitlines()
        if not lines:
            return 0, GENESIS
        last = orjson.loads(lines[-1])
        return int(last["seq"]), str(last["hash"])

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add one entry (fsync'd before returning); returns it with seq and hashes."""
        with self._lock:
            entry = {**record, "seq": self.seq + 1, "prev": self.last_hash}
            entry["hash"] = _digest(entry)
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "ab")
            self._fh.write(orjson.dumps(entry) + b"\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.seq, self.last_hash = entry["seq"], entry["hash"]
            return entry

    def find(self, seq: int) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    d = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if d.get("seq") == seq:
                    return d
        return None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def verify(path: Path) -> VerifyResult:
    """Walk the chain from the first line; the first line that breaks it."""
    prev, n = GENESIS, 0
    try:
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    d = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return VerifyResult(False, n - 1, n, "not JSON")
                h = d.pop("hash", None)
                if d.get("seq") != n:
                    return VerifyResult(False, n - 1, n, f"sequence {d.get('seq')} where {n} "
                                        "was due (a line removed or inserted)")
                if d.get("prev") != prev:
                    return VerifyResult(False, n - 1, n, "does not link to the line before")
                if h != _digest(d):
                    return VerifyResult(False, n - 1, n, "content changed after it was written")
                prev = h
    except FileNotFoundError:
        return VerifyResult(True, 0)
    return VerifyResult(True, n)
