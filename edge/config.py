"""The agent's one TOML configuration: read, validated and typed in one place.

Every section is a dataclass; :func:`load_config` checks the TOML against them and
raises :class:`~edge.errors.ConfigError` naming the key (and line) of the first
problem: an unknown key, a wrong type, a value out of range or a missing file.
An empty file is a valid config: every field has a sensible default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from edge.errors import ConfigError


class MustExist:
    """Marker: a path field whose file must exist when the config is loaded."""


ExistingPath = Annotated[Path, MustExist]


class Range:
    """Marker: a numeric field bounded to [lo, hi]."""

    def __init__(self, lo: float | None = None, hi: float | None = None) -> None:
        self.lo, self.hi = lo, hi


Positive = Annotated[float, Range(lo=0.0)]
Port = Annotated[int, Range(1, 65535)]


# ----------------------------------------------------------------------------- sections


@dataclass
class AgentSection:
    site: str = "site-0"
    """Site identifier: part of every topic and report; one privacy key per site."""
    id: str = field(default_factory=lambda: socket.gethostname() or "agent")
    """Agent identifier, unique within the site."""
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    """Where the agent keeps state (outbox, generated privacy key). Default: edge-data
    beside the config file; without a config file $AFE_DATA_DIR, else
    ~/.local/state/antifraud-edge (so pseudonyms do not change with the working directory)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log verbosity (logs never carry identifiers in clear: runs of 7+ digits are
    redacted at every level)."""
    log_format: Literal["text", "json"] = "text"
    """text: one human-readable line per record; json: one JSON object per line."""
    log_file: Path | None = None
    """Write logs to this file, rotated at log_max_bytes (default: stderr, for journald)."""
    log_max_bytes: Annotated[int, Range(65_536, 2**40)] = 10 * 1024 * 1024
    """Size at which log_file is rotated."""
    log_backups: Annotated[int, Range(0, 100)] = 3
    """Rotated log files kept beside log_file."""
    status_interval_s: Annotated[float, Range(1.0, 86_400.0)] = 300.0
    """How often (event time) an ``agent.status`` health report is produced."""


def default_data_dir() -> Path:
    """State directory when no config file says otherwise (see AgentSection.data_dir)."""
    env = os.environ.get("AFE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "antifraud-edge"


@dataclass
class PrivacySection:
    key: str | None = field(default=None, metadata={"secret": True})
    """Per-site HMAC key (at least 16 characters). Prefer key_file."""
    key_file: ExistingPath | None = None
    """File holding the per-site HMAC key. If neither is given, a random key is
    created once in data_dir/privacy.key (mode 0600)."""
    fleet_key_file: ExistingPath | None = None
    """Optional file holding the operator's fleet key: reports then carry a
    fleet-scoped pseudonym (subject ``fleet_id``) beside the per-site one, so the
    fleet collector can correlate across sites. Read docs/fleet-pseudonyms.md first:
    a leaked fleet key exposes every site."""


@dataclass
class EventsInput:
    files: list[ExistingPath] = field(default_factory=list)
    """Base-station event JSONL files (field-formats 1b), read in replay/run."""
    follow: bool = False
    """In ``run``: keep reading appended lines (tail -f) instead of stopping at EOF."""
    udp_listen: str | None = None
    """In ``run``: host:port (or [ipv6]:port; [::] is dual-stack) on which to receive
    JSONL events as UDP datagrams (one or more whole lines each)."""
    udp_rcvbuf_bytes: Annotated[int, Range(0, 1 << 30)] = 8 * 1024 * 1024
    """Socket receive buffer for udp_listen (0 = the OS default). Datagrams the kernel
    still drops are counted (kernel_drops) and logged."""
    max_line_bytes: Annotated[int, Range(256, 64 * 1024 * 1024)] = 65_536
    """Longest event line accepted (files and datagrams); longer ones are counted
    malformed and skipped without being held in memory."""


@dataclass
class PcapInput:
    files: list[ExistingPath] = field(default_factory=list)
    """pcap / pcapng files (Ethernet, Linux cooked, raw IP)."""


@dataclass
class CaptureInput:
    interface: str | None = None
    """Interface for live capture with scapy (``run`` only), e.g. "eth1" or "lo"."""
    bpf: str = "udp or tcp or (vlan and (udp or tcp))"
    """Kernel BPF filter (tcpdump syntax). Tagged frames need the ``vlan`` clause."""
    queue_size: Annotated[int, Range(100, 10_000_000)] = 100_000
    """Frames held between the capture thread and the pipeline; beyond it frames are
    dropped and counted (``queue_drops``)."""
    snaplen: Annotated[int, Range(64, 262_144)] = 65_535
    """Bytes captured per packet (live capture)."""


@dataclass
class HepInput:
    listen: str | None = None
    """In ``run``: host:port (or [ipv6]:port) on which to receive HEP v2/v3 datagrams from
    SIP probes (Kamailio/OpenSIPS siptrace, heplify, captagent); the SIP and RTCP they
    carry go to the IP-plane stages with their original addresses and times."""
    rcvbuf_bytes: Annotated[int, Range(0, 1 << 30)] = 8 * 1024 * 1024
    """Socket receive buffer for the HEP listener (0 = the OS default)."""
    auth_key: str | None = None
    """When set, HEP3 datagrams must carry this auth key (chunk 14); others are counted
    and dropped."""


@dataclass
class InputsSection:
    events: EventsInput = field(default_factory=EventsInput)
    pcap: PcapInput = field(default_factory=PcapInput)
    capture: CaptureInput = field(default_factory=CaptureInput)
    hep: HepInput = field(default_factory=HepInput)
    max_future_s: Annotated[float, Range(0.0, 86_400.0)] = 600.0
    """In run: a record stamped further ahead of the wall clock is counted malformed
    and never moves event time."""
    max_past_s: Annotated[float, Range(0.0, 3.2e9)] = 0.0
    """In run: a record stamped further behind the wall clock is counted malformed
    (0 = no limit; old records cannot move event time anyway)."""
    max_jump_s: Annotated[float, Range(1.0, 3.2e9)] = 86_400.0
    """In replay and demo: a record further than this from the feed's own time (the median
    of its first timestamps, then the newest accepted) is counted malformed, unless 64
    records in a row confirm the jump."""


@dataclass
class CallPlaneSection:
    """SIM-box detection on base-station events (per SIM and per device)."""

    enabled: bool = True
    """Run SIM-box detection on base-station events."""
    min_calls: Annotated[int, Range(1, 100_000)] = 6
    """Outgoing calls in 24 h before a SIM is judged on its own behaviour."""
    early_min_calls: Annotated[int, Range(1, 100_000)] = 1
    """Outgoing calls before a SIM with device evidence (its IMEI carried other SIMs,
    or has 2+ devices within two serials: ports of one box) is judged."""
    require_device_evidence: bool = True
    """A model score alone raises an alert only for a SIM with a device-level tell
    (several IMEIs or SIMs per device, a block of consecutive IMEIs whose SIMs call
    with nothing coming in while the SIM took no call all day, slow attaches only, a
    bad Luhn digit, a module TAC) or a
    group tell (SIMs that attached together on its cell dialling in parallel, or
    that call each other there); the explicit rules always report."""
    score_interval_s: Annotated[float, Range(1.0, 3600.0)] = 60.0
    """How often (event time) SIMs that changed are scored, in one batch."""
    max_lateness_s: Annotated[float, Range(0.0, 3600.0)] = 5.0
    """Scoring waits this long behind the newest event so late events still count."""
    idle_evict_s: Annotated[float, Range(60.0, 30 * 86_400.0)] = 24 * 3600.0
    """SIMs, devices and cells idle this long are evicted (windows are 15 min, 1 h, 24 h)."""
    max_entities: Annotated[int, Range(1000, 100_000_000)] = 2_000_000
    """Hard cap on SIMs held; the longest idle are evicted first."""
    utc_offset_h: Annotated[float, Range(-12.0, 14.0)] = 8.0
    """Local time of the site, for the night-time features."""
    model: Path | None = None
    """Folder with model.onnx + model.json; default: the packaged models/callplane."""
    threshold: Annotated[float, Range(0.0, 1.0)] | None = None
    """Model score that raises an alert; default: the threshold in model.json."""
    rules_only: bool = False
    """Run the explicit rules without the model."""


@dataclass
class IpPlaneSection:
    """GoIP / SIM-box detection on packets (per IP endpoint)."""

    enabled: bool = True
    """Run GoIP / SIM-box detection on packets."""
    window_s: Annotated[float, Range(10.0, 86_400.0)] = 600.0
    """Sliding window of per-endpoint behaviour, seconds of event time."""
    max_flows: Annotated[int, Range(1000, 100_000_000)] = 200_000
    """Most RTP/TCP flows tracked at once (oldest idle evicted, counted)."""
    max_dialogs: Annotated[int, Range(1000, 100_000_000)] = 100_000
    """Most SIP dialogs tracked at once (oldest idle evicted, counted)."""
    idle_evict_s: Annotated[float, Range(10.0, 7 * 86_400.0)] = 600.0
    """Flows, dialogs and endpoints idle this long are evicted."""
    signatures: Path | None = None
    """Signature file; default: the packaged signatures."""
    model: Path | None = None
    """ONNX behaviour model (model.json beside it); default: packaged models/ipplane."""
    threshold: Annotated[float, Range(0.0, 1.0)] | None = None
    """Behaviour-model score at which an endpoint without signatures is reported;
    default: the threshold in the model's model.json."""
    eval_interval_s: Annotated[float, Range(1.0, 3600.0)] = 60.0
    """How often (event time) changed endpoints are judged, in one batched model call."""
    min_activity: Annotated[int, Range(1, 1_000_000)] = 10
    """Registrations + calls in the window before the behaviour model judges an endpoint."""
    max_endpoints: Annotated[int, Range(100, 100_000_000)] = 100_000
    """Per-address state kept at most; the oldest is evicted (counted) beyond it."""
    realert_s: Annotated[float, Range(0.0, 30 * 86_400.0)] = 3600.0
    """Report an endpoint again only after this long, unless a new signature shows up."""
    track_unannounced_rtp: bool = True
    """Also time RTP streams that no SDP announced (V=2 header bits, ports >= 1024)."""
    min_observed_s: Annotated[float, Range(0.0, 86_400.0)] = 300.0
    """The behaviour model judges an endpoint only after watching it this long (cadence
    needs re-registrations, call features need ended calls). Signatures are not gated."""
    confirm_evals: Annotated[int, Range(1, 100)] = 2
    """Consecutive judgements at or above the threshold before a behaviour-only report."""
    evidence_s: Annotated[float, Range(60.0, 7 * 86_400.0)] = 1800.0
    """How far back the explicit rules read each endpoint's incoming calls (to its own
    users, to fresh numbers): longer than the window, so a slow relay's calls add up."""
    trunk_numbers: list[str] = field(default_factory=list)
    """Optional: the numbers this operator routes to its business SIP trunks (the DID
    ranges it assigned them and the numbers ported in to them), as digit prefixes (a
    whole number, or a range such as "8657188880" for 100 numbers). A call that comes in
    to one of them counts, in the explicit rules, as a call to the endpoint's own number
    (a trunk whose scattered DIDs never repeat is then not taken for a relay ringing
    fresh numbers). Never list subscriber (mobile) ranges: a relay's victims are called
    on those, and its calls would count as its own. Empty: the rules judge from the
    traffic alone."""


