"""Simple report sinks: JSON Lines file, stdout summary, in-memory list."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any

Report = dict[str, Any]


class JsonlSink:
    """Appends one JSON document per line; flushed per report, fsynced on close."""

    name = "jsonl"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[bytes] = open(path, "ab")  # noqa: SIM115
        self.written = 0

    def publish(self, report: Report, payload: bytes) -> None:
        self._fh.write(payload + b"\n")
        self._fh.flush()
        self.written += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def counters(self) -> dict[str, int]:
        return {"written": self.written}


class StdoutSink:
    """One human-readable line per report (not for agent.status unless verbose)."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None, include_status: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._include_status = include_status
        self.written = 0

    def publish(self, report: Report, payload: bytes) -> None:
        if report["kind"].startswith("agent.") and not self._include_status:
            return
        reasons = "; ".join(e["reason"] for e in report["evidence"][:3])
        subj = report["subject"]
        print(f"{report['ts']} {report['severity']:>8} {report['kind']:<18} "
              f"{subj['type']}={subj['id'][:20]} score={report['score']:.2f} | {reasons}",
              file=self._stream, flush=True)
        self.written += 1

    def close(self) -> None:
        pass

    def counters(self) -> dict[str, int]:
        return {"written": self.written}


class MemorySink:
    """Keeps reports in a list: for tests and embedding."""

    name = "memory"

    def __init__(self) -> None:
        self.reports: list[Report] = []

    def publish(self, report: Report, payload: bytes) -> None:
        self.reports.append(report)

    def close(self) -> None:
        pass

    def counters(self) -> dict[str, int]:
        return {"written": len(self.reports)}
