"""The durable outbox: durability across SIGKILL, the cap and its drop order, TTL,
disk full, dead letters."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge.report.outbox import (
    ALERT,
    HEALTH,
    LOW,
    PAYLOAD_SHARE,
    SHM_BYTES,
    Outbox,
    classify,
    drain_all,
)


def _rid(i: int) -> str:
    return f"{i:026d}"


def test_classify() -> None:
    assert classify("agent.status", "info") == HEALTH
    assert classify("simbox.sim", "low") == LOW
    assert classify("simbox.sim", "medium") == ALERT
    assert classify("simbox.sim", "medium", "high") == LOW
    assert classify("parcel.gold", "critical", "critical") == ALERT


def test_submit_fetch_ack_and_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "ob.sqlite")
    for i in range(10):
        assert ob.submit(_rid(i), LOW, "t/x", b"p%d" % i)
    batch = ob.fetch(0, 4)
    assert [p.id for p in batch] == [_rid(i) for i in range(4)]
    assert ob.ack([p.seq for p in batch]) == 4
    assert ob.ack([batch[0].seq]) == 0  # a second PUBACK for the same report
    ob.close()
    ob2 = Outbox(tmp_path / "ob.sqlite")
    assert [p.id for p in drain_all(ob2)] == [_rid(i) for i in range(4, 10)]
    assert ob2.stats().depth == 6
    assert ob2.bump("boot") == 1 and ob2.bump("boot") == 2
    ob2.close()


def test_submit_is_durable_across_sigkill(tmp_path: Path) -> None:
    """A child prints each id after submit() returned; SIGKILL mid-stream; every
    printed id must be in the store afterwards."""
    path = tmp_path / "ob.sqlite"
    code = textwrap.dedent(f"""
        import sys
        from edge.report.outbox import Outbox
        ob = Outbox({str(path)!r})
        i = 0
        while True:
            ob.submit(f"{{i:026d}}", 1, "t/x", b"x" * 200)
            sys.stdout.write(f"{{i}}\\n"); sys.stdout.flush()
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 20
    while len(seen) < 3000 and time.monotonic() < deadline:
        seen.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = {p.id for p in drain_all(Outbox(path))}
    assert len(seen) >= 3000
    assert {_rid(i) for i in seen} <= stored