@dataclass
class WatchlistSection:
    """Matching base-station events against the watchlist from the downlink."""

    enabled: bool = True
    """Check each event's IMSI, IMEI, MSISDN and peer against the current watchlist."""
    realert_s: Annotated[float, Range(0.0, 30 * 86_400.0)] = 3600.0
    """Report the same identifier again only after this long (event time)."""


@dataclass
class WarningSection:
    """Early warning: subscribers contacted by SIM-boxes or watchlisted numbers."""

    enabled: bool = True
    """Report potential victims (warning.victim, route warning) for the carrier to warn."""
    window_s: Annotated[float, Range(60.0, 90 * 86400.0)] = 7 * 86400.0
    """Report the same potential victim again only after this long (event time)."""
    recent_s: Annotated[float, Range(0.0, 7 * 86400.0)] = 86400.0
    """Callees contacted this long before their caller was flagged are reported too."""
    device_sources: bool = False
    """Also treat every SIM seen in a device reported as a SIM box (simbox.device IMEIs)
    as a source: more victims of unflagged box lines, but a device false positive
    (a batch of office phones) warns all its SIMs' callees (README: measured both ways)."""


@dataclass
class DetectorsSection:
    callplane: CallPlaneSection = field(default_factory=CallPlaneSection)
    ipplane: IpPlaneSection = field(default_factory=IpPlaneSection)
    watchlist: WatchlistSection = field(default_factory=WatchlistSection)
    warning: WarningSection = field(default_factory=WarningSection)


