"""Small helpers shared by the command-line tools."""

from __future__ import annotations

import sys
from typing import Any


def setup_logging(level: str = "info") -> None:
    """Text logs on stderr at ``level`` (before a config is read)."""
    from edge.ops.logsetup import setup_logging as _setup

    _setup(level)


def setup_logging_from(cfg: Any) -> None:
    """Logs as the config's [agent] log_* keys say (level, format, file and its cap)."""
    from edge.ops.logsetup import setup_logging as _setup

    a = cfg.agent
    _setup(a.log_level, fmt=a.log_format, file=a.log_file, max_bytes=a.log_max_bytes,
           backups=a.log_backups)


def progress_bar(desc: str, unit: str, total: int | None = None) -> Any:
    """A tqdm bar on a terminal; ``None`` when stderr is not a terminal (CI, pipes)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc=desc, unit=unit, unit_scale=True, total=total, file=sys.stderr,
                mininterval=0.5)


def fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code
