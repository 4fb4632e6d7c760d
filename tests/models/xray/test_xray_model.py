"""The X-ray image model: preprocessing, the committed ONNX file and its contract, training."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from models.loader import load_model, sha256_file
from models.xray import native
from models.xray.features import FEATURE_NAMES, extract
from models.xray.native import NATIVE_NAMES
from models.xray.preprocess import INPUT_PX, MODEL_MM_PER_PX, mask_to_input, prepare

FOLDER = Path(__file__).resolve().parents[3] / "models" / "xray"


def test_prepare_scales_to_model_pitch_and_centres() -> None:
    img = np.full((300, 400, 3), 255, dtype=np.uint8)
    img[100:170, 50:120] = (40, 160, 40)              # 70 px at 1.5 mm = 105 mm
    p = prepare(img, 1.5)
    assert p.x.shape == (3, INPUT_PX, INPUT_PX) and p.x.dtype == np.float32
    dark = p.x.mean(axis=0) > 0.1
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    assert abs(len(rows) - 105 / MODEL_MM_PER_PX) <= 2   # physical size kept
    assert abs((rows[0] + rows[-1]) / 2 - INPUT_PX / 2) <= 2   # centred
    x0, y0, x1, y1 = p.to_source(rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    assert abs(x0 - 50) <= 4 and abs(y0 - 100) <= 4 and abs(x1 - 120) <= 4
    mask = np.zeros(img.shape[:2], bool)
    mask[100:170, 50:120] = True
    cells = mask_to_input(mask, p, 12)
    assert cells.shape == (12, 12) and cells.max() > 0.9
    assert cells.sum() * (INPUT_PX / 12) ** 2 == pytest.approx(dark.sum(), rel=0.15)


def test_prepare_refuses_bad_images_and_takes_empty_ones() -> None:
    with pytest.raises(ValueError):
        prepare(np.zeros((10, 10), np.uint8), 1.5)
    with pytest.raises(ValueError):
        prepare(np.zeros((10, 10, 3), np.uint8), 0.0)
    empty = prepare(np.full((50, 60, 3), 255, np.uint8), 1.5)
    assert empty.content_px == 0 and not empty.x.any()


@pytest.mark.skipif(not (FOLDER / "model.onnx").exists(), reason="model not trained")
def test_committed_model_matches_its_contract() -> None:
    m = load_model(FOLDER)
    c = json.loads((FOLDER / "model.json").read_text())
    assert c["input"]["shape"][1:] == [3, INPUT_PX, INPUT_PX]
    assert c["input"]["mm_per_px"] == MODEL_MM_PER_PX
    assert set(c["thresholds"]) == {"card_batch", "gold", "cash"}
    feeds = {"image": np.zeros((2, 3, INPUT_PX, INPUT_PX), np.float32)}
    if "features" in {i.name for i in m.session.get_inputs()}:
        assert c["features"] in (list(FEATURE_NAMES), list(FEATURE_NAMES + NATIVE_NAMES))
        feeds["features"] = np.zeros((2, len(c["features"])), np.float32)
        assert sha256_file(FOLDER / "cnn.onnx") == c["parts"]["cnn"]["sha256"]
        if (FOLDER / "cnn.json").exists():   # the CNN's own training record (model 1.3)
            rec = json.loads((FOLDER / "cnn.json").read_text())
            assert rec["sha256"] == c["parts"]["cnn"]["sha256"]
            assert c["parts"]["cnn"]["trained_by"] == rec["command"]
    outs = dict(zip(m.output_names, m.session.run(None, feeds), strict=True))
    assert outs["scores"].shape == (2, 3) and outs["heatmap"].shape == (2, 3, 12, 12)
    assert np.allclose(outs["kind"].sum(axis=1), 1, atol=1e-4)
    assert ((outs["scores"] >= 0) & (outs["scores"] <= 1)).all()


def _view(h: int = 192) -> np.ndarray:
    """An empty model input (belt white is 0 after the inversion)."""
    return np.zeros((3, h, h), np.float32)


def _paint(x: np.ndarray, rgb: tuple[float, float, float], r0: int, r1: int, c0: int,
           c1: int) -> None:
    for k in range(3):
        x[k, r0:r1, c0:c1] = 1.0 - rgb[k]


def test_features_find_compact_dense_blobs_not_thin_dense_rings() -> None:
    bar = _view()
    _paint(bar, (0.01, 0.01, 0.02), 80, 92, 80, 100)          # a gold bar: near black
    ring = _view()
    _paint(ring, (0.01, 0.01, 0.02), 60, 100, 60, 100)        # a tin's wall edge-on
    _paint(ring, (0.9, 0.7, 0.5), 62, 98, 62, 98)
    name = FEATURE_NAMES.index("black_core_px")
    fb, mb = extract(bar)
    fr, _ = extract(ring)
    assert fb[name] > 50 and fr[name] == 0
    assert mb[1].max() > 0 and mb[1].argmax() == np.ravel_multi_index((5, 5), (12, 12))


def test_features_count_dark_spots_inside_green_cards() -> None:
    cards = _view()
    _paint(cards, (0.35, 0.65, 0.3), 60, 75, 60, 84)          # a PVC stack: green
    plain = cards.copy()
    for c in (64, 72):                                         # two chip modules
        _paint(cards, (0.15, 0.3, 0.2), 66, 69, c, c + 3)
    name = FEATURE_NAMES.index("spots_green_px")
    assert extract(cards)[0][name] > extract(plain)[0][name]


def test_features_of_an_empty_image_are_zero_and_finite() -> None:
    f, maps = extract(_view())
    assert f.shape == (len(FEATURE_NAMES),) and np.isfinite(f).all() and not f.any()
    assert maps.shape == (3, 12, 12)


def _belt(h_mm: float, w_mm: float, p: float) -> np.ndarray:
    return np.full((int(h_mm / p), int(w_mm / p), 3), 250, np.uint8)


def _fill(img: np.ndarray, rgb: tuple[int, int, int], y0: float, y1: float, x0: float,
          x1: float, p: float) -> None:
    img[int(y0 / p):int(y1 / p), int(x0 / p):int(x1 / p)] = rgb


def _card_stack(p: float, chip: bool, chip_dx: float = 27.15) -> np.ndarray:
    """A green PVC card stack seen from above, its module (darker) where ISO 7816 puts
    it, or displaced along the card by ``chip_dx`` from the card's centre."""
    img = _belt(200, 300, p)
    _fill(img, (200, 170, 120), 20, 180, 20, 280, p)        # cardboard, organic
    cy, cx = 100.0, 150.0
    _fill(img, (60, 150, 55), cy - 27, cy + 27, cx - 42.8, cx + 42.8, p)
    if chip:
        _fill(img, (20, 55, 25), cy - 5, cy + 5, cx - chip_dx - 5.5, cx - chip_dx + 5.5, p)
    return img


