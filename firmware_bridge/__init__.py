"""The firmware bridge: an authenticated binary link to base-station and station-controller
firmware over a UART or a socket.

Layers, each a small module: :mod:`~firmware_bridge.schema` (the field language),
:mod:`~firmware_bridge.messages` (every message), :mod:`~firmware_bridge.codec`
(COBS framing, CRC, signing; sans-IO), :mod:`~firmware_bridge.link` (hello, ACK and
retransmission; sans-IO), then the I/O runtime, the pipeline source and the
``station`` actuator. The wire specification is PROTOCOL.md beside this file.
"""
