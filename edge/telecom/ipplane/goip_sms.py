"""The GoIP SMS-server protocol (DBL "GOIP SMS Interface"), sans-IO.

Clear text over UDP between a GoIP gateway and its SMS server. :func:`parse_goip_sms`
takes one datagram and returns a :class:`GoipSms` or ``None`` when the payload is
not this protocol. Kinds:

- ``keepalive``      gateway -> server ``req:N;id:..;pass:..;num:..;signal:..;
  gsm_status:..;voip_status:..;imei:..;imsi:..;iccid:..;`` (every 30 s)
- ``keepalive_ack``  server -> gateway ``reg:N;status:S;``
- ``report``         gateway -> server ``RECEIVE:``, ``DELIVER:``, ``STATE:``,
  ``RECORD:``, ``REMAIN:``, ``CELLS:`` (``KIND:recvid;id:..;...``)
- ``report_ack``     server -> gateway ``RECEIVE 123 OK`` and the like
- ``command``        server -> gateway ``MSG``, ``USSD``, ``get_imei``, ``set_imei``,
  ``get_gsm_num``... with a numeric send id (the gateway echoes the verb in its reply)
- ``reply``          gateway -> server bulk-SMS steps ``PASSWORD``/``SEND``/``OK``/
  ``WAIT``/``ERROR``/``DONE`` with a numeric send id (ambiguous on their own)
"""

from __future__ import annotations

from dataclasses import dataclass

REPORTS = (b"RECEIVE:", b"DELIVER:", b"STATE:", b"RECORD:", b"REMAIN:", b"CELLS:")
REPORT_ACKS = (b"RECEIVE ", b"DELIVER ", b"STATE ", b"RECORD ", b"REMAIN ", b"CELLS ")
COMMANDS = frozenset({
    b"MSG", b"USSD", b"USSDEXIT", b"get_imei", b"set_imei", b"get_gsm_num",
    b"set_gsm_num", b"get_exp_time", b"set_exp_time", b"get_remain_time",
    b"reset_remain_time", b"get_gsm_state", b"svr_drop_call", b"svr_reboot_module",
    b"svr_reboot_dev", b"CF", b"get_out_call_interval", b"set_out_call_interval",
    b"module_ctl_i", b"module_ctl", b"set_base_cell", b"get_cells_list", b"CURCELL",
})
REPLIES = frozenset({b"PASSWORD", b"SEND", b"OK", b"WAIT", b"ERROR", b"DONE", b"CFOK",
                     b"CFERROR", b"USSDERROR"})
# First three bytes of every form above: the hot path's pre-check.
PREFIXES = frozenset(
    [b"req", b"reg"] + [r[:3] for r in REPORTS] + [(c + b" ")[:3] for c in COMMANDS]
    + [(r + b" ")[:3] for r in REPLIES]
)
MAX_LEN = 4096


@dataclass(slots=True, frozen=True)
class GoipSms:
    """One GoIP SMS-protocol message. ``fields`` holds the ``key:value;`` pairs
    (keepalives, reports) or ``verb``/``sendid`` for the space-separated forms."""

    kind: str
    verb: str
    fields: dict[str, str]


def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        k, colon, v = part.partition(":")
        if colon and k:
            out[k.strip()] = v
    return out


def parse_goip_sms(payload: bytes) -> GoipSms | None:
    """Classify one UDP payload; ``None`` if it is not the GoIP SMS protocol."""
    if not payload or len(payload) > MAX_LEN or payload[:3] not in PREFIXES:
        return None
    if payload.startswith(b"req:"):
        text = payload.decode("utf-8", "replace")
        f = _kv(text)
        if "id" in f and f.get("req", "").strip().isdigit() and (
                "gsm_status" in f or "pass" in f):
            return GoipSms("keepalive", "req", f)
        return None
    if payload.startswith(b"reg:"):
        f = _kv(payload.decode("utf-8", "replace"))
        if f.get("reg", "").strip().isdigit() and "status" in f:
            return GoipSms("keepalive_ack", "reg", f)
        return None
    for r in REPORTS:
        if payload.startswith(r):
            f = _kv(payload.decode("utf-8", "replace"))
            verb = r[:-1].decode()
            if f.get(verb, "").strip().lstrip("-").isdigit() and "id" in f:
                return GoipSms("report", verb, f)
            return None
    tokens = payload.split(None, 3)
    if len(tokens) < 2 or not tokens[1].isdigit():
        return None
    word = tokens[0]
    name = word.decode("ascii", "replace")
    info = {"sendid": tokens[1].decode()}
    for r in REPORT_ACKS:
        if payload.startswith(r) and len(tokens) >= 3:
            return GoipSms("report_ack", name, info)
    if word in COMMANDS:
        if word == b"MSG" and not (len(tokens) >= 3 and tokens[2].isdigit()):
            return None
        return GoipSms("command", name, info)
    if word in REPLIES:
        return GoipSms("reply", name, info)
    return None
