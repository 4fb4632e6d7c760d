"""The durable outbox: reports wait here, on disk, until the broker acknowledged them.

SQLite in WAL mode, one table of pending reports keyed by a local sequence number.
``submit`` returns only after the report's transaction committed (``sync="normal"``:
it survives a crash or SIGKILL of the process; ``sync="full"``: also a power loss).
``ack`` deletes reports whose PUBACK was mapped back to their sequence number.

Bounded: a byte cap and a TTL per class. The cap (``max_bytes``) holds for the files
on disk: database, write-ahead log and its shared-memory index together. Checkpoint
policy: the WAL is checkpointed every :data:`WAL_SHARE` of the cap
(``wal_autocheckpoint``) and truncated back to that size afterwards
(``journal_size_limit``, and an explicit ``wal_checkpoint(TRUNCATE)`` after a commit
that left it larger); of what is left after the WAL and the 32 KiB ``-shm`` index,
pending reports may use :data:`PAYLOAD_SHARE` (counted as payload +
:data:`ROW_OVERHEAD`), the rest is B-tree slack (overflow pages, part-full leaves).
Dead letters keep at most :data:`DEAD_SHARE` of the cap. Freed pages are reused, so
the database file stays at its high-water mark, under the cap. Classes, in the
order they are dropped when the cap is reached (oldest first within a class):

    0 health   agent.* telemetry
    1 low      reports below ``alert_min_severity``
    2 alert    everything else

A new report never evicts a report of a higher class: when only higher classes are
left to drop, the new report itself is dropped. Every drop is counted by class and
reason (``cap``, ``ttl``, ``disk_full``, ``denied``) and the counts are kept in the
store, so they survive restarts. Disk full is a state, not a corruption: the failed
transaction is rolled back (SQLite guarantees the file stays consistent), the report
is counted as dropped, one clear log line says so, and the next successful write
ends the state with another line.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from edge.errors import LinkError

log = logging.getLogger(__name__)

HEALTH, LOW, ALERT = 0, 1, 2
CLASS_NAMES = ("health", "low", "alert")
_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
# Per-row bookkeeping SQLite spends beyond the payload (rowid, header, index entry):
# counted into the cap so the file size tracks the cap.
ROW_OVERHEAD = 48
PAYLOAD_SHARE = 0.6
WAL_SHARE = 0.15
DEAD_SHARE = 0.03
SHM_BYTES = 32_768
_SQLITE_FULL = 13


def classify(kind: str, severity: str, alert_min_severity: str = "medium") -> int:
    """The drop class of a report from its kind and severity."""
    if kind.startswith("agent."):
        return HEALTH
    if _SEVERITY_RANK.get(severity, 0) >= _SEVERITY_RANK[alert_min_severity]:
        return ALERT
    return LOW


@dataclass(slots=True, frozen=True)
class Pending:
    """One report waiting for its PUBACK."""

    seq: int
    id: str
    cls: int
    created: float
    topic: str
    payload: bytes


@dataclass(slots=True)
class OutboxStats:
    depth: int
    bytes: int
    max_bytes: int
    by_class: dict[str, int]
    oldest_created: float | None
    drops: dict[str, int] = field(default_factory=dict)
    disk_full: bool = False
    submitted: int = 0
    acked: int = 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending(
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    cls INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead(
    n INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    payload BLOB NOT NULL);
"""
_INSERT = "INSERT INTO pending(seq, id, cls, created, size, topic, payload) VALUES (?,?,?,?,?,?,?)"
# Why no index on cls and no AUTOINCREMENT: each costs one more page write per commit
# (about a third of the submit rate). Sequence numbers come from an in-memory counter
# that starts above every stored row; evictions and expiry scan oldest-first and are
# skipped for classes whose in-memory count is zero.