@pytest.mark.parametrize("pitch", (1.5, 2.0, 2.5))
def test_native_card_template_finds_the_module_at_its_place(pitch: float) -> None:
    even = NATIVE_NAMES.index("n_card_even_chip_max")
    with_chip = native.extract(_card_stack(pitch, True), pitch)
    no_chip = native.extract(_card_stack(pitch, False), pitch)
    elsewhere = native.extract(_card_stack(pitch, True, chip_dx=0.0), pitch)
    assert with_chip[even] > 0.3
    assert no_chip[even] < 0.05
    assert elsewhere[even] < with_chip[even] / 2          # a spot in the card's middle


def test_native_gold_areas_are_in_mm2_whatever_the_pitch() -> None:
    e1 = NATIVE_NAMES.index("n_black_e1_mm2")
    got = []
    for p in (1.5, 2.0, 2.5):
        img = _belt(200, 300, p)
        _fill(img, (200, 170, 120), 20, 180, 20, 280, p)
        _fill(img, (3, 3, 5), 80, 110, 100, 160, p)           # a 30 x 60 mm bar
        _fill(img, (3, 3, 5), 40, 42, 40, 240, p)             # a tin's wall edge-on
        got.append(native.extract(img, p)[e1])
    assert all(600 < g < 1800 for g in got), got            # the bar, eroded; not the wall
    assert max(got) / min(got) < 1.6


def test_native_features_of_empty_and_bad_images() -> None:
    f = native.extract(np.full((50, 60, 3), 255, np.uint8), 1.5)
    assert f.shape == (len(NATIVE_NAMES),) and not f.any()
    assert not native.extract(np.zeros((3, 3, 3), np.uint8), 1.5).any()
    with pytest.raises(ValueError):
        native.extract(np.zeros((10, 10), np.uint8), 1.5)
    with pytest.raises(ValueError):
        native.extract(np.zeros((10, 10, 3), np.uint8), 0.0)


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="train extra")
def test_head_training_is_deterministic() -> None:
    from models.xray.dataset import build
    from models.xray.head import HEAD_INPUTS, fit, log_inputs

    data = build(16, seed=5)
    rng = np.random.default_rng(1)
    feats = rng.random((16, len(HEAD_INPUTS))).astype(np.float32)
    for head, x in (("gbm", feats), ("gbm-mono", feats), ("mlp", log_inputs(feats))):
        a = fit(feats, data, 3, head)
        b = fit(feats, data, 3, head)
        for ma, mb in zip(a, b, strict=True):
            assert np.array_equal(ma.predict_proba(x), mb.predict_proba(x))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="train-image extra")