def test_cap_drops_health_then_low_then_alert(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    cap = int((100_000 / PAYLOAD_SHARE + SHM_BYTES) / 0.85) + 1  # rows: 100 kB of it
    ob = Outbox(tmp_path / "ob.sqlite", max_bytes=cap)
    payload = b"x" * 900  # ~1000 bytes with overhead: about 100 fit
    n = 0

    def put(cls: int, k: int) -> None:
        nonlocal n
        for _ in range(k):
            ob.submit(_rid(n), cls, "t/x", payload)
            n += 1

    put(HEALTH, 30)
    put(LOW, 30)
    put(ALERT, 30)
    assert ob.stats().drops == {}
    with caplog.at_level(logging.WARNING):
        put(ALERT, 30)  # must evict health first
    st = ob.stats()
    assert st.bytes <= st.max_bytes
    assert st.drops.get("health.cap", 0) >= 15
    assert "low.cap" not in st.drops and "alert.cap" not in st.drops
    assert "dropped" in caplog.text
    put(ALERT, 40)  # health gone, then low
    st = ob.stats()
    assert st.by_class["health"] == 0 and st.drops.get("low.cap", 0) > 0
    assert "alert.cap" not in st.drops
    put(HEALTH, 5)  # a health report may not evict alerts: it is dropped itself
    assert ob.stats().drops["health.cap"] == 35
    assert ob.stats().by_class["health"] == 0
    put(ALERT, 40)  # only alerts left: the oldest alerts go
    st = ob.stats()
    assert st.drops.get("alert.cap", 0) > 0 and st.bytes <= st.max_bytes
    ids = [p.id for p in drain_all(ob)]
    assert ids[-1] == _rid(n - 1)  # the newest alert is kept
    # counts survive a restart
    ob.close()
    assert Outbox(tmp_path / "ob.sqlite", max_bytes=cap).stats().drops == st.drops


def test_ttl_per_class(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "ob.sqlite", ttl_s=(10, 100, 1000))
    for cls in (HEALTH, LOW, ALERT):
        for i in range(5):
            ob.submit(_rid(cls * 10 + i), cls, "t/x", b"x", now=1000.0)
    assert ob.expire(now=1050.0) == 5
    assert ob.stats().by_class == {"health": 0, "low": 5, "alert": 5}
    assert ob.expire(now=1500.0) == 5
    assert ob.expire(now=2500.0) == 5
    assert ob.stats().depth == 0
    assert ob.stats().drops == {"health.ttl": 5, "low.ttl": 5, "alert.ttl": 5}


def test_disk_full_is_a_state_not_a_corruption(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """SQLite's page limit produces the same SQLITE_FULL a full disk does."""
    path = tmp_path / "ob.sqlite"
    ob = Outbox(path)
    ob._db.execute("PRAGMA max_page_count=40")
    stored = 0
    with caplog.at_level(logging.WARNING):
        for i in range(2000):
            stored += ob.submit(_rid(i), ALERT, "t/x", os.urandom(500))
    assert ob.disk_full
    assert 0 < stored < 2000
    assert ob.stats().drops["alert.disk_full"] == 2000 - stored
    assert caplog.text.count("DISK FULL") == 1
    # everything stored is intact and readable; space freed -> writes succeed again
    ids = [p.id for p in drain_all(ob)]
    assert len(ids) == stored
    ob._db.execute("PRAGMA max_page_count=1000000")
    assert ob.submit(_rid(5000), ALERT, "t/x", b"y")
    assert not ob.disk_full and "writes succeed again" in caplog.text
    ob.close()
    assert len(list(drain_all(Outbox(path)))) == stored + 1


def test_every_write_path_survives_disk_full_and_store_errors(tmp_path: Path) -> None:
    """One transaction helper serves submit, ack, dead letters, expiry and counters:
    a full disk is a state (rolled back, nothing half-done, totals still true), any
    other SQLite error is a LinkError saying which operation failed, rolled back."""
    from edge.errors import LinkError

    ob = Outbox(tmp_path / "ob.sqlite", ttl_s=(10, 10, 10))
    for i in range(20):
        assert ob.submit(_rid(i), ALERT, "t/x", os.urandom(200), now=1000.0)
    seqs = [p.seq for p in drain_all(ob)]
    before = ob.stats()
    # a store that refuses every write (not a full disk)
    ob._db.execute("PRAGMA query_only=1")
    for call, what in ((lambda: ob.submit(_rid(99), ALERT, "t/x", b"y"), "write"),
                       (lambda: ob.ack(seqs[:3]), "delete"),
                       (lambda: ob.dead_letter(seqs[3], "no"), "dead-letter"),
                       (lambda: ob.expire(now=5000.0), "expiry"),
                       (lambda: ob.bump("boot_seq"), "counter update")):
        with pytest.raises(LinkError, match=f"{what} failed"):
            call()
        assert not ob._db.in_transaction
    ob._db.execute("PRAGMA query_only=0")
    after = ob.stats()
    assert (after.depth, after.bytes, after.drops) == (before.depth, before.bytes,
                                                       before.drops)
    assert not ob.disk_full
    # everything works again, and the totals match the table
    assert ob.ack(seqs[:3]) == 3 and ob.dead_letter(seqs[3], "no")
    assert ob.expire(now=5000.0) == 16 and ob.stats().depth == 0
    assert ob.bump("boot_seq") == 1
    # a failing block (a bug, not SQLite) is rolled back and propagates
    with pytest.raises(ZeroDivisionError), ob._lock, ob._transaction("write"):
        ob._db.execute("INSERT INTO meta(k, v) VALUES ('x', 1)")
        _ = 1 / 0
    assert ob._db.execute("SELECT count(*) FROM meta WHERE k='x'").fetchone()[0] == 0
    ob.close()


def test_dead_letter(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "ob.sqlite")
    ob.submit(_rid(1), ALERT, "t/denied", b"x")
    seq = ob.fetch(0, 1)[0].seq
    assert ob.dead_letter(seq, "Not authorized (0x87)")
    assert ob.stats().depth == 0
    assert ob.stats().drops == {"alert.denied": 1}
    assert ob.dead() == [(_rid(1), "t/denied", "Not authorized (0x87)")]


@pytest.mark.needs_root
def test_real_disk_full_on_a_tiny_filesystem(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A 384 KiB tmpfs: the outbox fills the filesystem, reports are dropped and
    counted with one DISK FULL line, the store stays intact, and writes resume once
    space is freed."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * 96 * 1024)
        ob = Outbox(mnt / "ob.sqlite")
        stored = 0
        with caplog.at_level(logging.WARNING):
            for i in range(3000):
                stored += ob.submit(_rid(i), ALERT, "t/x", os.urandom(300))
        assert ob.disk_full and 0 < stored < 3000
        assert ob.stats().drops["alert.disk_full"] == 3000 - stored
        assert caplog.text.count("DISK FULL") == 1
        filler.unlink()
        assert ob.submit(_rid(9999), ALERT, "t/x", b"after")
        assert not ob.disk_full
        ob.close()
        again = Outbox(mnt / "ob.sqlite")  # reopens with the integrity check
        assert len(list(drain_all(again))) == stored + 1
        again.close()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_one_process_per_outbox(tmp_path: Path) -> None:
    from edge.errors import LinkError

    ob = Outbox(tmp_path / "ob.sqlite")
    code = (f"from edge.report.outbox import Outbox\n"
            f"Outbox({str(tmp_path / 'ob.sqlite')!r})\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "in use by another process" in out.stderr
    ob.close()
    Outbox(tmp_path / "ob.sqlite").close()  # free again
    assert issubclass(LinkError, ConnectionError)


@pytest.mark.parametrize("cap", [256 * 1024, 1 << 20, 4 << 20])
def test_byte_cap_holds_for_the_files_on_disk_wal_included(tmp_path: Path, cap: int) -> None:
    """Issue 9: the cap counted logical bytes while the files (WAL!) grew past it
    (the same load before the fix: 18x the cap at 256 KiB, 5.6x at 1 MiB, 2.3x at 4)."""
    import random

    rnd = random.Random(cap)
    ob = Outbox(tmp_path / "ob.sqlite", max_bytes=cap)
    worst = 0
    n = 0
    for round_ in range(40):   # broker down: singles, batches, evictions, some acks
        for _ in range(20):
            ob.submit(_rid(n), rnd.choice((HEALTH, LOW, ALERT)), "t/x",
                      rnd.randbytes(rnd.randint(200, 3000)))
            n += 1
        batch = [(_rid(n + i), ALERT, "t/x", rnd.randbytes(rnd.randint(200, 6000)))
                 for i in range(rnd.randint(1, 200))]
        n += len(batch)
        ob.submit_many(batch)
        if round_ % 5 == 4:
            ob.ack([p.seq for p in ob.fetch(0, 50)])
        worst = max(worst, ob.disk_bytes())
        for p in ob.fetch(0, 3):
            ob.dead_letter(p.seq, "denied" * 50)
    assert ob.stats().drops.get("alert.cap", 0) > 0  # it really was full
    assert worst <= cap, (worst, cap)
    ob.close()
