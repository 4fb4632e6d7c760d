"""Command-line entry points: ``edge-agent`` and ``edge-sim``."""
