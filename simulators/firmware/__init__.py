"""Simulated device firmware for the firmware bridge (base station, station controller)."""
