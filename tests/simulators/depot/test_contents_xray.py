"""Parcel contents and the dual-energy X-ray rendering (simulators/depot)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from simulators.depot import contents, xray
from simulators.depot.contents import Item, ParcelSpec, Part, sample_parcel
from simulators.depot.xray import render, render_parcel


def _spec_with(parts: list[Part], size=(200.0, 200.0, 100.0)) -> ParcelSpec:
    item = Item("test", "clutter", "test", tuple(parts))
    return ParcelSpec(size, (item,), "none", None, ("test",), "x", 1, True, True,
                      item.mass_g / 1000, "train")


def test_sampling_is_deterministic_and_weight_comes_from_parts() -> None:
    a = sample_parcel(np.random.default_rng(7), "train")
    b = sample_parcel(np.random.default_rng(7), "train")
    assert a == b
    assert a.weight_kg == pytest.approx(sum(it.mass_g for it in a.items) / 1000)
    assert a.weight_kg > 0.1


@pytest.mark.parametrize("cat", contents.CATEGORIES)
def test_forced_category_truth(cat: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        s = sample_parcel(rng, "heldout", category=cat)
        assert s.category == cat
        threats = [it for it in s.items if it.role == "threat"]
        if cat == "none":
            assert not threats
        else:
            assert threats and s.layout in s.families
        if cat == "card_batch":
            assert s.card_kind in contents.CARD_KINDS
            assert s.card_count >= contents.CARD_BATCH_MIN
        if cat == "cash":
            assert s.note_count >= contents.CASH_NOTES_MIN
        if cat == "gold":
            assert s.gold_g >= contents.GOLD_MIN_G * 0.9


def test_train_and_heldout_parameter_ranges_are_disjoint() -> None:
    bins = {}
    for profile in ("train", "heldout"):
        rng = np.random.default_rng(11)
        seen = set()
        for _ in range(60):
            s = sample_parcel(rng, profile)
            seen.add(int((s.size_mm[0] - 200) / 400 * 6))
        bins[profile] = seen
    assert bins["train"] <= {0, 2, 4}
    assert bins["heldout"] <= {1, 3, 5}


def test_exclude_and_include_families() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        s = sample_parcel(rng, exclude_families=["clothes", "in_clothes"], category="card_batch")
        assert "clothes" not in s.families and s.layout != "in_clothes"
    s = sample_parcel(rng, category="none", include_families=["hotel_keycards"])
    assert "hotel_keycards" in s.families
    with pytest.raises(ValueError):
        sample_parcel(rng, include_families=["spaceships"])


def _pixel(parts: list[Part]) -> np.ndarray:
    rng = np.random.default_rng(0)
    r = render(_spec_with(parts), rng)
    x0, y0, x1, y1 = r.box_px
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    return r.image[cy - 3:cy + 4, cx - 3:cx + 4].reshape(-1, 3).mean(axis=0)


def test_colours_follow_effective_z_and_thickness() -> None:
    paper = _pixel([Part("paper", "rect", 100, 100, 120, 120, 20)])
    pvc = _pixel([Part("pvc", "rect", 100, 100, 120, 120, 20)])
    steel = _pixel([Part("steel", "rect", 100, 100, 120, 120, 3)])
    gold = _pixel([Part("gold", "rect", 100, 100, 60, 30, 3)])
    thin = _pixel([Part("paper", "rect", 100, 100, 120, 120, 5)])
    assert paper[0] > paper[1] > paper[2]             # orange: organic
    assert pvc[1] > pvc[0] and pvc[1] > pvc[2]        # green: PVC with chlorine, Z ~14
    assert steel[2] > steel[0] and steel[2] > steel[1]  # blue: metal
    assert gold.max() < 20                            # gold saturates near black
    assert thin.sum() > paper.sum()                   # darker is thicker


def test_render_shape_mask_and_determinism() -> None:
    spec = sample_parcel(np.random.default_rng(2), category="gold")
    a = render(spec, np.random.default_rng(9), 1.5)
    img = render_parcel(spec, np.random.default_rng(9), 1.5)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert np.array_equal(a.image, img)
    assert a.threat_mask.any() and a.threat_mask.shape == img.shape[:2]
    assert img.shape[0] == round(xray.BELT_WIDTH_MM / 1.5)
    coarse = render_parcel(spec, np.random.default_rng(9), 3.0)
    assert coarse.shape[0] == round(xray.BELT_WIDTH_MM / 3.0)


DETECTORS = ("models", "edge.courier.decide", "edge.courier.xray_scorer", "edge.telecom")


def test_simulator_imports_no_detector() -> None:
    for path in Path(contents.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(DETECTORS), (path, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith(DETECTORS) for a in node.names)
    # the physics and the contents import nothing of the agent at all
    for mod in (contents, xray):
        tree = ast.parse(Path(mod.__file__).read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("edge", "models")), node.module


def test_items_stay_inside_the_box() -> None:
    # a packed parcel holds its content: no item may reach beyond the box's footprint
    # (before the fit rules of _Box.put, about a fifth of all items did)
    n_items = outside = 0
    for profile in ("train", "heldout"):
        rng = np.random.default_rng(41)
        for i in range(160):
            s = sample_parcel(rng, profile, category=contents.CATEGORIES[i % 4],
                              lookalike_rate=0.6)
            length, width, _ = s.size_mm
            for it in s.items:
                if it.kind == "box":
                    continue
                n_items += 1
                outside += contents.outside_mm(it.parts, length, width) > 1.0
    assert n_items > 1500
    assert outside <= n_items // 500


def test_fitting_keeps_cards_and_notes_their_size_and_garments_their_mass() -> None:
    rng = np.random.default_rng(8)
    for _ in range(40):
        s = sample_parcel(rng, "train", category="card_batch", layout="shingled")
        card = [p for it in s.items if it.role == "threat" for p in it.parts
                if p.material in ("pvc", "abs", "pc") and p.shape == "rect"]
        assert card and all(abs(p.lx - contents.CARD_L) < 1e-6 for p in card)
    d = contents._Draw(np.random.default_rng(1), "train")
    box = contents._Box(d, 200.0, 150.0)
    garment = contents._clothes_parts(d)
    placed = box.put(garment, fit="fold")
    assert contents.outside_mm(placed, 200.0, 150.0) == 0.0
    assert sum(p.mass_g() for p in placed[:1]) == pytest.approx(garment[0].mass_g(), rel=1e-6)
