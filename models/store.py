"""Models on the device: installed packages, updates over MQTT, rollback.

Layout under ``<data_dir>/models/``::

    <name>/state.json             {"current": "<dir>" | "packaged", "previous": ... }
    <name>/<version>-<sha8>/      an installed package (model.onnx, model.json, ...)
    incoming/<transfer>.part      a package being received, chunk by chunk

At start, :meth:`ModelStore.open` runs the installed ``current`` package of each model
if it still verifies, else the packaged one (and says why). An update
(:meth:`install`) is a signed package, verified (signature, sha256, contract against
the features the detector computes), loaded beside the running model, checked on its
canary set, required to be newer than the running version (an old signed package
replayed cannot downgrade a box), then stored and *offered* to the detector's slot,
which takes it between two batches (:mod:`models.slot`). On any failure the running
model stays, and the reason is returned for the acknowledgement. ``current`` and
``previous`` survive restarts; :meth:`rollback` swaps them.

Updates arrive over the downlink as ``model_chunk`` commands (each authenticated by
the downlink's own envelope): a tar of the package's artefacts, ``count`` base64 chunks
of ``chunk_size`` bytes, with its total ``size`` and ``sha256``. Chunks may come in any
order or twice; a new transfer id abandons the old one; sizes are bounded before
anything is written. Everything here runs on the thread that calls it (the MQTT
thread for updates); only the slot's hand-over crosses to the pipeline thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from edge.downlink.atomic import write_atomic
from edge.errors import ModelError
from models.contract import version_key
from models.drift import DriftMonitor, load_reference
from models.loader import LoadedModel, load_configured, load_model, read_contract
from models.package import ARTEFACTS, read_canary
from models.slot import ModelSlot

log = logging.getLogger(__name__)

PACKAGED = "packaged"
MAX_PACKAGE_BYTES = 64 * 1024 * 1024
MAX_CHUNKS = 65_536


class ModelStore:
    def __init__(self, data_dir: Path, cfg: Any) -> None:
        self.root = Path(data_dir) / "models"
        self.cfg = cfg
        self.slots: dict[str, ModelSlot] = {}
        self._packaged: dict[str, Path] = {}
        self._transfer: dict[str, Any] | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            ("installed", "refused", "rollbacks", "chunks", "chunks_refused"), 0)

    # ------------------------------------------------------------------ start-up
    def open(self, name: str, packaged: Path, expect_features: tuple[str, ...] | list[str]
             ) -> ModelSlot:
        """The slot for model ``name``: its installed current package, or the packaged."""
        state = self._state(name)
        model = None
        source = PACKAGED
        cur = state.get("current", PACKAGED)
        if cur != PACKAGED:
            try:
                model = load_configured(self.root / name / cur, self.cfg,
                                        expect_features=expect_features)
                source = f"installed {cur}"
            except ModelError as exc:
                log.error("model %s: installed package %s refused, running the packaged "
                          "model: %s", name, cur, exc)
        if model is None:
            model = load_configured(packaged, self.cfg, expect_features=expect_features)
        slot = ModelSlot(name, model, drift=self._drift(model), source=source)
        self.slots[name] = slot
        self._packaged[name] = packaged
        return slot

    def _drift(self, model: LoadedModel) -> DriftMonitor | None:
        if model.folder is None:
            return None
        try:
            ref = load_reference(model.folder)
        except ModelError as exc:
            log.warning("%s; drift not watched", exc)
            return None
        if ref is None or list(ref.features) != model.features:
            return None
        m = self.cfg.models
        return DriftMonitor(ref, psi_threshold=m.drift_psi, min_rows=m.drift_min_rows)

    # ------------------------------------------------------------------ updates
    def install(self, pkg_dir: Path) -> dict[str, Any]:
        """Verify, load, canary-check and offer the package in ``pkg_dir`` (moved into
        the store on success, left where it is on failure). Raises ModelError."""
        try:
            contract = read_contract(pkg_dir)
            slot = self.slots.get(contract.name)
            if slot is None:
                raise ModelError(f"no detector on this agent runs a model named "
                                 f"{contract.name!r} (running: {', '.join(self.slots) or 'none'})")
            if version_key(contract.version) <= version_key(slot.info.version):
                raise ModelError(f"{contract.name} {contract.version} is not newer than the "
                                 f"running {slot.info.version}")
            model = self._load_external(pkg_dir, slot)
            self._canary(model, pkg_dir)
        except ModelError:
            self.counters["refused"] += 1
            raise
        name = contract.name
        dest_name = f"{contract.version}-{contract.sha256[:8]}"
        dest = self.root / name / dest_name
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(pkg_dir), dest)
        model.folder = dest
        state = self._state(name)
        new_state = {"current": dest_name, "previous": state.get("current", PACKAGED)}
        self._write_state(name, new_state)
        self._prune(name, new_state)
        slot.offer(model, self._drift(model), f"installed {dest_name}")
        self.counters["installed"] += 1
        return {"name": name, "version": contract.version, "sha256": contract.sha256,
                "signed_by": model.signed_by, "previous": new_state["previous"]}

    def rollback(self, name: str) -> dict[str, Any]:
        """Swap current and previous (verifying the previous again). Raises ModelError."""
        slot = self.slots.get(name)
        if slot is None:
            raise ModelError(f"no model named {name!r} runs here")
        state = self._state(name)
        prev = state.get("previous")
        if not prev:
            raise ModelError(f"{name}: nothing to roll back to")
        folder = self._packaged[name] if prev == PACKAGED else self.root / name / prev
        model = load_configured(folder, self.cfg, expect_features=slot.features)
        new_state = {"current": prev, "previous": state.get("current", PACKAGED)}
        self._write_state(name, new_state)
        slot.offer(model, self._drift(model), f"rollback to {prev}")
        self.counters["rollbacks"] += 1
        return {"name": name, "version": model.info.version, "current": prev,
                "previous": new_state["previous"]}

    def info(self) -> dict[str, Any]:
        return {n: {"version": s.info.version, "sha256": s.info.sha256, "source": s.source,
                    "pending": s.pending(), **self._state(n)} for n, s in self.slots.items()}

    def _load_external(self, pkg_dir: Path, slot: ModelSlot) -> LoadedModel:
        policy = self.cfg.models.require_signature
        from edge.security.signing import trusted_keys

        keys = trusted_keys(self.cfg.security.issuer_keys) if self.cfg.security.issuer_keys \
            else {}
        return load_model(pkg_dir, expect_features=slot.features, keys=keys,
                          require_signature=policy != "never")

    def _canary(self, model: LoadedModel, pkg_dir: Path) -> None:
        got = read_canary(pkg_dir)
        if got is None:
            raise ModelError(f"{pkg_dir}: an update must ship a canary set (canary.npz)")
        inputs, expected = got
        try:
            outs = model.run(inputs)
        except Exception as exc:  # onnxruntime errors are untyped
            raise ModelError(f"canary inputs do not run: {exc}") from None
        rtol = self.cfg.models.canary_rtol
        for i, (o, e) in enumerate(zip(outs, expected, strict=False)):
            o = np.asarray(o)
            if o.shape != e.shape or not np.allclose(o, e, rtol=rtol, atol=rtol):
                raise ModelError(f"canary output {i} differs from the one shipped "
                                 f"(rtol {rtol}): the package or this runtime is not the "
                                 "one it was built for")
        # the canary calls are not decisions: keep them out of the model's counters
        model.calls = model.rows = 0
        model.latency_us_total = model.latency_us_max = 0.0

    # ------------------------------------------------------------------ transfer
    def receive_chunk(self, args: dict[str, Any]) -> dict[str, Any]:
        """One ``model_chunk`` command; installs when the last chunk arrives.
        Raises ValueError (bad arguments) or ModelError (a refused package)."""
        tid = args.get("transfer")
        if not isinstance(tid, str) or not 0 < len(tid) <= 64 or not tid.replace("-", "") \
                .replace("_", "").isalnum():
            raise ValueError("transfer must be 1-64 of [A-Za-z0-9_-]")
        ints = {k: args.get(k) for k in ("index", "count", "size", "chunk_size")}
        if any(isinstance(v, bool) or not isinstance(v, int) for v in ints.values()):
            raise ValueError("index, count, size and chunk_size must be integers")
        index, count, size, chunk = (ints["index"], ints["count"], ints["size"],
                                     ints["chunk_size"])
        assert isinstance(index, int) and isinstance(count, int)
        assert isinstance(size, int) and isinstance(chunk, int)
        if not 0 < size <= MAX_PACKAGE_BYTES or not 0 < count <= MAX_CHUNKS \
                or chunk <= 0 or count != -(-size // chunk) or not 0 <= index < count:
            self.counters["chunks_refused"] += 1
            raise ValueError(f"inconsistent transfer geometry (size {size}, count {count}, "
                             f"chunk_size {chunk}, index {index}; at most "
                             f"{MAX_PACKAGE_BYTES} bytes)")
        digest = args.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError("sha256 must be 64 hex digits")
        try:
            data = base64.b64decode(str(args.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            self.counters["chunks_refused"] += 1
            raise ValueError("data is not base64") from None
        want = chunk if index < count - 1 else size - chunk * (count - 1)
        if len(data) != want:
            self.counters["chunks_refused"] += 1
            raise ValueError(f"chunk {index} holds {len(data)} bytes, expected {want}")
        t = self._transfer
        if t is None or t["id"] != tid or (t["size"], t["count"], t["sha256"]) != \
                (size, count, digest):
            self._abandon()
            part = self.root / "incoming" / f"{tid}.part"
            part.parent.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as fh:
                fh.truncate(size)
            t = self._transfer = {"id": tid, "size": size, "count": count, "chunk": chunk,
                                  "sha256": digest, "have": set(), "part": part}
        with open(t["part"], "r+b") as fh:
            fh.seek(index * chunk)
            fh.write(data)
        t["have"].add(index)
        self.counters["chunks"] += 1
        if len(t["have"]) < count:
            return {"transfer": tid, "received": len(t["have"]), "count": count}
        return self._complete(t)

    def _complete(self, t: dict[str, Any]) -> dict[str, Any]:
        self._transfer = None
        part: Path = t["part"]
        blob = part.read_bytes()
        part.unlink(missing_ok=True)
        if hashlib.sha256(blob).hexdigest() != t["sha256"]:
            self.counters["refused"] += 1
            raise ModelError("package sha256 does not match the transfer's")
        staging = self.root / "incoming" / t["id"]
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            extract_package(blob, staging)
            result = self.install(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result["transfer"] = t["id"]
        return result

    def _abandon(self) -> None:
        if self._transfer is not None:
            Path(self._transfer["part"]).unlink(missing_ok=True)
            self._transfer = None

    # ------------------------------------------------------------------ state
    def _state(self, name: str) -> dict[str, Any]:
        try:
            d = orjson.loads((self.root / name / "state.json").read_bytes())
        except FileNotFoundError:
            return {"current": PACKAGED, "previous": None}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("model %s: state unreadable (%s): running the packaged model", name, exc)
            return {"current": PACKAGED, "previous": None}
        return d if isinstance(d, dict) else {"current": PACKAGED, "previous": None}

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / name / "state.json", orjson.dumps(state))

    def _prune(self, name: str, state: dict[str, Any]) -> None:
        keep = {state.get("current"), state.get("previous"), "state.json"}
        for p in (self.root / name).iterdir():
            if p.name not in keep and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)


def pack_package(folder: Path) -> bytes:
    """A tar of the package's artefacts and signature, for a ``model_chunk`` transfer."""
    from models.package import MANIFEST, SIGNATURE

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in (*ARTEFACTS, MANIFEST, SIGNATURE):
            p = Path(folder) / name
            if p.is_file():
                info = tar.gettarinfo(str(p), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
    return buf.getvalue()


def extract_package(blob: bytes, dest: Path) -> None:
    """Unpack a transferred package: only known artefact names, regular files."""
    from models.package import MANIFEST, SIGNATURE

    allowed = {*ARTEFACTS, MANIFEST, SIGNATURE}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            total = 0
            for m in tar.getmembers():
                if m.name not in allowed or not m.isreg():
                    raise ModelError(f"package holds {m.name!r}: only regular files named "
                                     f"{', '.join(sorted(allowed))} may be in a package")
                total += m.size
                if total > MAX_PACKAGE_BYTES:
                    raise ModelError("package larger than allowed once unpacked")
                src = tar.extractfile(m)
                assert src is not None
                (dest / m.name).write_bytes(src.read())
    except tarfile.TarError as exc:
        raise ModelError(f"package is not a readable tar: {exc}") from None
