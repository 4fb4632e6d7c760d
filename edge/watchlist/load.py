"""``python -m edge.watchlist.load``: apply a signed watchlist file (no MQTT needed).

The file is the same JSON as a downlink watchlist message (a snapshot or a delta,
:mod:`edge.watchlist.model`), with a detached signature beside it (``FILE.sig``: one
``afe-sig-v1`` line made over the file under the context ``watchlist`` by the issuer,
e.g. ``edge-agent keys sign``). It is verified against the config's
``[security] issuer_keys`` before it is parsed, then applied to the agent's stored
list exactly as the downlink would; a running agent picks it up at its next look at the
file (once a second of its clock: within two seconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from edge.config import load_config
from edge.downlink.watchlist import WatchlistStore
from edge.errors import ConfigError, SignatureError
from edge.security.signing import trusted_keys, verify_detached

CONTEXT = "watchlist"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.watchlist.load",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python -m edge.watchlist.load "
                                        "--config /etc/afe/agent.toml list-0042.json")
    ap.add_argument("file", type=Path, help="watchlist JSON (with FILE.sig beside it)")
    ap.add_argument("--config", type=Path, required=True, help="the agent's config")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        keys = trusted_keys(cfg.security.issuer_keys)
        if not keys:
            raise SignatureError("no issuer keys configured ([security] issuer_keys)")
        sig = Path(str(a.file) + ".sig").read_text("ascii").strip()
        kid = verify_detached(a.file, sig, keys, CONTEXT)
        t0 = time.perf_counter()
        wl = WatchlistStore(cfg.agent.data_dir).apply(orjson.loads(a.file.read_bytes()))
    except (ConfigError, SignatureError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"watchlist version {wl.version}: {len(wl):,} entries, signed by {kid}, "
          f"applied in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