@dataclass
class TlsSection:
    enabled: bool = False
    """Connect with TLS (server certificate verified against ca_file or the system store)."""
    ca_file: ExistingPath | None = None
    """CA bundle that signed the broker certificate (default: the system store)."""
    cert_file: ExistingPath | None = None
    """Client certificate for mTLS (with key_file)."""
    key_file: ExistingPath | None = None
    """Private key of the client certificate."""
    insecure_skip_verify: bool = False
    """Skip server verification. For lab use only: a warning at start and on every
    connect, and the birth message says so (tls.insecure_skip_verify)."""
    reload_check_s: Annotated[float, Range(0.5, 3600.0)] = 10.0
    """How often the CA, cert and key files are checked for changes; a change
    reconnects with the new files (certificate rotation without restart)."""


@dataclass
class MqttSection:
    enabled: bool = False
    """Publish reports over MQTT through the durable outbox."""
    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: Port = 1883
    """Broker port (8883 is usual with TLS)."""
    topic_prefix: str = "afe/v1"
    """First topic level(s); topics are <prefix>/<site>/<agent>/..."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT protocol version; 5 gives PUBACK reason codes (ACL denials are visible)."""
    client_id: str | None = None
    """Client id; default afe-<site>-<agent>."""
    username: str | None = None
    """Username, if the broker requires one."""
    password: str | None = field(default=None, metadata={"secret": True})
    """Password for username."""
    keepalive_s: Annotated[int, Range(5, 3600)] = 30
    """MQTT keep-alive interval."""
    inflight: Annotated[int, Range(1, 65535)] = 50
    """Most QoS 1 publishes awaiting PUBACK at once."""
    tls: TlsSection = field(default_factory=TlsSection)
    connect_timeout_s: Annotated[float, Range(0.5, 600.0)] = 10.0
    """How long one connection attempt may take."""
    backoff_base_s: Annotated[float, Range(0.01, 600.0)] = 0.5
    """Reconnect delay: full jitter, uniform(0, min(cap, base * 2**attempt))."""
    backoff_cap_s: Annotated[float, Range(0.1, 3600.0)] = 60.0
    """Longest reconnect delay."""
    backoff_reset_s: Annotated[float, Range(0.0, 86400.0)] = 30.0
    """A connection that stays up this long resets the backoff attempt counter."""
    session_expiry_s: Annotated[int, Range(0, 2**32 - 1)] = 3600
    """Broker keeps the agent's session (queued downlink) this long while offline;
    0 = clean session. MQTT 3.1.1: any value > 0 means clean_session=false."""
    heartbeat_s: Annotated[float, Range(1.0, 86400.0)] = 60.0
    """Heartbeat period (QoS 0 on <prefix>/<site>/<agent>/heartbeat)."""
    drain_timeout_s: Annotated[float, Range(0.0, 3600.0)] = 10.0
    """On close, wait this long for the outbox to drain; what is left stays on disk."""
    ack_hold_s: Annotated[float, Range(0.0, 60.0)] = 0.1
    """Keep acknowledged reports this long before deleting them; if the connection
    breaks abnormally meanwhile (broker crash between its PUBACK and delivering or
    saving the message) they are sent again (duplicates share ids). 0 = delete at once."""


