"""Makes ``back2back`` (the transport test base) importable from driver test modules
of every domain: ``from back2back import Back2BackTest``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
