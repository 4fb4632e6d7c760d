"""Log output for a service: text or JSON lines, a size cap, and no identifiers.

Identifiers are pseudonymised at the reporter boundary and never logged on purpose;
:class:`RedactingFilter` is the second line of defence for what slips into a message
anyway (an exception text quoting an input line, a third-party library): every run
of seven or more digits (IMSI, IMEI, ICCID, MSISDN, waybill phone) is replaced by
``<n digits>``, at every level, before any handler formats the record.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import time
from pathlib import Path

_DIGIT_RUN = re.compile(r"(?<![0-9])\+?[0-9]{7,}(?![0-9])")


def redact(text: str) -> str:
    """``text`` with every run of 7+ digits replaced by ``<N digits>``."""
    return _DIGIT_RUN.sub(lambda m: f"<{len(m.group(0).lstrip('+'))} digits>", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            msg = str(record.msg)
        record.msg, record.args = redact(msg), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (epoch s), level, logger, msg, and exc if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "info", *, fmt: str = "text", file: Path | None = None,
                  max_bytes: int = 10 * 1024 * 1024, backups: int = 3) -> None:
    """Configure the root logger once: stderr, or ``file`` rotated at ``max_bytes``
    with ``backups`` old files kept (so logs never fill the box's disk)."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes,
                                                       backupCount=backups, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_afe", False):
            root.removeHandler(old)
            old.close()
    setattr(handler, "_afe", True)  # noqa: B010 - marks the handler this module owns
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
