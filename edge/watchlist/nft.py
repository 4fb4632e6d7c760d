"""Actuator ``nftables``: block IP endpoints in a table the agent owns, with expiry.

The agent owns one table (``inet afe`` by default) and never touches any other: two
sets with timeouts (``blocked4``, ``blocked6``) and an input and a forward chain that
drop traffic from or to their members. A block is an element with a timeout, so the
kernel expires it even if the agent is gone; an unblock deletes the element. Commands
run through ``nft -f -`` (optionally inside a network namespace, ``ip netns exec``),
so the same code is exercised in tests inside a private namespace. With ``dry_run``
nothing is run and the outcome says so.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import time
from collections.abc import Sequence

from edge.actuators import outcome
from edge.records import Command, CommandOutcome


class NftablesActuator:
    name = "nftables"

    def __init__(self, *, table: str = "afe", dry_run: bool = True, netns: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.table = table
        self.dry_run = dry_run
        self.netns = netns
        self.timeout_s = timeout_s
        self._ready = False
        self.c = {"blocked": 0, "unblocked": 0, "dry_run": 0, "failed": 0}

    def _nft(self, script: str) -> tuple[bool, str]:
        exe = shutil.which("nft")
        if exe is None:
            return False, "nft is not installed (Debian package nftables)"
        cmd = ([shutil.which("ip") or "ip", "netns", "exec", self.netns] if self.netns else []) \
            + [exe, "-f", "-"]
        try:
            p = subprocess.run(cmd, input=script, capture_output=True, text=True,
                               timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        return p.returncode == 0, (p.stderr or p.stdout).strip()[:300]

    def _ensure_table(self) -> tuple[bool, str]:
        if self._ready:
            return True, ""
        t = self.table
        ok, msg = self._nft(f"""
table inet {t} {{
  set blocked4 {{ type ipv4_addr; flags timeout; }}
  set blocked6 {{ type ipv6_addr; flags timeout; }}
  chain input {{ type filter hook input priority -10; policy accept;
    ip saddr @blocked4 drop; ip6 saddr @blocked6 drop; }}
  chain forward {{ type filter hook forward priority -10; policy accept;
    ip saddr @blocked4 drop; ip daddr @blocked4 drop;
    ip6 saddr @blocked6 drop; ip6 daddr @blocked6 drop; }}
  chain output {{ type filter hook output priority -10; policy accept;
    ip daddr @blocked4 drop; ip6 daddr @blocked6 drop; }}
}}
""")
        self._ready = ok
        return ok, msg

    def submit(self, cmd: Command) -> Sequence[CommandOutcome]:
        now = cmd.ts
        t0 = time.monotonic()
        if cmd.action not in ("block_ip", "unblock_ip"):
            return [outcome(cmd, "rejected", now, f"unknown action {cmd.action!r}")]
        try:
            addr = ipaddress.ip_address(str(cmd.args.get("ip", "")))
        except ValueError:
            return [outcome(cmd, "rejected", now, "args.ip is not an IP address")]
        try:
            ttl = int(float(str(cmd.args.get("ttl_s", 86400))))
        except ValueError:
            return [outcome(cmd, "rejected", now, "args.ttl_s is not a number")]
        if self.dry_run:
            self.c["dry_run"] += 1
            return [outcome(cmd, "dry_run", now, f"would {cmd.action} {addr} for {ttl} s")]
        ok, msg = self._ensure_table()
        if ok:
            s = "blocked4" if addr.version == 4 else "blocked6"
            if cmd.action == "block_ip":
                ok, msg = self._nft(f"add element inet {self.table} {s} "
                                    f"{{ {addr} timeout {max(1, ttl)}s }}\n")
            else:
                ok, msg = self._nft(f"delete element inet {self.table} {s} {{ {addr} }}\n")
        if not ok:
            self.c["failed"] += 1
            return [outcome(cmd, "failed", now, msg, time.monotonic() - t0)]
        self.c["blocked" if cmd.action == "block_ip" else "unblocked"] += 1
        return [outcome(cmd, "acted", now, f"{cmd.action} {addr}", time.monotonic() - t0)]

    def poll(self, now: float) -> Sequence[CommandOutcome]:
        return ()

    def counters(self) -> dict[str, int | float]:
        return dict(self.c)

    def close(self) -> None:
        pass
