"""Watchlist updates: snapshots, deltas, versions, expiry, kinds, prefixes, pseudonyms."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from edge.config import parse_config
from edge.downlink.envelope import seal
from edge.downlink.handler import DownlinkHandler
from edge.downlink.watchlist import WatchlistStore
from edge.report.pseudonym import Pseudonymiser
from edge.security import signing
from edge.watchlist.model import UpdateError, Watchlist, apply_update

P = Pseudonymiser(b"site-key-for-watchlist-tests")
NOW = 1_767_225_600.0


def _snap(version: int, entries: list[dict], **kw: object) -> dict:
    return {"id": f"w{version}", "version": version, "type": "snapshot",
            "entries": entries, **kw}


def test_kinds_prefixes_domains_and_pseudonyms() -> None:
    wl = apply_update(Watchlist(), _snap(1, [
        {"kind": "imsi", "value": "460001234567890", "reason": "box", "case": "C-1",
         "issuer": "PSB Hangzhou"},
        {"kind": "msisdn", "value": P.pseudonym("phone", "8613800138000")},
        {"kind": "ip", "value": "203.0.113.0/24"}, {"kind": "ip", "value": "203.0.113.7"},
        {"kind": "ip", "value": "2001:db8::/32"},
        {"kind": "domain", "value": "Scam.Example."},
        {"kind": "waybill_phone", "value": "+86 139 1234 5678"},
        {"kind": "imei", "value": "35209900176148", "expires": NOW - 1},
    ]), NOW)
    assert len(wl) == 7  # the expired entry is not kept
    e = wl.lookup("imsi", "460001234567890", P, NOW)
    assert e is not None and (e.reason, e.case, e.issuer) == ("box", "C-1", "PSB Hangzhou")
    assert wl.lookup("msisdn", "008613800138000", P, NOW) is not None  # arrived pseudonymised
    assert wl.lookup("ip", "203.0.113.7", P, NOW).value == "203.0.113.7"  # type: ignore[union-attr]
    assert wl.lookup("ip", "203.0.113.99", P, NOW).value == "203.0.113.0/24"  # type: ignore[union-attr]
    assert wl.lookup("ip", "2001:db8:1::5", P, NOW) is not None
    assert wl.lookup("ip", "198.51.100.1", P, NOW) is None
    assert wl.lookup("domain", "www.scam.example", P, NOW) is not None
    assert wl.lookup("domain", "notscam.example", P, NOW) is None
    assert wl.lookup("msisdn", "8613912345678", P, NOW) is not None  # waybill phones too


def test_deltas_need_their_base_and_versions_only_go_up() -> None:
    wl = apply_update(Watchlist(), _snap(3, [{"kind": "imsi", "value": "460001234567890"}]),
                      NOW)
    d = {"id": "d4", "version": 4, "type": "delta", "base_version": 3,
         "add": [{"kind": "iccid", "value": "89860012345678901234"}],
         "remove": [{"kind": "imsi", "value": "460001234567890"}]}
    wl4 = apply_update(wl, d, NOW)
    assert wl4.version == 4 and wl4.lookup("imsi", "460001234567890") is None
    assert wl4.lookup("iccid", "89860012345678901234") is not None
    assert wl.lookup("imsi", "460001234567890") is not None  # pure: the old one unchanged
    with pytest.raises(UpdateError, match="applies to version 3"):
        apply_update(wl4, {**d, "version": 5}, NOW)  # a delta skipped or reordered
    with pytest.raises(UpdateError, match="not newer"):
        apply_update(wl4, d, NOW)  # replayed
    with pytest.raises(UpdateError, match="expired"):
        apply_update(wl4, _snap(9, [], expires=NOW - 60), NOW)
    with pytest.raises(UpdateError, match="unknown entry kind"):
        apply_update(wl4, _snap(9, [{"kind": "shoe_size", "value": "44"}]), NOW)
    with pytest.raises(UpdateError, match="not an IP"):
        apply_update(wl4, _snap(9, [{"kind": "ip", "value": "10.0.0.300"}]), NOW)


def test_signed_updates_over_the_downlink_survive_a_restart(tmp_path: Path) -> None:
    issuer = signing.generate_private_key()
    cfg = parse_config(f'[downlink]\n[security]\nissuer_keys = '
                       f'["{signing.public_key_text(issuer)}"]\n')
    store = WatchlistStore(tmp_path, check_s=0.0)
    h = DownlinkHandler(cfg.downlink, prefix="afe/v1", site="s", agent="a", watchlists=store,
                        state_dir=tmp_path, keys=signing.trusted_keys(
                            cfg.security.issuer_keys))
    topic = "afe/v1/s/a/down/watchlist"

    def send(body: dict) -> object:
        return h.handle(topic, seal("watchlist", orjson.dumps(body), issuer))

    assert send(_snap(1, [{"kind": "imsi", "value": "460001234567890"}])).ok  # type: ignore[attr-defined]
    late = send({"id": "d3", "version": 3, "type": "delta", "base_version": 2, "add": []})
    assert not late.ok and "applies to version 2" in late.reason  # type: ignore[attr-defined]
    old = send(_snap(4, [], expires=time.time() - 5))
    assert not old.ok and "expired" in old.reason  # type: ignore[attr-defined]
    unsigned = h.handle(topic, orjson.dumps(_snap(5, [])))
    assert not unsigned.ok  # type: ignore[attr-defined]
    delta = send({"id": "d6", "version": 6, "type": "delta", "base_version": 1,
                  "add": [{"kind": "ip", "value": "198.51.100.0/24", "case": "C-9"}]})
    assert delta.ok and delta.result["entries"] == 2  # type: ignore[attr-defined]
    # restart: the stored list is back
    assert WatchlistStore(tmp_path).current().lookup("imsi", "460001234567890") is not None


def test_a_signed_file_loads_and_a_tampered_unsigned_or_old_one_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.watchlist.load import CONTEXT, main

    issuer = signing.generate_private_key()
    conf = tmp_path / "a.toml"
    conf.write_text(f'[agent]\ndata_dir = "{tmp_path}/d"\n[security]\nissuer_keys = '
                    f'["{signing.public_key_text(issuer)}"]\n')
    f = tmp_path / "list-0002.json"

    def write(body: dict, sign: bool = True) -> None:
        f.write_bytes(orjson.dumps(body))
        sig = Path(str(f) + ".sig")
        sig.unlink(missing_ok=True)
        if sign:
            sig.write_text(signing.sign_detached(f, issuer, CONTEXT) + "\n")

    write(_snap(2, [{"kind": "imsi", "value": "460001234567890", "case": "C-1"}]))
    assert main([str(f), "--config", str(conf)]) == 0
    assert "version 2: 1 entries" in capsys.readouterr().out
    store = WatchlistStore(tmp_path / "d")
    assert store.latest.lookup("imsi", "460001234567890") is not None
    write(_snap(3, []))
    f.write_bytes(f.read_bytes().replace(b'"version":3', b'"version":4'))  # after signing
    assert main([str(f), "--config", str(conf)]) == 2
    assert "error" in capsys.readouterr().err
    write(_snap(5, []), sign=False)
    assert main([str(f), "--config", str(conf)]) == 2
    write(_snap(1, []))  # signed, but older than what is stored
    assert main([str(f), "--config", str(conf)]) == 2
    assert "not newer" in capsys.readouterr().err
    assert WatchlistStore(tmp_path / "d").latest.version == 2
