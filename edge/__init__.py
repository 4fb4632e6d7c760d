"""Edge agent against telecom fraud: runtime, config, detectors and reporting."""

__version__ = "0.1.0"
