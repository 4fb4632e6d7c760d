"""Every check ``run`` would make before starting, made up front and all at once.

``edge-agent check-config`` used to validate the file only, so a config it called
"ok" could still be refused by ``run`` (no live input, an interface that does not
exist, a port already taken, an unreadable key). :func:`preflight` gathers every
such problem as a :class:`Problem` instead of stopping at the first, so an operator
fixes a box's config in one round trip. It opens nothing for longer than a check
(a UDP bind is released at once) and changes nothing on disk.

Domains plug in their own checks (serial ports present, folders readable): a
domain object with a ``preflight(cfg, probe) -> list[Problem]`` attribute is asked
too (see :mod:`edge.domains`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.config import Config


@dataclass(slots=True, frozen=True)
class Problem:
    """One thing ``run`` would refuse: the config key at fault and why."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"key '{self.key}': {self.message}"


def preflight(cfg: Config, *, mode: str = "run", probe: bool = True) -> list[Problem]:
    """Problems that would stop ``mode`` ("run" or "replay") with this config.

    ``probe=False`` skips what depends on this machine (interfaces, ports, devices),
    for configs prepared on one machine for another.
    """
    out: list[Problem] = []
    for check in _CHECKS:
        out.extend(check(cfg, mode, probe))
    out.extend(_domain_checks(cfg, probe))
    seen = {p.key for p in out}
    # Building the detectors repeats some checks above (the key file): say each once.
    out.extend(p for p in _models(cfg) if p.key not in seen)
    return out


def _live_inputs(cfg: Config, mode: str, probe: bool) -> Iterable[Problem]:
    if mode != "run":
        return
    ev = cfg.inputs.events
    live = (ev.files and ev.follow) or ev.udp_listen or cfg.inputs.capture.interface \
        or _domain_has_live_inputs(cfg)
    if not live:
        yield Problem("inputs", "no live inputs configured: set inputs.events.files with "
                      "follow = true, inputs.events.udp_listen, inputs.capture.interface, "
                      "or a device of another domain (e.g. [depot], [bridge])")
    if ev.files and not ev.follow:
        yield Problem("inputs.events.follow", "event files are read once and 'run' would "
                      "end at their end: set follow = true (or use 'edge-agent replay')")


def _interface(cfg: Config, mode: str, probe: bool) -> Iterable[Problem]:
    iface = cfg.inputs.capture.interface
    if mode != "run" or not iface or not probe:
        return
    try:
        socket.if_nametoindex(iface)
    except OSError:
        names = ", ".join(n for _, n in socket.if_nameindex())
        yield Problem("inputs.capture.interface",
                      f"no network interface named {iface!r} (this machine has: {names})")
        return
    if os.geteuid() != 0 and not _has_cap_net_raw():
        yield Problem("inputs.capture.interface", "live capture needs root or CAP_NET_RAW "
                      "(the systemd unit grants it: deploy/systemd/edge-agent.service)")


def _udp_listen(cfg: Config, mode: str, probe: bool) -> Iterable[Problem]:
    addr = cfg.inputs.events.udp_listen
    if mode != "run" or not addr:
        return
    host, sep, port_s = addr.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        yield Problem("inputs.events.udp_listen", f"expected host:port, got {addr!r}")
        return
    if not probe:
        return
    try:
        infos = socket.getaddrinfo(host or "0.0.0.0", int(port_s), type=socket.SOCK_DGRAM)
        fam, _, _, _, sa = infos[0]
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.bind(sa)
    except OSError as exc:
        yield Problem("inputs.events.udp_listen", f"cannot listen on {addr}: {exc}")


def _readable(path: Path | None, key: str, what: str) -> Iterable[Problem]:
    if path is None:
        return
    if not path.is_file():
        yield Problem(key, f"{what} {path} is not a file")
    elif not os.access(path, os.R_OK):
        yield Problem(key, f"{what} {path} is not readable by this user (uid {os.geteuid()})")


def _files(cfg: Config, mode: str, probe: bool) -> Iterable[Problem]:
    yield from _readable(cfg.privacy.key_file, "privacy.key_file", "key file")
    if cfg.privacy.key_file is not None and cfg.privacy.key_file.is_file():
        try:
            if len(cfg.privacy.key_file.read_bytes().strip()) < 16:
                yield Problem("privacy.key_file", "key file holds fewer than 16 bytes")
        except OSError:
            pass
    tls = cfg.mqtt.tls
    for name in ("ca_file", "cert_file", "key_file"):
        yield from _readable(getattr(tls, name), f"mqtt.tls.{name}", "TLS file")
    for i, p in enumerate(cfg.inputs.events.files):
        yield from _readable(p, f"inputs.events.files[{i}]", "event file")
    for i, p in enumerate(cfg.inputs.pcap.files):
        yield from _readable(p, f"inputs.pcap.files[{i}]", "capture file")


def _data_dir(cfg: Config, mode: str, probe: bool) -> Iterable[Problem]:
    d = cfg.agent.data_dir
    probe_dir = d
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent  # the first ancestor that exists must let us create it
    if not probe_dir.is_dir():
        yield Problem("agent.data_dir", f"{probe_dir} is not a directory")
    elif not os.access(probe_dir, os.W_OK | os.X_OK):
        what = "is not writable" if probe_dir == d else f"cannot be created ({probe_dir} " \
            "is not writable)"
        yield Problem("agent.data_dir", f"{d} {what} by this user (uid {os.geteuid()})")
    key = d / "privacy.key"
    if cfg.privacy.key is None and cfg.privacy.key_file is None and key.exists() \
            and not os.access(key, os.R_OK):
        yield Problem("agent.data_dir", f"{key} exists but is not readable")


def _models(cfg: Config) -> Iterable[Problem]:
    """The detectors' models open and verify (sha256, contract) as at start-up."""
    from edge.errors import EdgeError

    try:
        from edge.assembly import check_stages

        check_stages(cfg)
    except EdgeError as exc:
        yield Problem(getattr(exc, "key", None) or "detectors", str(exc))
    except (OSError, ValueError) as exc:
        yield Problem("detectors", f"a detector cannot start: {exc}")


def _domain_has_live_inputs(cfg: Config) -> bool:
    for dom in _domains():
        has = getattr(dom, "has_live_inputs", None)
        if has is not None and has(cfg):
            return True
    return False


def _domain_checks(cfg: Config, probe: bool) -> list[Problem]:
    out: list[Problem] = []
    for dom in _domains():
        check = getattr(dom, "preflight", None)
        if check is not None:
            out.extend(check(cfg, probe))
    return out


def _domains() -> list[object]:
    from edge.domains import available_domains

    return list(available_domains())


def _has_cap_net_raw() -> bool:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 13))
    except (OSError, ValueError):
        pass
    return False


_CHECKS: tuple[Callable[[Config, str, bool], Iterable[Problem]], ...] = (
    _live_inputs, _interface, _udp_listen, _files, _data_dir,
)
