"""The downlink: config updates, watchlists and commands sent to one agent over MQTT.

``envelope`` checks the Ed25519 signature line on the raw bytes (before anything is
parsed), ``messages`` parses and validates (sans-IO: bytes in, a typed message or a
rejection out), ``replay`` keeps the durable replay protection (version per kind,
window of recent ids), ``watchlist`` and ``runtime`` hold the state a message may
change (each applied atomically), ``handler`` ties them together and produces the
acknowledgement for every message.
"""
