"""A fuzzing campaign over every decoder that reads from outside (issue 9).

Targets: ``events`` (event JSON lines), ``pcap`` (pcap/pcapng files through the
offline source and the event-time guard), ``sip``, ``sdp``, ``goip`` (GoIP SMS
protocol), ``downlink`` (the downlink handler, unsigned and signed), ``config`` (TOML).
Each target turns bytes into one verdict, ``True`` (accepted) or ``False`` (rejected,
and the decoder counted it); anything else that escapes is a *find*.

Inputs are mutations (bit flips, byte and block insertions, deletions, splices of
two corpus entries, "interesting" numbers, truncation) of a corpus: the files under
``tests/fuzz/corpus/<target>/`` (seeded from the simulators with ``--seed-corpus``,
plus every past find) and, when ``--captures`` is given, seeds taken at run time
from the real captures (the pcaps themselves, their SIP, SDP and GoIP payloads), which
are never copied into the repository.

    python -m edge.security.fuzz --n 10000 --captures ../shared/captures   # the long run
    python -m edge.security.fuzz --seed-corpus tests/fuzz/corpus           # re-seed

The figures (inputs tried, rejects, max time and RSS growth per input) go to
``bench/RESULTS.md``. The suite runs a short campaign (``tests/fuzz``) and replays
every corpus file.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INTERESTING = [b"0", b"-1", b"1e308", b"1e17", b"nan", b"NaN", b"inf", b"-0", b"null",
               b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
               b"18446744073709551615", b"9" * 40, b"\x00", b"\r\n\r\n", b'"', b"\\u0000",
               "٣".encode(), b"\n", b";", b":", b"=", b"[", b"{", b"}"]


# ----------------------------------------------------------------------------- mutation


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One to four random edits of ``data`` (deterministic for a seeded ``rng``)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(buf)
        if op == 0 and n:  # flip bits
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # overwrite a byte
            buf[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:  # insert random bytes
            at = rng.randint(0, n)
            buf[at:at] = rng.randbytes(rng.randint(1, 32))
        elif op == 3 and n:  # delete a block
            at = rng.randrange(n)
            del buf[at:at + rng.randint(1, max(1, n // 4))]
        elif op == 4 and n:  # duplicate a block
            at = rng.randrange(n)
            blk = buf[at:at + rng.randint(1, 256)]
            buf[at:at] = blk * rng.randint(1, 8)
        elif op == 5:  # an interesting token
            at = rng.randint(0, n)
            tok = rng.choice(INTERESTING)
            if n and rng.random() < 0.5:
                del buf[at:at + len(tok)]
            buf[at:at] = tok
        elif op == 6 and corpus:  # splice with another entry
            other = rng.choice(corpus)
            a, b = rng.randint(0, n), rng.randint(0, len(other))
            buf = buf[:a] + bytearray(other[b:])
        elif op == 7 and n:  # truncate
            del buf[rng.randint(0, n):]
        elif op == 8 and n >= 4:  # overwrite a 32-bit word with an extreme value
            at = rng.randrange(n - 3)
            buf[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
                                         b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00"])
    return bytes(buf)


# ----------------------------------------------------------------------------- targets


class Find(Exception):
    """A target broke its contract (raised, or hid an internal error)."""


@dataclass
class Target:
    name: str
    run: Callable[[bytes], bool]
    seeds: Callable[[], list[bytes]]


def _events() -> Target:
    from drivers.events.decoder import EventDecoder
    from edge.records import Malformed

    def run(data: bytes) -> bool:
        d = EventDecoder("fuzz", max_line=4096)
        recs = d.decode_block(data)
        bad = sum(1 for r in recs if type(r) is Malformed)
        if bad != d.malformed:
            raise Find(f"{bad} Malformed records but the counter says {d.malformed}")
        return bad == 0

    def seeds() -> list[bytes]:
        import orjson

        from simulators.telecom.events import EventSimConfig, EventSimulator

        sim = EventSimulator(EventSimConfig(seed=5, subscribers=40, simbox_devices=1,
                                            ports_per_device=2, hours=1))
        lines = [orjson.dumps(e) for e in sim.events()][:400]
        return [b"\n".join(lines[i:i + 8]) + b"\n" for i in range(0, len(lines), 40)]

    return Target("events", run, seeds)


def _pcap() -> Target:
    from drivers.capture.fastpcap import FastPcapSource
    from edge.errors import InputError
    from edge.records import Malformed
    from edge.timeguard import GuardedSource

    tmp = Path(tempfile.mkdtemp(prefix="afe-fuzz-"))
    path = tmp / "in.pcap"

    def run(data: bytes) -> bool:
        path.write_bytes(data)
        src = GuardedSource(FastPcapSource(path), live=False)
        try:
            recs = list(src)
        except InputError:
            return False
        return not any(type(r) is Malformed for r in recs)

    def seeds() -> list[bytes]:
        import io

        from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

        out = []
        for seed in (1, 2):
            buf = io.BytesIO()
            simulate_pcap(PcapSimConfig(seed=seed, duration_s=20.0, softphones=2,
                                        ipphones=1, pbx_trunks=1, goip_plain=1,
                                        goip_masked=1, simbank_clients=1, lines=2), buf)
            out.append(buf.getvalue()[:24_000])
        return out

    return Target("pcap", run, seeds)


def _sip() -> Target:
    from edge.telecom.ipplane.sip import SipError, SipMessage, SipStream, parse_message

    def run(data: bytes) -> bool:
        msg, used = parse_message(data)
        if not isinstance(msg, (SipMessage, SipError, type(None))) or not 0 <= used <= len(data):
            raise Find(f"parse_message returned {msg!r}, {used}")
        if isinstance(msg, SipMessage):
            msg.call_id  # noqa: B018  (the accessors parse headers lazily)
            msg.cseq  # noqa: B018
        stream = SipStream()
        cut = len(data) // 2
        got = stream.feed(1000, data[:cut]) + stream.feed(1000 + cut, data[cut:])
        return isinstance(msg, SipMessage) and stream.errors == 0 and got is not None

    return Target("sip", run, lambda: [s for s in _sim_payloads()["sip"]])


def _sdp() -> Target:
    from edge.telecom.ipplane.sdp import parse_sdp

    def run(data: bytes) -> bool:
        return parse_sdp(data) is not None

    return Target("sdp", run, lambda: _sim_payloads()["sdp"])


def _goip() -> Target:
    from edge.telecom.ipplane.goip_sms import parse_goip_sms

    def run(data: bytes) -> bool:
        return parse_goip_sms(data) is not None

    return Target("goip", run, lambda: _sim_payloads()["goip"])


def _downlink() -> Target:
    from edge.config import Config, DownlinkSection
    from edge.downlink.envelope import seal
    from edge.downlink.handler import DownlinkHandler
    from edge.downlink.runtime import RuntimeConfig
    from edge.downlink.watchlist import WatchlistStore
    from edge.security import signing

    issuer = signing.generate_private_key()
    keys = signing.trusted_keys([signing.public_key_text(issuer)])
    tmp = Path(tempfile.mkdtemp(prefix="afe-fuzz-dl-"))
    cfg = Config()
    h = DownlinkHandler(DownlinkSection(max_bytes=4096, watchlist_max_bytes=65_536),
                        prefix="p", site="s", agent="a", state_dir=tmp, keys=keys,
                        watchlists=WatchlistStore(tmp, check_s=3600.0),
                        runtime=RuntimeConfig(cfg, tmp))
    kinds = ("config", "watchlist", "command")

    def run(data: bytes) -> bool:
        # the first byte picks the kind and whether an authentic issuer signs it, so the
        # parser behind the signature check is reached as well
        sel = data[0] if data else 0
        kind = kinds[(sel & 3) % 3]
        body = data[1:]
        payload = seal(kind, body, issuer) if sel & 4 else body
        ack = h.handle(f"p/s/a/down/{kind}", payload, data[:8])
        if ack.reason.startswith("internal error"):
            raise Find(f"handler hid an exception: {ack.reason}")
        if not ack.ok and not ack.reason:
            raise Find("a rejection without a reason")
        return ack.ok

    def seeds() -> list[bytes]:
        import orjson

        msgs = [
            (0, {"id": "c1", "version": 1, "set": {"detectors.ipplane.threshold": 0.7}}),
            (1, {"id": "w1", "version": 2, "id_type": "imsi",
                 "entries": ["h1:" + "a" * 32, "h1:" + "b" * 32]}),
            (2, {"id": "m1", "version": 3, "command": "ping", "args": {}}),
            (0, {"id": "c2", "version": 4, "set": {"agent.status_interval_s": 60,
                                                   "mqtt.heartbeat_s": 30}}),
        ]
        return [bytes([k | 4]) + orjson.dumps(m) for k, m in msgs] + \
            [bytes([k]) + orjson.dumps(m) for k, m in msgs[:2]]

    return Target("downlink", run, seeds)


def _config() -> Target:
    from edge.config import parse_config
    from edge.errors import ConfigError

    def run(data: bytes) -> bool:
        try:
            parse_config(data.decode("utf-8", "replace"), source="<fuzz>",
                         base_dir=Path(tempfile.gettempdir()))
        except ConfigError:
            return False
        return True

    def seeds() -> list[bytes]:
        return [
            b'[agent]\nsite = "s1"\nid = "a1"\nstatus_interval_s = 60\n'
            b'[inputs.events]\nudp_listen = "[::]:5000"\nmax_line_bytes = 4096\n'
            b'[detectors.callplane]\nthreshold = 0.8\nmin_calls = 6\n',
            b'[mqtt]\nenabled = true\nhost = "broker"\nport = 8883\nbackoff_cap_s = 60.0\n'
            b'[mqtt.tls]\nenabled = true\ninsecure_skip_verify = false\n'
            b'[outbox]\nmax_bytes = 1048576\nttl_alert_s = 86400.0\n',
            b'[security]\nissuer_keys = ["ed25519:' + b"A" * 43 + b'="]\n'
            b'[downlink]\nallow_unsigned = false\nmax_bytes = 65536\n',
        ]

    return Target("config", run, seeds)


def targets() -> dict[str, Target]:
    return {t.name: t for t in (_events(), _pcap(), _sip(), _sdp(), _goip(), _downlink(),
                                _config())}


_PAYLOADS: dict[str, list[bytes]] = {}


def _sim_payloads() -> dict[str, list[bytes]]:
    """SIP messages, SDP bodies and GoIP datagrams of a small simulated capture."""
    if not _PAYLOADS:
        import io

        from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

        buf = io.BytesIO()
        simulate_pcap(PcapSimConfig(seed=3, duration_s=120.0, softphones=2, ipphones=1,
                                    pbx_trunks=1, goip_plain=1, goip_masked=1,
                                    simbank_clients=1, lines=2), buf)
        _PAYLOADS.update(payloads_of_pcap(buf.getvalue()))
    return _PAYLOADS


def payloads_of_pcap(data: bytes, limit: int = 40) -> dict[str, list[bytes]]:
    """{"sip": [...], "sdp": [...], "goip": [...]}: L4 payloads of a capture's packets."""
    import io

    from drivers.capture.decode import FrameDecoder
    from drivers.capture.pcapio import open_records
    from edge.records import Packet
    from edge.telecom.ipplane.goip_sms import parse_goip_sms
    from edge.telecom.ipplane.sip import looks_like_sip

    out: dict[str, list[bytes]] = {"sip": [], "sdp": [], "goip": []}
    dec = FrameDecoder("seed")
    recs: list[Any] = []
    for blk in open_records(io.BytesIO(data), "seed"):
        for o, c, t, lt, i in zip(blk.off.tolist(), blk.caplen.tolist(), blk.ts.tolist(),
                                  blk.linktype.tolist(), range(len(blk.off)), strict=True):
            dec.decode(t, lt, blk.data[o:o + c], blk.first + i, recs)
    for r in recs:
        p = getattr(r, "payload", None) if isinstance(r, Packet) else None
        if not p:
            continue
        if looks_like_sip(p) and len(out["sip"]) < limit:
            out["sip"].append(p)
            cut = p.find(b"\r\n\r\n")
            if cut > 0 and p[cut + 4:].startswith(b"v=") and len(out["sdp"]) < limit:
                out["sdp"].append(p[cut + 4:])
        elif parse_goip_sms(p) is not None and len(out["goip"]) < limit:
            out["goip"].append(p)
    return out