@dataclass
class OutboxSection:
    """The durable outbox between the reporter and the MQTT link (SQLite, WAL)."""

    path: Path | None = None
    """SQLite file; default: <agent.data_dir>/outbox.sqlite."""
    max_bytes: Annotated[int, Range(65_536, 2**50)] = 256 * 1024 * 1024
    """Byte cap on the outbox files on disk (database, WAL, index); when full, health
    goes first, then low, then alerts."""
    ttl_health_s: Annotated[float, Range(1.0, 365 * 86_400.0)] = 86_400.0
    """Health telemetry older than this is dropped."""
    ttl_low_s: Annotated[float, Range(1.0, 365 * 86_400.0)] = 7 * 86_400.0
    """Low-severity reports older than this are dropped."""
    ttl_alert_s: Annotated[float, Range(1.0, 365 * 86_400.0)] = 30 * 86_400.0
    """Alerts older than this are dropped (counted and reported)."""
    alert_min_severity: Literal["low", "medium", "high", "critical"] = "medium"
    """Reports at or above this severity are in the 'alert' class (dropped last)."""
    sync: Literal["normal", "full"] = "normal"
    """normal: each report survives a process crash (SIGKILL, OOM); full: also power
    loss (fsync per commit, about 6x slower for single submits)."""


@dataclass
class DownlinkSection:
    """Config, watchlist and command messages to this agent (MQTT downlink)."""

    enabled: bool = True
    """Accept config, watchlist and command messages on the down/ topics."""
    max_bytes: Annotated[int, Range(256, 16 * 1024 * 1024)] = 64 * 1024
    """Size limit for config and command messages."""
    watchlist_max_bytes: Annotated[int, Range(256, 256 * 1024 * 1024)] = 8 * 1024 * 1024
    """Largest watchlist message accepted."""
    allow_unsigned: bool = False
    """Without security.issuer_keys every config, watchlist and command message is
    refused (with an ack saying why). true accepts unsigned ones: for a lab only."""


