"""Model packages: the files a model ships as, their manifest, and its Ed25519 signature.

A package is a folder holding the model's artefacts (never code):

=====================  =========================================================
``model.onnx``         the graph (required)
``model.json``         the feature contract (required, :mod:`models.contract`)
``README.md``          the model card
``metrics.json``       the evaluation figures the card quotes
``canary.npz``         canary inputs and the outputs the issuer's build produced,
                       checked on the box before a new model may take over
``reference.npz``      per-feature quantile edges and bin shares of the training
                       negatives (a site's traffic), for drift (:mod:`models.drift`)
``MANIFEST.sha256``    ``<sha256>  <file>`` for every artefact present, sorted
``MANIFEST.sha256.sig``  ``afe-sig-v1 <key id> <signature>`` over the manifest
                       (:mod:`edge.security.signing`, context ``"model"``)
=====================  =========================================================

Verifying reads the signature line first (bounded), checks it over the manifest,
then each listed file's digest; an artefact that is present but not listed, a
missing listed file, or a digest mismatch refuses the whole package. Only then may
onnxruntime see ``model.onnx``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edge.errors import ModelError, SignatureError

ARTEFACTS = ("model.onnx", "model.json", "README.md", "metrics.json", "canary.npz",
             "reference.npz")
REQUIRED = ("model.onnx", "model.json")
MANIFEST = "MANIFEST.sha256"
SIGNATURE = MANIFEST + ".sig"
CONTEXT = "model"
MAX_MANIFEST = 4096


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_bytes(folder: Path) -> bytes:
    """The manifest of the artefacts present in ``folder`` (sorted, one per line)."""
    lines = [f"{_sha256(folder / n)}  {n}\n" for n in sorted(ARTEFACTS) if (folder / n).is_file()]
    missing = [n for n in REQUIRED if not (folder / n).is_file()]
    if missing:
        raise ModelError(f"{folder}: not a model package, missing {', '.join(missing)}")
    return "".join(lines).encode()


def sign_package(folder: Path, key: object) -> Path:
    """Write ``MANIFEST.sha256`` and its signature with the issuer's private key."""
    from edge.security.signing import sign_detached

    folder = Path(folder)
    man = manifest_bytes(folder)
    (folder / MANIFEST).write_bytes(man)
    sig = sign_detached(man, key, CONTEXT)  # type: ignore[arg-type]
    (folder / SIGNATURE).write_text(sig + "\n", "ascii")
    return folder / SIGNATURE


def is_signed(folder: Path) -> bool:
    return (Path(folder) / SIGNATURE).is_file()


def verify_package(folder: Path, keys: Mapping[str, object]) -> str:
    """The key id that signed the package; ModelError with the reason otherwise."""
    from edge.security.signing import verify_detached

    folder = Path(folder)
    sig_path, man_path = folder / SIGNATURE, folder / MANIFEST
    if not sig_path.is_file():
        raise ModelError(f"{folder}: package is not signed ({SIGNATURE} missing)")
    if not keys:
        raise ModelError(f"{folder}: no issuer keys configured ([security] issuer_keys): "
                         "cannot verify the package signature")
    try:
        with open(sig_path, "rb") as fh:
            line = fh.read(256).decode("ascii", "replace").strip()
        with open(man_path, "rb") as fh:
            man = fh.read(MAX_MANIFEST + 1)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot read the manifest or signature: {exc}") from None
    if len(man) > MAX_MANIFEST:
        raise ModelError(f"{folder}: manifest larger than {MAX_MANIFEST} bytes")
    try:
        kid = verify_detached(man, line, keys, CONTEXT)  # type: ignore[arg-type]
    except SignatureError as exc:
        raise ModelError(f"{folder}: signature refused: {exc}") from None
    listed: dict[str, str] = {}
    for raw in man.decode("ascii", "replace").splitlines():
        digest, sep, name = raw.partition("  ")
        if not sep or name not in ARTEFACTS or name in listed:
            raise ModelError(f"{folder}: manifest line not understood: {raw[:80]!r}")
        listed[name] = digest
    for name in REQUIRED:
        if name not in listed:
            raise ModelError(f"{folder}: manifest does not list {name}")
    for name in ARTEFACTS:
        present = (folder / name).is_file()
        if present and name not in listed:
            raise ModelError(f"{folder}: {name} is present but not signed")
        if name in listed:
            if not present:
                raise ModelError(f"{folder}: signed file {name} is missing")
            if _sha256(folder / name) != listed[name]:
                raise ModelError(f"{folder}: {name} does not match the signed manifest "
                                 "(tampered or corrupt)")
    return kid