def capture_seeds(captures: Path) -> dict[str, list[bytes]]:
    """Seeds taken from the real captures at run time (never stored in the repo)."""
    out: dict[str, list[bytes]] = {"pcap": [], "sip": [], "sdp": [], "goip": []}
    for f in sorted(captures.glob("*/*.pcap*")):
        data = f.read_bytes()
        out["pcap"].append(data[:24_000])
        for k, v in payloads_of_pcap(data, limit=10).items():
            out[k] += v
    return out


# ----------------------------------------------------------------------------- campaign


@dataclass
class Figures:
    target: str
    inputs: int = 0
    rejects: int = 0
    finds: list[tuple[bytes, str]] = field(default_factory=list)
    max_time_s: float = 0.0
    max_rss_growth: int = 0
    corpus: int = 0

    def line(self) -> str:
        return (f"| {self.target} | {self.corpus} | {self.inputs:,} | {self.rejects:,} | "
                f"{len(self.finds)} | {self.max_time_s * 1e3:.1f} | "
                f"{self.max_rss_growth / 1024:.0f} |")


def load_corpus(root: Path | None, name: str) -> list[bytes]:
    if root is None or not (root / name).is_dir():
        return []
    return [p.read_bytes() for p in sorted((root / name).iterdir()) if p.is_file()]


