"""Presence and heartbeat payloads: who this agent is, and how it is doing.

The *birth* message is published retained on the status topic after every
connection; the *will* (registered with the broker at connect) and a clean exit
publish ``offline`` on the same topic, so the retained value is always the latest
state. The heartbeat carries link, outbox and process health. All functions here are
pure except :func:`process_stats`, which reads /proc and the filesystem.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from edge.report.outbox import OutboxStats


@dataclass(slots=True)
class Identity:
    """What the birth message says about this agent."""

    site: str
    agent: str
    versions: dict[str, str] = field(default_factory=dict)
    config_hash: str = ""
    models: dict[str, str] = field(default_factory=dict)
    boot_seq: int = 0
    boot_ts: float = 0.0
    tls: dict[str, bool] = field(default_factory=dict)
    """{"enabled": ..., "insecure_skip_verify": ...}: a box that skips certificate
    verification says so to whoever watches the fleet."""


@dataclass(slots=True)
class ProcessStats:
    rss_bytes: int
    cpu_s: float
    disk_free_bytes: int
    disk_total_bytes: int


def default_versions() -> dict[str, str]:
    import paho.mqtt

    from edge import __version__
    return {"agent": __version__, "python": platform.python_version(),
            "paho": paho.mqtt.__version__}


def config_hash(cfg: object) -> str:
    """sha256 over the typed config with its secrets removed (:func:`edge.config.redacted`),
    as sorted-key JSON. Not over the file: it may hold the inline site key, and a hash
    of it would let anyone confirm a guessed key offline."""
    from edge.config import redacted

    data = orjson.dumps(redacted(cfg), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                        default=str)
    return hashlib.sha256(b"afe-config-v1\n" + data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def birth_payload(ident: Identity, now: float, conn_ts: float | None = None) -> bytes:
    """``conn_ts``: when this connection began (the time in its will)."""
    d = asdict(ident)
    d.update(state="online", ts=now)
    if conn_ts is not None:
        d["conn_ts"] = conn_ts
    return orjson.dumps(d)


def offline_payload(ident: Identity, now: float, reason: str) -> bytes:
    """``reason``: "shutdown" for a clean exit, "lost" in the will."""
    return orjson.dumps({"state": "offline", "site": ident.site, "agent": ident.agent,
                         "boot_seq": ident.boot_seq, "reason": reason, "ts": now})


def heartbeat_payload(ident: Identity, now: float, *, link: dict[str, Any],
                      outbox: OutboxStats, proc: ProcessStats,
                      counters: dict[str, Any]) -> bytes:
    oldest_age = None if outbox.oldest_created is None else round(now - outbox.oldest_created, 3)
    return orjson.dumps({
        "site": ident.site, "agent": ident.agent, "boot_seq": ident.boot_seq, "ts": now,
        "uptime_s": round(now - ident.boot_ts, 3),
        "outbox": {"depth": outbox.depth, "bytes": outbox.bytes,
                   "max_bytes": outbox.max_bytes, "by_class": outbox.by_class,
                   "oldest_pending_age_s": oldest_age, "drops": outbox.drops,
                   "disk_full": outbox.disk_full},
        "link": link,
        "process": {"rss_bytes": proc.rss_bytes, "cpu_s": round(proc.cpu_s, 3),
                    "disk_free_bytes": proc.disk_free_bytes,
                    "disk_total_bytes": proc.disk_total_bytes},
        "counters": counters,
    }, option=orjson.OPT_NON_STR_KEYS)


def rss_bytes() -> int:
    """Resident set size of this process (VmRSS), 0 where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def process_stats(data_dir: Path) -> ProcessStats:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    try:
        du = shutil.disk_usage(data_dir)
        free, total = du.free, du.total
    except OSError:
        free = total = 0
    return ProcessStats(rss_bytes(), ru.ru_utime + ru.ru_stime, free, total)


__all__ = ["Identity", "ProcessStats", "birth_payload", "offline_payload",
           "heartbeat_payload", "process_stats", "config_hash", "default_versions",
           "file_sha256", "rss_bytes"]