def test_training_is_deterministic() -> None:
    from models.xray.dataset import build
    from models.xray.train import train_model

    data = build(12, seed=5)
    a, la = train_model(data, epochs=1, seed=3, batch=6, log=False)
    b, lb = train_model(data, epochs=1, seed=3, batch=6, log=False)
    assert la == lb
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):  # type: ignore[attr-defined]
        assert np.array_equal(pa.numpy(), pb.numpy())


def test_dense_target_is_the_threat_of_the_parcels_category() -> None:
    from models.xray.dataset import DENSE_CELLS, HEAT_CELLS, build

    data = build(24, seed=11)
    assert data.dense is not None and data.dense.shape == (24, DENSE_CELLS, DENSE_CELLS)
    k = DENSE_CELLS // HEAT_CELLS
    for i in range(24):
        d = data.dense[i].astype(np.float32) / 255
        if data.y[i].max() == 0:
            assert not d.any()          # no threat, no target
            continue
        j = int(data.y[i].argmax())
        assert d.max() > 0
        # the coarse heat target is the same coverage averaged over 4 x 4 dense cells
        coarse = d.reshape(HEAT_CELLS, k, HEAT_CELLS, k).mean(axis=(1, 3))
        assert np.allclose(coarse, data.heat[i, j], atol=0.01)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="train-image extra")
def test_seg_net_scores_pool_its_own_heat_map() -> None:
    import torch

    from models.xray.net import DENSE_TOPK, XraySegNet

    torch.manual_seed(0)
    net = XraySegNet().eval()
    x = torch.rand(2, 3, INPUT_PX, INPUT_PX)
    with torch.no_grad():
        pooled, maps, _kind = net.forward_logits(x)
        scores, heat, kind = net(x)
    assert maps.shape == (2, 3, 48, 48) and heat.shape == (2, 3, 12, 12)
    top = torch.topk(maps.flatten(2), DENSE_TOPK, dim=-1).values.mean(-1)
    assert torch.allclose(pooled, top) and torch.allclose(scores, torch.sigmoid(top))
    # the device's 12 x 12 map is the hottest of each 4 x 4 block of the dense map
    assert torch.allclose(heat[0, 1, 2, 3], torch.sigmoid(maps[0, 1, 8:12, 12:16]).max())
    assert torch.allclose(kind.sum(1), torch.ones(2))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="train-image extra")
def test_seg_training_is_deterministic() -> None:
    from models.xray.dataset import build
    from models.xray.train import dense_target, train_seg

    data = build(12, seed=5)
    t = dense_target(data, np.arange(12))
    assert t.shape == (12, 3, 48, 48) and set(np.unique(t)) <= {0.0, 1.0}
    assert (t.sum(axis=(2, 3)) > 0).any(axis=1).tolist() == (data.y.max(1) > 0).tolist()
    a, la = train_seg(data, epochs=1, seed=3, batch=6, log=False)
    b, lb = train_seg(data, epochs=1, seed=3, batch=6, log=False)
    assert la == lb
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):  # type: ignore[attr-defined]
        assert np.array_equal(pa.numpy(), pb.numpy())


def test_seg_crops_keep_image_and_target_aligned() -> None:
    from models.xray.dataset import build
    from models.xray.train import dense_target, seg_crops

    data = build(12, seed=5)
    idx = np.arange(12)
    x, d, lab = seg_crops(data, idx, np.random.default_rng(0), 128)
    assert x.shape == (12, 3, 128, 128) and d.shape == (12, 3, 32, 32)
    full = dense_target(data, idx)
    for i in range(12):
        # find the window: the crop is the canvas at an offset on the 16-pixel grid
        hits = [(r, c) for r in range(0, 65, 16) for c in range(0, 65, 16)
                if np.array_equal(x[i], data.x[i, :, r:r + 128, c:c + 128] / np.float32(255))]
        assert hits
        r, c = hits[0]
        assert np.array_equal(d[i], full[i, :, r // 4:r // 4 + 32, c // 4:c // 4 + 32])
        assert (lab[i] <= data.y[i]).all() and lab[i].tolist() == (
            d[i].reshape(3, -1).max(1) > 0).tolist()
