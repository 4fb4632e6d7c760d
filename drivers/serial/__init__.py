"""Serial devices of the courier depot station (field-formats section 2a-2d).

Each device has a sans-IO protocol core (bytes and a timestamp in, typed records
from ``edge.courier.records`` or counted ``Malformed`` out; no port, no clock):
``barcode.BarcodeCore``, ``mtsics.MtSicsCore``, ``cubiscan.CubiscanCore``,
``rfid.RfidCore``. ``device.SerialDevice`` runs one core on a transport, polls the
device when its protocol is request/reply, and reconnects with backoff.
"""
