"""``edge-agent keys``: make an issuer key pair, sign a file or message, verify one.

    edge-agent keys gen --out ops            # ops.key (private, 0600) + ops.pub
    edge-agent keys sign --key ops.key --context watchlist list.json   # -> list.json.sig
    edge-agent keys verify --pub ops.pub --context watchlist list.json
    edge-agent keys verify --config agent.toml --context model model.onnx

The private key stays with the issuer; the ``ed25519:...`` line of ``ops.pub`` goes in
``security.issuer_keys`` of every agent that should trust it. Contexts name what the
signature is for (``watchlist``, ``model``, ``firmware``, ``downlink/config``, ...); a
signature made for one context never verifies for another.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.errors import SignatureError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    k = sub.add_parser("keys", help="issuer keys: generate, sign, verify (Ed25519)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__.split("\n\n", 1)[0], epilog=__doc__.split("\n\n")[1])
    ks = k.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    g = ks.add_parser("gen", help="make a key pair: PREFIX.key (private) and PREFIX.pub")
    g.add_argument("--out", type=Path, required=True, help="path prefix of the two files")
    s = ks.add_parser("sign", help="write a detached signature (FILE.sig)")
    s.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    s.add_argument("--context", required=True, help="what it is for, e.g. watchlist, model")
    s.add_argument("--sig", type=Path, help="signature file to write (default FILE.sig)")
    s.add_argument("file", type=Path, help="file to sign")
    v = ks.add_parser("verify", help="check a detached signature; exit 0 if valid")
    who = v.add_mutually_exclusive_group(required=True)
    who.add_argument("--pub", type=Path, action="append", help="public key file (repeatable)")
    who.add_argument("--config", type=Path, help="trust the config's security.issuer_keys")
    v.add_argument("--context", required=True, help="what it must have been signed for")
    v.add_argument("--sig", type=Path, help="signature file (default FILE.sig)")
    v.add_argument("file", type=Path, help="file to check")


def run(args: argparse.Namespace) -> int:
    from edge.security import signing

    try:
        if args.keys_command == "gen":
            key = signing.generate_private_key()
            priv = args.out.with_name(args.out.name + ".key")
            pub = args.out.with_name(args.out.name + ".pub")
            signing.save_private_key(key, priv)
            pub.write_text(signing.public_key_text(key) + "\n")
            print(f"key id {signing.key_id(key)}: private {priv} (keep it off the boxes), "
                  f"public {pub}\nconfig:  [security]\n         issuer_keys = "
                  f"[\"{signing.public_key_text(key)}\"]")
            return 0
        if args.keys_command == "sign":
            line = signing.sign_detached(args.file, signing.load_private_key(args.key),
                                         args.context)
            out = args.sig or args.file.with_name(args.file.name + ".sig")
            out.write_text(line + "\n")
            print(f"signed {args.file} ({args.context}) -> {out}")
            return 0
        if args.config is not None:
            from edge.config import load_config

            keys = signing.trusted_keys(load_config(args.config).security.issuer_keys)
        else:
            keys = signing.trusted_keys(p.read_text().strip() for p in args.pub)
        sig = args.sig or args.file.with_name(args.file.name + ".sig")
        kid = signing.verify_detached(args.file, sig.read_bytes(), keys, args.context)
        print(f"{args.file}: good signature by key {kid} ({args.context})")
        return 0
    except SignatureError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
