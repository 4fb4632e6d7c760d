"""Model lifecycle on the device: signed packages, contracts, canary, hot swap,
rollback across restarts, drift (issue 15). Real ONNX files, real signatures."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.config import parse_config
from edge.errors import ModelError
from edge.modelwatch import ModelWatchStage
from edge.security.signing import generate_private_key, public_key_text
from edge.telecom.ipplane.endpoint import FEATURES
from models.loader import MODELS_DIR, load_configured
from models.package import finish_package, read_canary, sign_package, write_canary
from models.store import ModelStore, pack_package

PACKAGED = json.loads((MODELS_DIR / "ipplane" / "model.json").read_text())["version"]
ISSUER = generate_private_key()
OTHER = generate_private_key()


def _cfg(tmp: Path, **models: Any) -> Any:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in models.items())
    return parse_config(f'[agent]\ndata_dir = "{tmp / "state"}"\n'
                        f'[security]\nissuer_keys = ["{public_key_text(ISSUER)}"]\n'
                        f"[models]\ndrift_min_rows = 500\n{extra}")


def _rows(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Rows like the IP plane's benign endpoints (the contract's mean and spread)."""
    c = json.loads((MODELS_DIR / "ipplane" / "model.json").read_text())
    rng = np.random.default_rng(seed)
    x = rng.normal(np.array(c["benign_mean"]), np.array(c["benign_std"]) * 0.5,
                   size=(n, len(FEATURES)))
    x[:, 0] += shift * np.array(c["benign_std"])[0] * 4
    return np.clip(x, 0, None).astype(np.float32)


def _package(tmp: Path, version: str = "9.0.0", key: Any = ISSUER, name: str = "pkg") -> Path:
    """A new version of the packaged IP-plane model, finished and signed."""
    d = tmp / name
    d.mkdir()
    for f in ("model.onnx", "README.md"):
        shutil.copy(MODELS_DIR / "ipplane" / f, d / f)
    c = json.loads((MODELS_DIR / "ipplane" / "model.json").read_text())
    c["version"] = version
    (d / "model.json").write_text(json.dumps(c))
    finish_package(d, _rows(3000, 1))
    sign_package(d, key)
    return d


def _store(tmp: Path, **models: Any) -> ModelStore:
    store = ModelStore(tmp / "state", _cfg(tmp, **models))
    store.open("ipplane", MODELS_DIR / "ipplane", FEATURES)
    return store


def test_a_good_update_is_installed_and_taken_at_the_next_batch(tmp_path: Path) -> None:
    store = _store(tmp_path)
    slot = store.slots["ipplane"]
    old = slot.current
    res = store.install(_package(tmp_path))
    assert res["version"] == "9.0.0" and res["previous"] == "packaged"
    assert slot.current is old and slot.pending()  # not before the next batch
    slot.predict_proba(_rows(4, 2))
    assert slot.info.version == "9.0.0" and slot.swaps == 1 and slot.current.rows == 4


@pytest.mark.parametrize("harm", ["tampered", "unknown_issuer", "bad_signature",
                                  "contract_order", "contract_features", "not_newer",
                                  "unsigned"])
