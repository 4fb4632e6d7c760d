"""Small helpers shared by the command-line tools."""

from __future__ import annotations

import logging
import sys
from typing import Any


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
