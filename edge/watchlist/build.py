"""Builds the watchlist stage from config."""

from __future__ import annotations

from typing import Any

from edge.config import Config
from edge.downlink.watchlist import WatchlistStore
from edge.report.pseudonym import Pseudonymiser, load_key


def build_stages(cfg: Config) -> list[Any]:
    sec = cfg.detectors.watchlist
    if not sec.enabled:
        return []
    from edge.watchlist.matcher import WatchlistMatcher

    key = load_key(cfg.privacy.key, cfg.privacy.key_file, cfg.agent.data_dir)
    return [WatchlistMatcher(WatchlistStore(cfg.agent.data_dir), Pseudonymiser(key),
                             realert_s=sec.realert_s)]
