"""Loading the versioned GoIP signature file into typed, pre-indexed matchers.

The file (``signatures.toml`` beside this module by default) is data: each entry
names a matcher ``kind`` and its ``pattern``; this module validates it and builds
the lookup tables the hot path uses (byte prefixes, port maps, header lists), so
adding a signature never needs code unless it needs a new kind of matcher.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import ConfigError

DEFAULT_PATH = Path(__file__).resolve().parent / "signatures.toml"
KINDS = frozenset({"sip_header", "sdp_line", "sdp_regex", "payload_prefix", "goip_sms",
                   "mac_oui", "dhcp_vendor", "dns_name", "tcp_port", "smtp_text"})
SIDES = frozenset({"src", "dst", "server", "client"})


@dataclass(slots=True, frozen=True)
class Signature:
    id: str
    kind: str
    pattern: str
    weight: float
    side: str
    reason: str
    header: str = ""
    sport: int | None = None
    dport: int | None = None
    proto: int | None = None


@dataclass(slots=True)
class SignatureSet:
    """All signatures of one file, indexed by matcher kind."""

    version: str
    report_weight: float
    signatures: list[Signature]
    by_id: dict[str, Signature] = field(default_factory=dict)
    sip_headers: list[tuple[str, str, Signature]] = field(default_factory=list)
    sdp_lines: list[tuple[str, Signature]] = field(default_factory=list)
    sdp_regexes: list[tuple[re.Pattern[str], Signature]] = field(default_factory=list)
    prefixes: dict[bytes, list[Signature]] = field(default_factory=dict)
    goip_sms: dict[str, Signature] = field(default_factory=dict)
    ouis: dict[bytes, Signature] = field(default_factory=dict)
    dhcp_vendors: dict[bytes, Signature] = field(default_factory=dict)
    dns_names: list[tuple[str, Signature]] = field(default_factory=list)
    tcp_ports: dict[int, Signature] = field(default_factory=dict)
    smtp_texts: list[tuple[bytes, Signature]] = field(default_factory=list)
    prefix_len: int = 4

    def __post_init__(self) -> None:
        for s in self.signatures:
            self.by_id[s.id] = s
            k = s.kind
            if k == "sip_header":
                self.sip_headers.append((s.header.lower(), s.pattern.lower(), s))
            elif k == "sdp_line":
                self.sdp_lines.append((s.pattern, s))
            elif k == "sdp_regex":
                self.sdp_regexes.append((re.compile(s.pattern), s))
            elif k == "payload_prefix":
                self.prefixes.setdefault(bytes.fromhex(s.pattern), []).append(s)
            elif k == "goip_sms":
                self.goip_sms[s.pattern] = s
            elif k == "mac_oui":
                self.ouis[bytes.fromhex(s.pattern)] = s
            elif k == "dhcp_vendor":
                self.dhcp_vendors[s.pattern.encode()] = s
            elif k == "dns_name":
                self.dns_names.append((s.pattern.lower().rstrip("."), s))
            elif k == "tcp_port":
                self.tcp_ports[int(s.pattern)] = s
            elif k == "smtp_text":
                self.smtp_texts.append((s.pattern.encode(), s))
        lens = {len(p) for p in self.prefixes}
        if len(lens) > 1:
            raise ConfigError("payload_prefix patterns must all have the same length",
                              key="signature.pattern")
        self.prefix_len = lens.pop() if lens else 4

    def match_dns(self, qname: str) -> Signature | None:
        q = qname.lower().rstrip(".")
        for name, s in self.dns_names:
            if q == name or q.endswith("." + name):
                return s
        return None


def load_signatures(path: Path | str | None = None) -> SignatureSet:
    """Read and validate a signature file; raises ConfigError naming the entry at fault."""
    p = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError("signature file not found", source=str(p)) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"signature file unreadable: {exc}", source=str(p)) from None
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise ConfigError("missing 'version' string", key="version", source=str(p))
    report_weight = raw.get("report_weight", 1.0)
    if not isinstance(report_weight, (int, float)) or report_weight <= 0:
        raise ConfigError("report_weight must be a positive number", key="report_weight",
                          source=str(p))
    sigs: list[Signature] = []
    seen: set[str] = set()
    for i, e in enumerate(raw.get("signature", [])):
        key = f"signature[{i}]"
        if not isinstance(e, dict):
            raise ConfigError("expected a table", key=key, source=str(p))
        sid, kind = e.get("id"), e.get("kind")
        if not isinstance(sid, str) or not sid or sid in seen:
            raise ConfigError("missing or duplicate id", key=f"{key}.id", source=str(p))
        seen.add(sid)
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}",
                              key=f"{key}.kind", source=str(p))
        pattern = e.get("pattern", "")
        side = e.get("side", "src")
        weight = e.get("weight", 1.0)
        if not isinstance(pattern, str) or side not in SIDES or \
                not isinstance(weight, (int, float)):
            raise ConfigError("pattern must be a string, side one of src/dst/server/client, "
                              "weight a number", key=key, source=str(p))
        try:
            if kind in ("payload_prefix", "mac_oui"):
                bytes.fromhex(pattern)
            elif kind == "sdp_regex":
                re.compile(pattern)
            elif kind == "tcp_port":
                int(pattern)
        except (ValueError, re.error) as exc:
            raise ConfigError(f"bad pattern: {exc}", key=f"{key}.pattern",
                              source=str(p)) from None
        if kind == "sip_header" and not e.get("header"):
            raise ConfigError("sip_header needs 'header'", key=f"{key}.header", source=str(p))
        sigs.append(Signature(sid, kind, pattern, float(weight), side,
                              str(e.get("reason", sid)), str(e.get("header", "")),
                              e.get("sport"), e.get("dport"), e.get("proto")))
    return SignatureSet(version, float(report_weight), sigs)
