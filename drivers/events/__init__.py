"""Base-station event feed (field-formats 1b): sans-IO decoder and sources."""