def test_refused_packages_keep_the_running_model(tmp_path: Path, harm: str) -> None:
    store = _store(tmp_path)
    slot = store.slots["ipplane"]
    pkg = _package(tmp_path, key=OTHER if harm == "unknown_issuer" else ISSUER,
                   version="1.0.0" if harm == "not_newer" else "9.0.0")
    if harm == "tampered":
        data = bytearray((pkg / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0x01
        (pkg / "model.onnx").write_bytes(bytes(data))
    elif harm == "bad_signature":
        kind, kid, sig = (pkg / "MANIFEST.sha256.sig").read_text().split()
        raw = bytearray(base64.b64decode(sig))
        raw[0] ^= 0xFF
        (pkg / "MANIFEST.sha256.sig").write_text(f"{kind} {kid} "
                                                 f"{base64.b64encode(bytes(raw)).decode()}\n")
    elif harm.startswith("contract"):
        c = json.loads((pkg / "model.json").read_text())
        if harm == "contract_order":
            c["features"][0], c["features"][1] = c["features"][1], c["features"][0]
        else:
            c["features"][3] = "something_else"
        (pkg / "model.json").write_text(json.dumps(c))
        sign_package(pkg, ISSUER)  # properly signed, but trained on other features
    elif harm == "unsigned":
        (pkg / "MANIFEST.sha256.sig").unlink()
    reasons = {"tampered": "does not match the signed manifest",
               "unknown_issuer": "signature refused", "bad_signature": "signature refused",
               "contract_order": "another order", "contract_features": "other features",
               "not_newer": "not newer", "unsigned": "not signed"}
    with pytest.raises(ModelError, match=reasons[harm]):
        store.install(pkg)
    assert not slot.pending() and slot.info.version == PACKAGED
    assert store.counters["refused"] == 1 and pkg.exists()


def test_failing_canary_keeps_the_old_model(tmp_path: Path) -> None:
    store = _store(tmp_path)
    pkg = _package(tmp_path)
    ins, outs = read_canary(pkg)  # type: ignore[misc]
    write_canary(pkg, ins, [o + 0.5 if o.dtype.kind == "f" else o for o in outs])
    sign_package(pkg, ISSUER)  # a signed package whose canary does not hold here
    with pytest.raises(ModelError, match="canary output"):
        store.install(pkg)
    assert store.slots["ipplane"].info.version == PACKAGED


def test_external_model_needs_a_signature_by_default(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    shutil.copytree(MODELS_DIR / "ipplane", d, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with pytest.raises(ModelError, match="not signed"):
        load_configured(d, _cfg(tmp_path), expect_features=FEATURES)
    ok = load_configured(d, _cfg(tmp_path, require_signature="never"), expect_features=FEATURES)
    assert ok.info.version == PACKAGED
    assert load_configured(MODELS_DIR / "ipplane", _cfg(tmp_path)).signed_by is None  # release


def test_hot_swap_under_continuous_scoring_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    slot = store.slots["ipplane"]
    old = slot.current
    batches, rows_sent = 3000, 0
    chunks = _chunk_args(pack_package(_package(tmp_path)), "t1", 16_384)
    done = threading.Event()

    def updater() -> None:  # the MQTT thread, while the pipeline keeps scoring
        for args in chunks:
            store.receive_chunk(args)
        done.set()

    t = threading.Thread(target=updater)
    x = _rows(7, 3)
    for i in range(batches):
        if i == 50:
            t.start()
        out = slot.predict_proba(x)
        assert out.shape == (7,)
        rows_sent += 7
    t.join()
    assert done.is_set() and slot.swaps == 1
    new = slot.current
    assert new is not old and new.info.version == "9.0.0"
    # every row scored exactly once, by exactly one of the two models
    assert old.rows + new.rows == rows_sent == slot.rows_scored
    assert old.calls + new.calls == batches == slot.batches


def _chunk_args(blob: bytes, tid: str, size: int) -> list[dict[str, Any]]:
    n = -(-len(blob) // size)
    digest = hashlib.sha256(blob).hexdigest()
    return [{"transfer": tid, "index": i, "count": n, "size": len(blob), "chunk_size": size,
             "sha256": digest, "data": base64.b64encode(blob[i * size:(i + 1) * size]).decode()}
            for i in range(n)]


def test_transfer_in_any_order_with_duplicates_and_bounds(tmp_path: Path) -> None:
    store = _store(tmp_path)
    chunks = _chunk_args(pack_package(_package(tmp_path)), "t2", 8192)
    order = list(reversed(chunks)) + [chunks[0]]
    res = None
    for args in order[:-1]:
        res = store.receive_chunk(args)
    assert res is not None and res["version"] == "9.0.0"
    bad = dict(chunks[0], size=10**12)
    with pytest.raises(ValueError, match="geometry"):
        store.receive_chunk(bad)
    with pytest.raises(ValueError, match="base64"):
        store.receive_chunk(dict(chunks[0], transfer="t3", data="not base64!"))
    wrong = dict(chunks[0], transfer="t4", data=base64.b64encode(b"x").decode())
    with pytest.raises(ValueError, match="expected"):
        store.receive_chunk(wrong)


def test_rollback_survives_restarts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.install(_package(tmp_path))
    # restart: the installed package runs again (verified again)
    store = _store(tmp_path)
    assert store.slots["ipplane"].info.version == "9.0.0"
    assert store.slots["ipplane"].source.startswith("installed")
    res = store.rollback("ipplane")
    assert res["current"] == "packaged" and res["version"] == PACKAGED
    store.slots["ipplane"].predict_proba(_rows(2, 4))
    assert store.slots["ipplane"].info.version == PACKAGED
    store = _store(tmp_path)  # restart after the rollback
    assert store.slots["ipplane"].info.version == PACKAGED
    assert store.info()["ipplane"]["previous"].startswith("9.0.0-")
    store.rollback("ipplane")  # and forward again
    store.slots["ipplane"].predict_proba(_rows(2, 4))
    assert store.slots["ipplane"].info.version == "9.0.0"


def test_drift_alert_on_a_drifted_feed_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.install(_package(tmp_path))
    slot = store.slots["ipplane"]
    watch = ModelWatchStage(store)
    for i in range(6):  # an ordinary site: rows like the training data
        slot.predict_proba(_rows(250, 100 + i))
    assert slot.drift is not None and slot.drift.checks >= 2
    assert list(watch.tick(1.0)) == []
    for i in range(4):  # the site's traffic changed: far more lines per endpoint
        slot.predict_proba(_rows(250, 200 + i, shift=3.0))
    (alert,) = watch.tick(2.0)
    assert alert.kind == "model.drift" and alert.route == ["ops"]
    assert "lines" in alert.evidence[0].features
    counters = watch.counters()
    assert counters["model.ipplane.drift.psi_max"] > 0.25
    assert "model.ipplane.drift.f.lines.mean" in counters or counters["drift_alerts"] == 1


def test_drift_waits_for_the_warm_up_then_alerts_what_still_drifts(tmp_path: Path) -> None:
    # until the longest feature window has filled, a site's rows are early-day rows:
    # their drift is counted, not reported; what still drifts after it is reported
    store = _store(tmp_path)
    store.install(_package(tmp_path))
    slot = store.slots["ipplane"]
    watch = ModelWatchStage(store, warmup_s=100.0)
    for i in range(4):
        slot.predict_proba(_rows(250, 300 + i, shift=3.0))
    assert list(watch.tick(0.0)) == [] and list(watch.tick(90.0)) == []
    assert watch.counters()["drift_warmup_suppressed"] >= 1
    for i in range(4):  # past the warm-up, the same features still drift: one alert
        slot.predict_proba(_rows(250, 400 + i, shift=3.0))
    assert list(watch.tick(105.0)) == []  # the windows closed before it: dropped
    for i in range(4):
        slot.predict_proba(_rows(250, 500 + i, shift=3.0))
    (alert,) = watch.tick(120.0)
    assert alert.kind == "model.drift" and "lines" in alert.evidence[0].features
    for i in range(4):  # an ordinary site after its warm-up: nothing
        slot.predict_proba(_rows(250, 600 + i))
    assert list(watch.tick(130.0)) == []