def campaign(t: Target, n: int, *, seed: int = 0, corpus: Iterable[bytes] = (),
             extra: Iterable[bytes] = ()) -> Figures:
    """Run ``n`` mutated inputs (after every corpus entry itself) through ``t``."""
    from edge.report.presence import rss_bytes

    entries = [*corpus, *extra, *t.seeds()]
    entries = [e for e in entries if e] or [b"\x00"]
    fig = Figures(t.name, corpus=len(entries))
    rng = random.Random(f"{t.name}/{seed}")
    inputs: Iterable[bytes] = (*entries, *(mutate(rng, rng.choice(entries), entries)
                                           for _ in range(n)))
    for data in inputs:
        before = rss_bytes()
        t0 = time.perf_counter()
        try:
            ok = t.run(data)
        except Exception as exc:  # a find: keep the input and the reason
            fig.finds.append((data, f"{type(exc).__name__}: {exc}\n"
                              f"{''.join(traceback.format_tb(exc.__traceback__)[-3:])}"))
            ok = False
        dt = time.perf_counter() - t0
        fig.inputs += 1
        fig.rejects += not ok
        fig.max_time_s = max(fig.max_time_s, dt)
        fig.max_rss_growth = max(fig.max_rss_growth, rss_bytes() - before)
    return fig