@dataclass
class SecuritySection:
    """Who may sign what reaches this agent (downlink, watchlists, models, firmware)."""

    issuer_keys: list[str] = field(default_factory=list)
    """Ed25519 public keys of the issuers, each "ed25519:<base64>" (make a pair with
    `edge-agent keys gen`). Only public keys: nothing on the box can forge."""


@dataclass
class JsonlOutput:
    path: Path | None = None
    """Append every report as one JSON line to this file."""


@dataclass
class OutputsSection:
    jsonl: JsonlOutput = field(default_factory=JsonlOutput)
    stdout: bool = False
    """Also print a one-line summary of each report to stdout."""


@dataclass
class ModelsSection:
    """Which model packages this agent accepts, and how it watches them once deployed."""

    require_signature: Literal["external", "always", "never"] = "external"
    """external: every model from outside this release (a configured folder, an update
    over MQTT) must carry a valid signature by one of security.issuer_keys; always: the
    packaged ones too; never: no signature check (a lab only)."""
    canary_rtol: Annotated[float, Range(0.0, 1.0)] = 1e-4
    """Relative tolerance between a new model's canary outputs on this box and the
    outputs shipped with it; a larger difference refuses the update."""
    drift_psi: Annotated[float, Range(0.01, 10.0)] = 0.25
    """Population stability index (vs the training reference) above which a feature
    counts as drifted; PSI > 0.25 is the usual "significant shift" bar."""
    drift_min_rows: Annotated[int, Range(100, 10_000_000)] = 2000
    """Rows scored since the last drift check before features are compared."""
    drift_warmup_s: Annotated[float, Range(0.0, 30 * 86_400.0)] = 86_400.0
    """Event time from the first record before drift is reported: until the longest
    feature window (24 h on the call plane) has filled, a site's rows are early-day
    rows and cannot match the whole days the reference holds. Checks still run (and
    show in the counters); only their alerts wait. 0: report from the start."""


