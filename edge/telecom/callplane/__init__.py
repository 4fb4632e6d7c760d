"""Call-plane SIM-box detection: per-entity state, features, rules, model, detector.

Its hot modules may run from a compiled build (:mod:`edge.native`); the ``.py``
sources here are the reference, and run whenever no build matches them."""

from edge import native as _native

_native.attach(__path__)
