"""Puts this folder on sys.path so tests can share watchlist_entries (pytest runs with
--import-mode=importlib, which does not)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
