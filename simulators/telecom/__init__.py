"""Telecom simulators: base-station events, pcaps, live playback."""