class Outbox:
    """A bounded, durable FIFO of reports. Thread-safe (one connection, one lock).

    ``ttl_s`` gives the TTL of each class (health, low, alert) in seconds.
    """

    def __init__(self, path: Path, *, max_bytes: int = 256 * 1024 * 1024,
                 ttl_s: Sequence[float] = (86_400.0, 7 * 86_400.0, 30 * 86_400.0),
                 sync: str = "normal", dead_keep: int = 10_000,
                 clock: object = time.time) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self._wal = Path(str(self.path) + "-wal")
        self.ttl_s = tuple(float(t) for t in ttl_s)
        if len(self.ttl_s) != 3:
            raise ValueError("ttl_s needs one TTL per class (health, low, alert)")
        self._clock = clock
        self._dead_keep = dead_keep
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One process per outbox: two senders would each re-send the other's pending
        # reports and hand out the same sequence numbers.
        self._lockfile = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            raise LinkError(f"outbox {self.path} is in use by another process (one agent "
                            f"per data_dir / outbox.path)") from None
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            db.execute("PRAGMA busy_timeout=5000")
            page = int(db.execute("PRAGMA page_size").fetchone()[0])
            self._wal_limit = max(4 * page, int(self.max_bytes * WAL_SHARE))
            db.execute(f"PRAGMA wal_autocheckpoint={max(2, self._wal_limit // page // 2)}")
            db.execute(f"PRAGMA journal_size_limit={self._wal_limit}")
            # what is left after the WAL and the -shm index, less B-tree slack (rows
            # above a page spill into overflow pages, leaves are not full)
            self._budget = max(4096, int((self.max_bytes - SHM_BYTES - self._wal_limit)
                                         * PAYLOAD_SHARE))
            db.executescript(_SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._lockfile.close()
            raise LinkError(f"outbox {self.path}: cannot open: {exc}") from None
        if check != "ok":
            self._lockfile.close()
            raise LinkError(f"outbox {self.path}: integrity check failed: {check}")
        self._db = db
        self._bytes = [0, 0, 0]
        self._count = [0, 0, 0]
        for cls, n, size in db.execute(
                "SELECT cls, count(*), coalesce(sum(size), 0) FROM pending GROUP BY cls"):
            if 0 <= cls <= 2:
                self._count[cls], self._bytes[cls] = n, size
        top = db.execute("SELECT max(seq) FROM pending").fetchone()[0]
        self._next_seq = (top or 0) + 1
        self.drops: dict[str, int] = {
            k[5:]: v for k, v in db.execute("SELECT k, v FROM meta WHERE k LIKE 'drop.%'")}
        self.disk_full = False
        self.submitted = 0
        self.acked = 0

    # ------------------------------------------------------------------ writing
    def submit(self, report_id: str, cls: int, topic: str, payload: bytes,
               now: float | None = None) -> bool:
        """Store one report durably. True when stored; False when it was dropped
        (cap reached with only higher classes left, or disk full; both counted)."""
        return self.submit_many([(report_id, cls, topic, payload)], now) == 1

    def submit_many(self, items: Sequence[tuple[str, int, str, bytes]],
                    now: float | None = None) -> int:
        """Store a batch in one transaction (the fast path for batch producers).
        Returns how many were stored; the others were dropped and counted."""
        ts = self._clock() if now is None else now  # type: ignore[operator]
        with self._lock:
            rows = []
            need = 0
            seq = self._next_seq
            for rid, cls, topic, payload in items:
                size = len(payload) + len(topic) + len(rid) + ROW_OVERHEAD
                rows.append((seq, rid, cls, ts, size, topic, payload))
                seq += 1
                need += size
            self._next_seq = seq
            db = self._db
            drops: dict[str, int] = {}
            with self._transaction("write") as tx:
                if sum(self._bytes) + need > self._budget:
                    rows = self._make_room(rows, drops)
                if rows:
                    db.executemany(_INSERT, rows)
                self._persist_drops(drops)
            if tx.full:
                lost: dict[str, int] = {}
                for item in items:
                    k = f"{CLASS_NAMES[item[1]]}.disk_full"
                    lost[k] = lost.get(k, 0) + 1
                self._count_drops_memory(lost)
                return 0
            for r in rows:
                self._bytes[r[2]] += r[4]
                self._count[r[2]] += 1
            self._count_drops_memory(drops)
            self.submitted += len(rows)
            self._trim_wal()
            if self.disk_full:
                self.disk_full = False
                log.warning("outbox %s: writes succeed again (disk space available)",
                            self.path)
            return len(rows)

    def _make_room(self, rows: list[tuple], drops: dict[str, int]) -> list[tuple]:
        """Evict (inside the open transaction) so that ``rows`` fit; returns the rows
        that still go in. Evicts a little more than needed (1 % of the cap) so that a
        full store does not pay for an eviction on every submit."""
        kept: list[tuple] = []
        total = sum(self._bytes)
        budget = self._budget
        slack = budget // 100
        for row in rows:
            size, cls = row[4], row[2]
            if total + size > budget:
                goal = total + size - budget + slack
                freed = self._evict_upto(cls, goal, drops)
                total -= freed
            if total + size > budget:
                key = f"{CLASS_NAMES[cls]}.cap"
                drops[key] = drops.get(key, 0) + 1
                continue
            kept.append(row)
            total += size
        return kept

    def _evict_upto(self, max_cls: int, goal: int, drops: dict[str, int]) -> int:
        freed = 0
        for cls in range(max_cls + 1):
            while freed < goal and self._count[cls] > 0:
                got = self._db.execute(
                    "SELECT seq, size FROM pending WHERE cls=? ORDER BY seq LIMIT 512",
                    (cls,)).fetchall()
                if not got:
                    break
                victims = []
                for seq, size in got:
                    victims.append(seq)
                    freed += size
                    self._bytes[cls] -= size
                    self._count[cls] -= 1
                    if freed >= goal:
                        break
                self._delete_seqs(victims)
                key = f"{CLASS_NAMES[cls]}.cap"
                drops[key] = drops.get(key, 0) + len(victims)
        return freed

    def _delete_seqs(self, seqs: Sequence[int]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for i in range(0, len(seqs), 500):
            chunk = seqs[i:i + 500]
            q = ",".join("?" * len(chunk))
            out += self._db.execute(
                f"DELETE FROM pending WHERE seq IN ({q}) RETURNING cls, size", chunk
            ).fetchall()
        return out

    def ack(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged reports (one transaction). Returns how many existed."""
        if not seqs:
            return 0
        with self._lock:
            # Deleting needs WAL space too; on a full disk the rows stay and are re-sent
            # later (duplicates share ids), which is safe.
            with self._transaction("delete") as tx:
                gone = self._delete_seqs(seqs)
            if tx.full:
                return 0
            for cls, size in gone:
                self._bytes[cls] -= size
                self._count[cls] -= 1
            self.acked += len(gone)
            self._trim_wal()
            return len(gone)

    def dead_letter(self, seq: int, reason: str) -> bool:
        """Move one report out of the pending set (the broker refused it for good, e.g.
        MQTT 5 reason 0x87 not authorized). Kept in table ``dead`` for inspection,
        the newest ``dead_keep`` only; counted as a drop with reason ``denied``."""
        with self._lock:
            drops: dict[str, int] = {}
            with self._transaction("dead-letter") as tx:
                row = self._db.execute(
                    "DELETE FROM pending WHERE seq=? RETURNING id, cls, size, topic, payload",
                    (seq,)).fetchone()
                if row is not None:
                    rid, cls, size, topic, payload = row
                    cur = self._db.execute(
                        "INSERT INTO dead(seq, id, topic, reason, at, payload) "
                        "VALUES (?,?,?,?,?,?)",
                        (seq, rid, topic, reason, self._clock(), payload))  # type: ignore[operator]
                    self._db.execute("DELETE FROM dead WHERE n <= ?",
                                     ((cur.lastrowid or 0) - self._dead_keep,))
                    self._trim_dead()
                    drops[f"{CLASS_NAMES[cls]}.denied"] = 1
                    self._persist_drops(drops)
            if tx.full:
                return False
            self._trim_wal()
            if row is None:
                return False
            self._bytes[cls] -= size
            self._count[cls] -= 1
            self._count_drops_memory(drops)
            return True

    def expire(self, now: float | None = None) -> int:
        """Drop reports older than their class's TTL. Rows are in submit order, so
        each class is trimmed from its oldest row until one is young enough."""
        ts = self._clock() if now is None else now  # type: ignore[operator]
        total = 0
        with self._lock:
            for cls in range(3):
                cutoff = ts - self.ttl_s[cls]
                while self._count[cls]:
                    got = self._db.execute(
                        "SELECT seq, created FROM pending WHERE cls=? ORDER BY seq LIMIT 512",
                        (cls,)).fetchall()
                    victims = [seq for seq, created in got if created < cutoff]
                    if not victims:
                        break
                    with self._transaction("expiry") as tx:
                        gone = self._delete_seqs(victims)
                        drops = {f"{CLASS_NAMES[cls]}.ttl": len(gone)}
                        self._persist_drops(drops)
                    if tx.full:
                        return total
                    for c, size in gone:
                        self._bytes[c] -= size
                        self._count[c] -= 1
                    self._count_drops_memory(drops)
                    self._trim_wal()
                    total += len(gone)
                    if len(victims) < len(got):
                        break
        if total:
            log.warning("outbox: %d reports dropped after their TTL expired", total)
        return total

    # ------------------------------------------------------------------ reading
    def fetch(self, after_seq: int, limit: int) -> list[Pending]:
        """Up to ``limit`` pending reports with seq > after_seq, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, cls, created, topic, payload FROM pending "
                "WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
        return [Pending(*r) for r in rows]

    def depth(self) -> int:
        return sum(self._count)

    def stats(self) -> OutboxStats:
        with self._lock:
            # rows are in submit order: the lowest seq is the oldest (no table scan)
            row = self._db.execute(
                "SELECT created FROM pending ORDER BY seq LIMIT 1").fetchone() \
                if sum(self._count) else (None,)
            return OutboxStats(
                depth=sum(self._count), bytes=sum(self._bytes), max_bytes=self.max_bytes,
                by_class={CLASS_NAMES[i]: self._count[i] for i in range(3)},
                oldest_created=(row or (None,))[0], drops=dict(self.drops), disk_full=self.disk_full,
                submitted=self.submitted, acked=self.acked)

    def dead(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """(id, topic, reason) of the newest dead-lettered reports."""
        with self._lock:
            return self._db.execute(
                "SELECT id, topic, reason FROM dead ORDER BY n DESC LIMIT ?",
                (limit,)).fetchall()

    # ------------------------------------------------------------------ counters
    def bump(self, name: str) -> int:
        """Increment and return a durable counter (e.g. the boot sequence number)."""
        with self._lock:
            with self._transaction("counter update") as tx:
                self._db.execute("INSERT INTO meta(k, v) VALUES (?, 1) "
                                 "ON CONFLICT(k) DO UPDATE SET v = v + 1", (name,))
                v = self._db.execute("SELECT v FROM meta WHERE k=?", (name,)).fetchone()[0]
            if tx.full:
                raise LinkError(f"outbox {self.path}: counter {name} not updated: disk full")
            return int(v)

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass
            self._db.close()
            self._lockfile.close()  # releases the flock

    def disk_bytes(self) -> int:
        """Bytes the outbox's files take on disk (database, WAL, shared-memory index)."""
        total = 0
        for p in (self.path, self._wal, Path(str(self.path) + "-shm")):
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total

    # ------------------------------------------------------------------ internals
    def _transaction(self, what: str) -> _Transaction:
        """``with self._transaction("write") as tx:`` runs the block in one
        ``BEGIN IMMEDIATE`` ... ``COMMIT`` (the caller holds the lock). A full disk in
        the block or at COMMIT rolls back, reloads the in-memory totals, enters the
        disk-full state and sets ``tx.full`` (the error is swallowed: the caller returns
        its "nothing done" value); any other SQLite error rolls back, reloads and raises
        LinkError saying what failed; any other exception rolls back and propagates."""
        return _Transaction(self, what)

    def _trim_wal(self) -> None:
        """After a commit: a WAL above its share is checkpointed and truncated (a large
        batch or eviction can outgrow the auto-checkpoint interval in one commit)."""
        try:
            if self._wal.stat().st_size <= self._wal_limit:
                return
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except (OSError, sqlite3.DatabaseError):
            pass  # a reader holds the WAL or the disk is full: the next commit retries

    def _trim_dead(self) -> None:
        limit = int(self.max_bytes * DEAD_SHARE)
        total = self._db.execute("SELECT coalesce(sum(length(payload)), 0) FROM dead"
                                 ).fetchone()[0]
        while total > limit:
            row = self._db.execute("DELETE FROM dead WHERE n = (SELECT min(n) FROM dead) "
                                   "RETURNING length(payload)").fetchone()
            if row is None:
                break
            total -= row[0]

    def _persist_drops(self, drops: dict[str, int]) -> None:
        for k, n in drops.items():
            if n:
                self._db.execute("INSERT INTO meta(k, v) VALUES (?, ?) "
                                 "ON CONFLICT(k) DO UPDATE SET v = v + excluded.v",
                                 (f"drop.{k}", n))

    def _count_drops_memory(self, drops: dict[str, int]) -> None:
        for k, n in drops.items():
            if not n:
                continue
            before = self.drops.get(k, 0)
            self.drops[k] = before + n
            # Log the first drop of each kind, then every 10x, so a long outage
            # gives a handful of lines rather than one per report.
            after = before + n
            if before == 0 or len(str(after)) > len(str(before)):
                cls, reason = k.split(".", 1)
                log.warning("outbox: dropped %d %s report(s) (reason %s, %d so far; "
                            "cap %d bytes, pending %d)", n, cls, reason, after,
                            self.max_bytes, sum(self._count))

    def _enter_disk_full(self, exc: Exception) -> None:
        if not self.disk_full:
            self.disk_full = True
            log.error("outbox %s: DISK FULL (%s): new reports are dropped and counted "
                      "until space is freed; the store itself is intact", self.path, exc)

    def _rollback_quietly(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass

    def _reload_totals(self) -> None:
        self._bytes = [0, 0, 0]
        self._count = [0, 0, 0]
        try:
            for cls, n, size in self._db.execute(
                    "SELECT cls, count(*), coalesce(sum(size), 0) FROM pending GROUP BY cls"):
                self._count[cls], self._bytes[cls] = n, size
        except sqlite3.DatabaseError:
            pass


class _Transaction:
    """One outbox transaction: the single place for BEGIN / COMMIT / rollback and
    disk-full handling (see :meth:`Outbox._transaction`)."""

    __slots__ = ("_ob", "_what", "full")

    def __init__(self, ob: Outbox, what: str) -> None:
        self._ob, self._what = ob, what
        self.full = False

    def __enter__(self) -> _Transaction:
        ob = self._ob
        try:
            # only takes the write lock, writes nothing: it fails on a busy or broken
            # store, and then the block must not run (it would run outside a transaction)
            ob._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            ob._rollback_quietly()
            ob._reload_totals()
            raise LinkError(f"outbox {ob.path}: {self._what} failed: {exc}") from None
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None:
            try:
                self._ob._db.execute("COMMIT")
                return False
            except sqlite3.OperationalError as e:
                exc = e
        if isinstance(exc, sqlite3.OperationalError):
            self._failed(exc)
            return True  # disk full: swallowed, tx.full says so
        self._ob._rollback_quietly()  # a bug or LinkError from the block: undo, re-raise
        self._ob._reload_totals()
        return False

    def _failed(self, exc: sqlite3.OperationalError) -> None:
        ob = self._ob
        ob._rollback_quietly()
        ob._reload_totals()
        if not _is_full(exc):
            raise LinkError(f"outbox {ob.path}: {self._what} failed: {exc}") from None
        ob._enter_disk_full(exc)
        self.full = True


def _is_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == _SQLITE_FULL or "full" in str(exc).lower()


def drain_all(ob: Outbox) -> Iterable[Pending]:
    """Every pending report, in order (for tools and tests)."""
    seq = 0
    while True:
        batch = ob.fetch(seq, 1000)
        if not batch:
            return
        yield from batch
        seq = batch[-1].seq