@dataclass
class ResponseSection:
    """Acting on watchlist hits (suspend/re-verify requests, IP blocks, diverts)."""

    enabled: bool = True
    """Run the response stage on watchlist hits (every action audited and reported)."""
    dry_run: bool = True
    """Decide and audit every action but do not act (actuators answer dry_run)."""
    rules: list[str] = field(default_factory=lambda: [
        "*/imsi/*=suspend_request", "*/iccid/*=suspend_request",
        "*/msisdn/call=suspend_request", "*/ip/*=block_ip", "*/*/depot=divert",
        "*/*/*=report_only"])
    """"<list>/<kind>/<plane>=<action>" rules, first match wins; actions:
    suspend_request, reverify_request, block_ip, divert, report_only."""
    block_ttl_s: Annotated[float, Range(60.0, 365 * 86400.0)] = 86400.0
    """How long an IP block lasts (an nftables element timeout: expires by itself)."""
    nft_table: str = "afe"
    """The nftables table (family inet) the agent owns for its blocks."""
    divert_deadline_s: Annotated[float, Range(0.1, 600.0)] = 5.0
    """Deadline of a divert ordered by a watchlist hit at the depot."""


@dataclass
class MetricsSection:
    """An OpenMetrics endpoint for Prometheus-style scrapers (``run`` only)."""

    enabled: bool = False
    """Serve the pipeline's counters, queue depths, outbox state, RSS and CPU at
    http://<bind>:<port>/metrics."""
    bind: str = "127.0.0.1"
    """Address to listen on; keep it on localhost unless the scraper is elsewhere."""
    port: Port = 9464
    """TCP port of the endpoint."""


