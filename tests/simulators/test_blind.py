"""The blind generator (simulators/blind): deterministic, valid input, honest scorer."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from drivers.events.decoder import EventDecoder
from edge.records import Malformed
from simulators.blind import score as blind_score
from simulators.blind.events import generate, luhn_digit


def _gen(tmp: Path, name: str, seed: int) -> tuple[bytes, bytes]:
    out = tmp / name
    generate(seed, 160, 4.0, str(out), boxes=7)
    return (out / "events.jsonl").read_bytes(), (out / "truth.json").read_bytes()


def test_same_seed_same_bytes_other_seed_other_site(tmp_path: Path) -> None:
    a = _gen(tmp_path, "a", 11)
    b = _gen(tmp_path, "b", 11)
    c = _gen(tmp_path, "c", 12)
    assert a == b
    assert a[0] != c[0]
    truth = json.loads(a[1])
    classes = {v["class"] for v in truth["sims"].values()}
    assert classes == {"simbox", "normal"}
    assert {b["family"] for b in truth["boxes"]} == {"naive", "simbank", "human", "low_slow",
                                                     "mobile", "wangiri", "bypass"}


def test_every_line_is_valid_input_and_ordered(tmp_path: Path) -> None:
    for seed in (3, 4, 5):
        events, truth_raw = _gen(tmp_path, f"s{seed}", seed)
        truth = json.loads(truth_raw)
        dec = EventDecoder("blind")
        last = 0.0
        seen: set[str] = set()
        lines = events.splitlines()
        assert len(lines) > 1000
        for n, line in enumerate(lines, 1):
            rec = dec.decode_line(line, n)
            assert not isinstance(rec, Malformed), (n, line, rec)
            obj = json.loads(line)
            assert obj["ts"] >= last, (n, line)  # ordered by ts within the file
            last = obj["ts"]
            assert len(obj["imsi"]) == 15 and obj["imsi"].isdigit()
            assert 14 <= len(obj["imei"]) <= 16 and obj["imei"].isdigit()
            seen.add(obj["imsi"])
        assert dec.counters()["malformed"] == 0
        assert seen == set(truth["sims"])  # the truth names exactly the SIMs in the feed


def test_luhn() -> None:
    assert luhn_digit("49015420323751") == "8"  # the textbook IMEI 490154203237518


def test_scorer_arithmetic_on_a_hand_made_example(tmp_path: Path) -> None:
    key = b"hand-made-site-key-01"
    t0 = 1_000_000.0
    day = 86400.0

    def sim(klass: str, family: str, days: list[int], first_mo: float | None) -> dict[str, object]:
        return {"class": klass, "family": family, "device": "d", "group": "g", "events": 5,
                "mo_calls": 1, "first_ts": t0, "first_mo_ts": first_mo, "active_days": days}

    truth = {"t0": t0, "sims": {
        "460000000000001": sim("simbox", "naive", [0], t0 + 100),
        "460000000000002": sim("simbox", "naive", [0], t0 + 200),
        "460000000000003": sim("simbox", "simbank", [0, 1], t0 + 300),
        "460000000000004": sim("normal", "ordinary", [0, 1], None),
        "460000000000005": sim("normal", "call_centre", [0, 1], t0),
        "460000000000006": sim("normal", "ordinary", [0], None),
    }}
    p = blind_score.imsi_pseudonym
    reps = [
        blind_score.Report(p(key, "460000000000001"), t0 + 700),   # box, 600 s after its first call
        blind_score.Report(p(key, "460000000000001"), t0 + 900),   # repeat: first report counts
        blind_score.Report(p(key, "460000000000002"), t0 + 1400),  # box, 1200 s
        blind_score.Report(p(key, "460000000000005"), t0 + 50),    # false positive day 0
        blind_score.Report(p(key, "460000000000005"), t0 + day + 5),  # and day 1
        blind_score.Report("h1:" + "0" * 32, t0),                  # names no truth SIM
    ]
    s = blind_score.score(truth, reps, [("wrong", b"another-key-123456"), ("right", key)])
    assert s.key_source == "right"
    assert (s.tp, s.fp, s.fn) == (2, 1, 1)
    assert abs(s.precision - 2 / 3) < 1e-9 and abs(s.recall - 2 / 3) < 1e-9
    assert abs(s.f1 - 2 / 3) < 1e-9
    assert s.per_box_family == {"naive": (2, 2), "simbank": (0, 1)}
    assert s.per_normal_family == {"ordinary": (0, 2), "call_centre": (1, 1)}
    assert (s.fp_sim_days, s.active_normal_sim_days) == (2, 5)
    assert sorted(s.delays_s) == [600.0, 1200.0]
    assert s.as_dict()["delay_s"] == {"n": 2, "median": 900.0, "p90": 600.0}
    assert s.unmatched_reports == 1
    assert s.box_sims_with_mo == (2, 3)


def test_scorer_reads_the_key_from_a_config(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text('[privacy]\nkey = "config-site-key-0001"\n')
    assert ("privacy.key", b"config-site-key-0001") in blind_score.key_candidates(str(cfg))
    (tmp_path / "edge-data").mkdir()
    (tmp_path / "edge-data" / "privacy.key").write_bytes(b"\x01" * 32)
    names = [n for n, _ in blind_score.key_candidates(str(tmp_path))]
    assert any(n.endswith("(raw)") for n in names)


def test_nothing_in_the_package_imports_detectors_or_the_other_simulator() -> None:
    root = Path(blind_score.__file__).parent
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(("edge", "models", "simulators.telecom", "drivers")), (f.name, name)
