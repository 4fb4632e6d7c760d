"""The call-plane scorer: pseudonymised reports against a truth file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from edge.cli.sim import main as sim_main
from edge.detection import Detection, Evidence, Subject
from edge.eval.callplane import load_reports, markdown, parse_rfc3339, score
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import JsonlSink

KEY = b"test-key-0123456789"
T0 = 1_767_225_600.0


def _truth() -> dict:
    def sim(label: str, persona: str, ev: float | None, evasion: str | None = None,
            device: str | None = None) -> dict:
        return {"label": label, "persona": persona, "evasion": evasion, "device": device,
                "imeis": [], "first_ts": T0, "evidence_ts": ev}

    sims = {f"46000000000000{i}": sim("normal", "ordinary", None) for i in range(8)}
    sims["460009000000001"] = sim("simbox", "simbox_naive", T0 + 1000, "naive", "box-0")
    sims["460009000000002"] = sim("simbox", "simbox_naive", T0 + 2000, "naive", "box-0")
    sims["460009000000003"] = sim("simbox", "simbox_low_slow", T0 + 3000, "low_slow", "box-1")
    sims["460009000000004"] = sim("simbox", "simbox_low_slow", None, "low_slow", "box-1")
    devices = {"box-0": {"evasion": "naive", "imsis": ["460009000000001", "460009000000002"],
                         "imeis": ["86220004000010"], "evidence_ts": T0 + 1000},
               "box-1": {"evasion": "low_slow", "imsis": ["460009000000003",
                                                           "460009000000004"],
                         "imeis": ["35000000000011"], "evidence_ts": T0 + 3000}}
    return {"config": {"hours": 24.0}, "sims": sims, "devices": devices}


def _write(tmp_path: Path, dets: list[Detection]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "r.jsonl"
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(KEY),
                   ids=IdFactory("s/a/test"), sinks=[JsonlSink(out)])
    for d in dets:
        rep.report(d)
    rep.close()
    return out


def _sim(imsi: str, ts: float) -> Detection:
    return Detection(ts, "simbox.sim", "high", 0.9, Subject("imsi", imsi),
                     [Evidence("x", {"mo_24h": 10})], ["telecom"])


def test_score_counts_tp_fp_fn_delay_and_devices(tmp_path: Path) -> None:
    dets = [_sim("460009000000001", T0 + 1120), _sim("460009000000001", T0 + 5000),
            _sim("460009000000002", T0 + 1500),  # before its evidence: early, delay 0
            _sim("460000000000003", T0 + 10),  # an ordinary SIM: false positive
            _sim("460009000000004", T0 + 50),  # box SIM without evidence: TP, not counted
            Detection(T0 + 1200, "simbox.device", "critical", 0.9,
                      Subject("imei", "86220004000010"), [],
                      ["police"], related=[Subject("imsi", "460009000000001")])]
    res = score(load_reports(_write(tmp_path, dets)), _truth(), KEY)
    assert (res.tp, res.fp, res.fn, res.positives) == (3, 1, 1, 3)
    assert res.recall == pytest.approx(2 / 3) and res.precision == pytest.approx(0.75)
    assert res.early == 1 and res.flagged_no_evidence == 1
    assert sorted(res.delays) == [0.0, 120.0]
    assert res.active_normal == 8 and res.fp_rate_per_sim_day == pytest.approx(1 / 8)
    assert res.levels["naive"].detected == 2 and res.levels["low_slow"].detected == 0
    assert res.devices_detected == 1 and res.devices == 2
    md = markdown(res)
    assert "| naive | 2 | 2 | 1.0000 |" in md and "per-SIM F1" in md


def test_wrong_key_matches_nothing(tmp_path: Path) -> None:
    res = score(load_reports(_write(tmp_path, [_sim("460009000000001", T0 + 1100)])),
                _truth(), b"another-key-99999999")
    assert res.tp == 0 and res.fp == 0


def test_cli_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = _write(tmp_path, [_sim("460009000000003", T0 + 3100)])
    truth = tmp_path / "t.json"
    truth.write_bytes(orjson.dumps(_truth()))
    assert sim_main(["score", "--reports", str(reports), "--truth", str(truth), "--key",
                     KEY.decode(), "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["levels"]["low_slow"]["detected"] == 1 and out["fp"] == 0
    assert sim_main(["score", "--reports", str(tmp_path / "nope"), "--truth", str(truth),
                     "--key", "k" * 16]) == 2


def test_parse_rfc3339() -> None:
    assert parse_rfc3339("2026-01-01T00:00:01.250Z") == pytest.approx(T0 + 1.25)


def test_fp_rate_is_per_sim_day_over_several_scenarios(tmp_path: Path) -> None:
    """Three one-day scenarios of 8 normal SIMs with one false alarm each: 3 FP
    SIM-days over 24 active SIM-days = 1/8, not 1/24 (the sum of SIM counts already
    counts SIM-days; dividing again by the summed days understated the rate 3x)."""
    total = None
    for i in range(3):
        rp = _write(tmp_path / str(i), [_sim(f"46000000000000{i}", T0 + 10 + i)])
        total = score(load_reports(rp), _truth(), KEY, into=total)
    assert total is not None and total.scenarios == 3 and total.days == 3
    assert total.sim_days == 24 and total.fp_sim_days == 3
    assert total.fp_rate_per_sim_day == pytest.approx(1 / 8)
    # A two-day scenario: one SIM alerted on both days counts two FP SIM-days, one
    # alerted twice on the same day counts one; 8 SIMs x 2 days = 16 SIM-days.
    two = _truth()
    two["config"] = {"hours": 48.0, "start_ts": T0}
    rp = _write(tmp_path / "two", [_sim("460000000000001", T0 + 100),
                                   _sim("460000000000001", T0 + 90_000),
                                   _sim("460000000000002", T0 + 200),
                                   _sim("460000000000002", T0 + 300)])
    res = score(load_reports(rp), two, KEY)
    assert res.sim_days == 16 and res.fp_sim_days == 3 and res.fp == 2
    assert res.fp_rate_per_sim_day == pytest.approx(3 / 16)