def write_canary(folder: Path, inputs: Mapping[str, np.ndarray], outputs: list[np.ndarray]
                 ) -> Path:
    """Store canary inputs (by input name) and the outputs the issuer's build gave."""
    arrays = {f"in:{k}": np.asarray(v) for k, v in inputs.items()}
    arrays.update({f"out:{i}": np.asarray(o) for i, o in enumerate(outputs)})
    path = Path(folder) / "canary.npz"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    return path


def read_canary(folder: Path) -> tuple[dict[str, np.ndarray], list[np.ndarray]] | None:
    path = Path(folder) / "canary.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            ins = {k[3:]: z[k] for k in z.files if k.startswith("in:")}
            outs = [z[f"out:{i}"] for i in range(sum(k.startswith("out:") for k in z.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: canary unreadable: {exc}") from None
    return ins, outs


def finish_package(folder: Path, x_train: np.ndarray, *, canary_rows: int = 64,
                   seed: int = 0, reference_rows: np.ndarray | None = None) -> None:
    """Write the canary set and the drift reference of a freshly trained tabular model
    (call at the end of training, after model.onnx and model.json are written):
    ``canary_rows`` training rows (a fixed-seed sample) with the outputs onnxruntime
    gives for them, and the deciles of ``reference_rows`` (default ``x_train``).

    Detectors should pass their negative rows as ``reference_rows``: the drift
    reference must look like a site, and a site is almost all ordinary traffic, while
    training sets are rich in positives (19 % of the call plane's rows, half of the IP
    plane's, balanced on purpose). Against a reference holding them, the top deciles
    of every feature that tells a box stay nearly empty at an honest site, and their
    PSI alone crosses the drift bar: a drift alarm at every site, for nothing."""
    import onnxruntime as ort

    from models.drift import make_reference, save_reference
    from models.loader import read_contract, session_options

    folder = Path(folder)
    contract = read_contract(folder)
    x = np.asarray(x_train, dtype=np.float32)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(x), size=min(canary_rows, len(x)), replace=False))
    rows = x[pick]
    sess = ort.InferenceSession(str(folder / "model.onnx"), sess_options=session_options(),
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [o for o in sess.run(None, {name: rows}) if isinstance(o, np.ndarray)]
    write_canary(folder, {name: rows}, outs)
    ref_x = x if reference_rows is None else np.asarray(reference_rows, dtype=np.float32)
    save_reference(make_reference(ref_x, list(contract.features)), folder)


def main(argv: list[str] | None = None) -> int:
    """``python -m models.package``: sign, verify or pack a model package."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m models.package",
        description="Sign, verify and pack model packages (see models/package.py).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m models.package sign models/ipplane --key issuer.pem\n"
               "  python -m models.package verify models/ipplane --pub 'ed25519:...'\n"
               "  python -m models.package chunks models/ipplane --transfer t1 > cmds.jsonl")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign", help="write the manifest and its signature")
    s.add_argument("folder", type=Path, help="package folder")
    s.add_argument("--key", type=Path, required=True, help="issuer private key (PEM)")
    v = sub.add_parser("verify", help="verify the signature and every artefact")
    v.add_argument("folder", type=Path, help="package folder")
    v.add_argument("--pub", action="append", default=[], required=True,
                   help="trusted issuer public key 'ed25519:...' (repeatable)")
    c = sub.add_parser("chunks", help="print model_chunk command arguments, one JSON a line")
    c.add_argument("folder", type=Path, help="signed package folder")
    c.add_argument("--transfer", required=True, help="transfer id (1-64 of [A-Za-z0-9_-])")
    c.add_argument("--chunk-size", type=int, default=32_768,
                   help="bytes per chunk (base64 makes it 4/3 larger in the message)")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "sign":
            from edge.security.signing import load_private_key

            print(sign_package(a.folder, load_private_key(a.key)))
        elif a.cmd == "verify":
            from edge.security.signing import trusted_keys

            print(f"{a.folder}: signed by {verify_package(a.folder, trusted_keys(a.pub))}")
        else:
            import base64
            import json

            from models.store import pack_package

            blob = pack_package(a.folder)
            n = -(-len(blob) // a.chunk_size)
            digest = hashlib.sha256(blob).hexdigest()
            for i in range(n):
                part = blob[i * a.chunk_size:(i + 1) * a.chunk_size]
                print(json.dumps({"transfer": a.transfer, "index": i, "count": n,
                                  "size": len(blob), "chunk_size": a.chunk_size,
                                  "sha256": digest,
                                  "data": base64.b64encode(part).decode()}))
    except (ModelError, SignatureError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
