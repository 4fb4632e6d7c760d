"""The downlink: config updates, watchlists and commands sent to one agent over MQTT.

``messages`` parses and validates (sans-IO: bytes in, a typed message or a rejection
out), ``signing`` checks HMAC-SHA256 signatures, ``watchlist`` and ``runtime`` hold
the state a message may change (each applied atomically), ``handler`` ties them
together and produces the acknowledgement for every message.
"""