@dataclass
class Config:
    agent: AgentSection = field(default_factory=AgentSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    inputs: InputsSection = field(default_factory=InputsSection)
    detectors: DetectorsSection = field(default_factory=DetectorsSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    outbox: OutboxSection = field(default_factory=OutboxSection)
    downlink: DownlinkSection = field(default_factory=DownlinkSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    outputs: OutputsSection = field(default_factory=OutputsSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    models: ModelsSection = field(default_factory=ModelsSection)
    response: ResponseSection = field(default_factory=ResponseSection)
    source_path: Path | None = field(default=None, metadata={"internal": True})
    """Where the config was read from (not a config key)."""
    sections: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})
    """Tables declared by domain plug-ins (edge.domains), by key; read with section()."""

    def section(self, key: str) -> Any:
        """A domain's own config table (its dataclass; defaults when the file has none).
        Raises KeyError when no installed domain declares ``key``."""
        got = self.sections.get(key)
        if got is None:
            types_ = plugin_sections()
            if key not in types_:
                raise KeyError(f"no installed domain declares a [{key}] config table")
            got = self.sections[key] = types_[key]()
        return got


_CORE_KEYS = frozenset(f.name for f in dataclasses.fields(Config))


def plugin_sections() -> dict[str, type]:
    """Config tables the installed domains declare (key -> dataclass), beside the core's."""
    from edge.domains import config_sections  # lazily: domains import this module

    return config_sections()


# ----------------------------------------------------------------------------- loading


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML config file; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", source=str(p)) from None
    return parse_config(text, source=str(p), base_dir=p.resolve().parent)


def parse_config(text: str, *, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate TOML text against :class:`Config`; relative paths resolve against base_dir."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"not valid TOML: {exc}", source=source,
                          line=int(m.group(1)) if m else None) from None
    ctx = _Ctx(text=text, source=source, base_dir=base_dir or Path.cwd())
    plugins = plugin_sections()
    own = {k: raw.pop(k) for k in list(raw) if k in plugins}
    cfg = _build(Config, raw, "", ctx, extra_keys=plugins)
    for key, value in own.items():
        cfg.sections[key] = _build(plugins[key], value, key, ctx)
    cfg.source_path = Path(source) if source and not source.startswith("<") else None
    agent_raw = raw.get("agent")
    if cfg.source_path is not None and not (isinstance(agent_raw, dict)
                                            and "data_dir" in agent_raw):
        cfg.agent.data_dir = ctx.base_dir / "edge-data"  # documented: beside the file
    _cross_checks(cfg, ctx)
    return cfg


@dataclass
class _Ctx:
    text: str
    source: str
    base_dir: Path

    def line_of(self, dotted: str) -> int | None:
        """Best-effort line number of a dotted key in the TOML text."""
        parts = dotted.split(".")
        leaf = re.sub(r"\[\d+\]$", "", parts[-1])
        section = ".".join(parts[:-1])
        lines = self.text.splitlines()
        in_section = section == ""
        for i, line in enumerate(lines, 1):
            s = line.strip()
            if s.startswith("["):
                name = s.strip("[] ")
                in_section = name == section
                if name == dotted:
                    return i
                continue
            if (in_section or section == "") and re.match(
                rf'^\s*("?){re.escape(leaf)}\1\s*=', line
            ):
                return i
            if re.match(rf"^\s*{re.escape(dotted)}\s*=", line):
                return i
        return None

    def error(self, msg: str, key: str) -> ConfigError:
        return ConfigError(msg, key=key, line=self.line_of(key), source=self.source)


def _build(cls: type, raw: Any, prefix: str, ctx: _Ctx, extra_keys: Any = ()) -> Any:
    if not isinstance(raw, dict):
        raise ctx.error(f"expected a table, got {_tname(raw)}", prefix or "<root>")
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            known = list(fields) + list(extra_keys)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else \
                f"; known keys: {', '.join(sorted(known))}"
            raise ctx.error(f"unknown key{hint}", dotted)
        kwargs[key] = _coerce(value, hints[key], dotted, ctx)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, key: str, ctx: _Ctx) -> Any:
    markers: tuple[Any, ...] = ()
    if get_origin(tp) is Annotated:
        tp, *rest = get_args(tp)
        markers = tuple(rest)
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _coerce(value, Annotated[args[0], *markers] if markers else args[0], key, ctx)
        raise ctx.error("unsupported union type", key)  # pragma: no cover
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ctx.error(f"must be one of {', '.join(map(repr, allowed))}, got {value!r}", key)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ctx.error(f"expected a list, got {_tname(value)}", key)
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]", ctx) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, ctx)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise ctx.error(f"expected true or false, got {_tname(value)}", key)
        return value
    if tp is int or tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            tp is int and not isinstance(value, int)
        ):
            raise ctx.error(f"expected {'an integer' if tp is int else 'a number'}, "
                            f"got {_tname(value)}", key)
        if isinstance(value, float) and not math.isfinite(value):
            # TOML has nan and inf literals; a nan threshold or interval silently
            # disables what it bounds (nan compares false with everything)
            raise ctx.error(f"must be a finite number, got {value}", key)
        for m in markers:
            if isinstance(m, Range):
                if (m.lo is not None and value < m.lo) or (m.hi is not None and value > m.hi):
                    lo = "-inf" if m.lo is None else m.lo
                    hi = "inf" if m.hi is None else m.hi
                    raise ctx.error(f"{value} is out of range [{lo}, {hi}]", key)
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise ctx.error(f"expected a string, got {_tname(value)}", key)
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ctx.error(f"expected a path string, got {_tname(value)}", key)
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = ctx.base_dir / p
        if any(m is MustExist for m in markers) and not p.exists():
            raise ctx.error(f"file not found: {p}", key)
        return p
    raise ctx.error(f"unsupported type {tp!r}", key)  # pragma: no cover


