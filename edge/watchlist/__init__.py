"""Matching traffic against the police watchlist that arrives over the downlink."""