def seed_corpus(root: Path) -> None:
    """Write the simulator-derived seeds of every target under ``root``."""
    for name, t in targets().items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(t.seeds()):
            (d / f"sim-{i:02d}.bin").write_bytes(s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.security.fuzz",
                                description="Mutation fuzzing of every input decoder.")
    p.add_argument("--n", type=int, default=10_000, help="mutated inputs per target")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (deterministic)")
    p.add_argument("--target", action="append", help="only these targets (repeatable)")
    p.add_argument("--corpus", type=Path, default=Path("tests/fuzz/corpus"),
                   help="corpus directory (one folder per target)")
    p.add_argument("--captures", type=Path, help="real captures to take seeds from")
    p.add_argument("--finds", type=Path, default=Path("fuzz-finds"),
                   help="where inputs that broke a target are written")
    p.add_argument("--seed-corpus", type=Path, metavar="DIR",
                   help="write the simulator seeds to DIR and exit")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # decoders log rejects; the figures count them
    if args.seed_corpus:
        seed_corpus(args.seed_corpus)
        return 0
    real = capture_seeds(args.captures) if args.captures else {}
    print("| target | corpus | inputs | rejects | finds | max ms/input | max RSS growth KiB |")
    print("|---|---|---|---|---|---|---|")
    finds = 0
    for name, t in targets().items():
        if args.target and name not in args.target:
            continue
        fig = campaign(t, args.n, seed=args.seed, corpus=load_corpus(args.corpus, name),
                       extra=real.get(name, []))
        print(fig.line(), flush=True)
        for i, (data, why) in enumerate(fig.finds):
            args.finds.mkdir(parents=True, exist_ok=True)
            (args.finds / f"{name}-{i}.bin").write_bytes(data)
            (args.finds / f"{name}-{i}.txt").write_text(why)
        finds += len(fig.finds)
    if finds:
        print(f"{finds} finds written to {args.finds}/", file=sys.stderr)
    return 1 if finds else 0


if __name__ == "__main__":
    sys.exit(main())