def _cross_checks(cfg: Config, ctx: _Ctx) -> None:
    if cfg.privacy.key is not None and len(cfg.privacy.key) < 16:
        raise ctx.error("privacy key must be at least 16 characters", "privacy.key")
    if cfg.privacy.key is not None and cfg.privacy.key_file is not None:
        raise ctx.error("give either privacy.key or privacy.key_file, not both", "privacy.key")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cfg.agent.site):
        raise ctx.error("site must be 1-64 of [A-Za-z0-9_.-] (it is part of MQTT topics)",
                        "agent.site")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cfg.agent.id):
        raise ctx.error("agent id must be 1-64 of [A-Za-z0-9_.-]", "agent.id")
    if any(c in cfg.mqtt.topic_prefix for c in "#+") or cfg.mqtt.topic_prefix.endswith("/"):
        raise ctx.error("topic_prefix may not contain wildcards or end with '/'",
                        "mqtt.topic_prefix")
    if cfg.security.issuer_keys:
        from edge.errors import SignatureError
        from edge.security.signing import trusted_keys

        try:
            trusted_keys(cfg.security.issuer_keys)
        except SignatureError as exc:
            raise ctx.error(exc.reason, "security.issuer_keys") from None
    for n in cfg.detectors.ipplane.trunk_numbers:
        if not re.fullmatch(r"\+?[0-9]{3,15}", n):
            raise ctx.error(f"trunk number prefix {n!r}: 3-15 digits (a leading + is "
                            "dropped)", "detectors.ipplane.trunk_numbers")
    tls = cfg.mqtt.tls
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ctx.error("cert_file and key_file go together (mTLS)", "mqtt.tls.cert_file")


def redacted(cfg: Any) -> Any:
    """The config as plain data (dicts, lists, str, numbers) with every secret field
    (``metadata={"secret": True}``: privacy.key, mqtt.password) replaced by whether it
    is set. What may be hashed into the birth message or logged."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cfg):
            if f.metadata.get("internal"):
                continue
            v = getattr(cfg, f.name)
            out[f.name] = ("<set>" if v is not None else None) if f.metadata.get("secret") \
                else redacted(v)
        return out
    if isinstance(cfg, dict):
        return {str(k): redacted(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [redacted(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with dotted keys (``"detectors.callplane.threshold"``) set,
    each value checked exactly as the TOML file's would be. Raises ConfigError naming
    the key; ``cfg`` itself is never modified (for runtime updates over the downlink)."""
    import copy

    new = copy.deepcopy(cfg)
    ctx = _Ctx(text="", source="<update>", base_dir=Path.cwd())
    for dotted, value in overrides.items():
        obj, parts = _root(new, dotted)
        for i, part in enumerate(parts):
            names = {f.name for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
            if part not in names:
                raise ConfigError("unknown key", key=dotted)
            if i == len(parts) - 1:
                tp = get_type_hints(type(obj), include_extras=True)[part]
                base = get_args(tp)[0] if get_origin(tp) is Annotated else tp
                if dataclasses.is_dataclass(base):
                    raise ConfigError("is a section, not a value", key=dotted)
                setattr(obj, part, _coerce(value, tp, dotted, ctx))
            else:
                obj = getattr(obj, part)
                if not dataclasses.is_dataclass(obj):
                    raise ConfigError("unknown key", key=dotted)
    _cross_checks(new, ctx)
    return new


def _root(cfg: Config, dotted: str) -> tuple[Any, list[str]]:
    """Where a dotted key starts: the core config, or a domain's own table."""
    head, _, rest = dotted.partition(".")
    if rest and head not in _CORE_KEYS and head in plugin_sections():
        return cfg.section(head), rest.split(".")
    return cfg, dotted.split(".")


def get_key(cfg: Config, dotted: str) -> Any:
    """The value of a dotted key (core or a domain's table)."""
    obj, parts = _root(cfg, dotted)
    for part in parts:
        obj = getattr(obj, part)
    return obj


def set_key(cfg: Config, dotted: str, value: Any) -> None:
    """Set a dotted key without checks (use :func:`apply_overrides` to check first)."""
    obj, parts = _root(cfg, dotted)
    for part in parts[:-1]:
        obj = getattr(obj, part)
    setattr(obj, parts[-1], value)


def _tname(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)
