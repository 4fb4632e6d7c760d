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
                       data, for drift (:mod:`models.drift`)
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
