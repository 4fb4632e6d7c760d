"""Seeded simulators for every input, writing truth files, for tests and demos."""
