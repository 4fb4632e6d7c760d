"""One error hierarchy for the whole SDK.

Errors say who is at fault: the operator (a bad config), the peer or the field
(malformed input, which is normally *counted* as data rather than raised), the
link (broker, network) or the caller (API misuse).
"""

from __future__ import annotations


class EdgeError(Exception):
    """Root of every error raised by this SDK."""


class ConfigError(EdgeError, ValueError):
    """The configuration is invalid. Names the key and, where known, the line."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None,
                 source: str | None = None) -> None:
        self.key = key
        self.line = line
        self.source = source
        where = []
        if source:
            where.append(str(source) + (f":{line}" if line else ""))
        elif line:
            where.append(f"line {line}")
        if key:
            where.append(f"key '{key}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class InputError(EdgeError, ValueError):
    """Input from the field could not be read at all (missing file, bad format).

    Single malformed records are not raised: decoders return them as
    :class:`edge.records.Malformed` and the pipeline counts them.
    """

    def __init__(self, message: str, *, source: str | None = None,
                 position: str | None = None) -> None:
        self.source = source
        self.position = position
        where = ":".join(p for p in (source, position) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ModelError(EdgeError):
    """A model file is missing, corrupt or does not match its card."""


class LinkError(EdgeError, ConnectionError):
    """The reporting link (MQTT broker, TLS) failed in a way the operator must fix."""


class SignatureError(EdgeError):
    """A signature is missing, malformed, made by an unknown key or does not verify.

    ``reason`` is the short human-readable cause, fit for a log line or a downlink
    acknowledgement (it never contains key material).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UsageError(EdgeError, TypeError):
    """The SDK was called wrongly by the embedding code."""


class TransportError(EdgeError, OSError):
    """A device transport (serial port, socket, file) vanished or failed while open.

    Raised by :mod:`drivers.transport` implementations; callers reconnect with backoff
    (:class:`drivers.transport.reconnect.ReconnectingReader`). ``transport`` names it.
    """

    def __init__(self, message: str, *, transport: str | None = None) -> None:
        self.transport = transport
        super().__init__(f"{transport}: {message}" if transport else message)
