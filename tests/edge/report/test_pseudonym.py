"""Keyed HMAC pseudonyms: stable per key, different across keys, matchable by domain."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from edge.detection import Detection, Evidence, Subject
from edge.errors import ConfigError
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser, load_key, normalise
from edge.report.reporter import Reporter
from edge.report.sinks import MemorySink

KEY = b"site-key-0123456789abcdef"


def test_matches_documented_scheme() -> None:
    p = Pseudonymiser(KEY)
    expected = "h1:" + hmac.new(KEY, b"imsi:460001234567890", hashlib.sha256).hexdigest()[:32]
    assert p.pseudonym("imsi", "460001234567890") == expected


def test_domains_link_identifier_types() -> None:
    p = Pseudonymiser(KEY)
    # a phone number matches whether it was an MSISDN, a B-number or a waybill phone
    assert p.pseudonym("msisdn", "8613800138000") == p.pseudonym("peer", "008613800138000")
    assert p.pseudonym("peer", "+86 138-0013-8000") == p.pseudonym("sender_phone",
                                                                   "8613800138000")
    # IMEI and IMEISV of one device match (TAC + serial)
    assert p.pseudonym("imei", "35209900176148") == p.pseudonym("imei", "3520990017614823")
    # different types never collide by accident
    assert p.pseudonym("imsi", "12345678901234") != p.pseudonym("imei", "12345678901234")


def test_key_separates_sites() -> None:
    a, b = Pseudonymiser(KEY), Pseudonymiser(KEY + b"x")
    assert a.pseudonym("imsi", "460001234567890") != b.pseudonym("imsi", "460001234567890")


def test_normalise_ip() -> None:
    assert normalise("ip", "2001:DB8::0001") == ("ip", "2001:db8::1")
    assert normalise("endpoint", "10.0.0.1:5060") == ("ip", "10.0.0.1:5060")


def test_reporter_leaks_no_identifier() -> None:
    sink = MemorySink()
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(KEY), ids=IdFactory("t"),
                   sinks=[sink])
    imsi, imei, peer = "460001234567890", "35209900176148", "8613800138000"
    rep.report(Detection(1.0, "simbox.sim", "high", 0.9, Subject("imsi", imsi),
                         [Evidence("why", {"peer": peer, "calls": 3})], ["telecom"],
                         related=[Subject("imei", imei)]))
    text = repr(sink.reports)
    for clear in (imsi, imei, peer):
        assert clear not in text
    r = sink.reports[0]
    assert r["subject"]["pseudonymised"] and r["related"][0]["pseudonymised"]
    assert r["evidence"][0]["features"]["calls"] == 3


def test_key_file_and_generated_key(tmp_path: Path) -> None:
    kf = tmp_path / "k"
    kf.write_bytes(b"0123456789abcdef0123\n")
    assert load_key(None, kf, tmp_path) == b"0123456789abcdef0123"
    gen = load_key(None, None, tmp_path / "data")
    assert len(gen) == 64 and load_key(None, None, tmp_path / "data") == gen
    assert (tmp_path / "data" / "privacy.key").stat().st_mode & 0o077 == 0
    kf.write_bytes(b"short")
    with pytest.raises(ConfigError, match="fewer than 16"):
        load_key(None, kf, tmp_path)


def test_fleet_pseudonym_is_the_same_at_every_site_and_optional() -> None:
    fleet = b"operator-fleet-key-0123456789"
    a = Pseudonymiser(b"site-a-key-0123456789", fleet_key=fleet)
    b = Pseudonymiser(b"site-b-key-0123456789", fleet_key=fleet)
    imsi = "460011234567890"
    assert a.pseudonym("imsi", imsi) != b.pseudonym("imsi", imsi)        # per site
    fa = a.fleet_pseudonym("imsi", imsi)
    assert fa is not None and fa.startswith("f1:") and len(fa) == 35
    assert fa == b.fleet_pseudonym("imsi", imsi)                          # fleet-wide
    assert a.fleet_pseudonym("phone", "+8613800000000") == \
        b.fleet_pseudonym("sender_phone", "+8613800000000")               # same domain
    assert a.fleet_pseudonym("imei", "86000000000000") != fa
    assert Pseudonymiser(b"site-a-key-0123456789").fleet_pseudonym("imsi", imsi) is None
    with pytest.raises(ConfigError):
        Pseudonymiser(b"site-a-key-0123456789", fleet_key=b"site-a-key-0123456789")


_KEYS = (b"k" * 16, b"x" * 64, b"y" * 65, bytes(range(200)))
_VALUES = ("8613900000000", "", "460001234567890", "9" * 80, "é-ü", "a" * 200)


def _hmac_pseudonym(key: bytes, domain: str, value: str) -> str:
    return "h1:" + hmac.new(key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize("in_c", [False, True], ids=["python", "c"])
def test_the_many_values_hasher_is_the_documented_hmac(in_c: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``Pseudonymiser.hasher`` (the watchlist matcher's: one keyed hash per distinct
    number) in Python and, with the compiled build, in C (edge/report/_keyed_sha256.c):
    the same pseudonyms as ``hmac`` for keys shorter, as long as and longer than a block,
    values longer than a block and not ASCII; a lone surrogate refused by both."""
    from edge.report import pseudonym

    keyed = pseudonym._keyed_in_c()
    if in_c and keyed is None:
        pytest.skip("no C build of the keyed hasher here (no compiler or OpenSSL headers, "
                    "or AFE_NATIVE=0): the Python one runs, tested beside")
    monkeypatch.setattr(pseudonym, "_KEYED", [keyed if in_c else None])
    for key in _KEYS:
        p = Pseudonymiser(key)
        for domain in ("phone", "imsi", "imei", "iccid"):
            h = p.hasher(domain)
            assert (type(h).__name__ == "Keyed") == in_c
            for v in _VALUES:
                assert h(v) == _hmac_pseudonym(key, domain, v) == p.of_normalised(domain, v)
            with pytest.raises(UnicodeEncodeError):
                h("\ud800")


def test_the_c_hasher_only_from_a_build_of_these_sources(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    from edge import native

    monkeypatch.setenv(native.ENV, "0")
    assert native.extension("edge.report._keyed_sha256") is None
    monkeypatch.delenv(native.ENV)
    monkeypatch.setenv("AFE_NATIVE_DIR", str(tmp_path))  # no build there
    assert native.extension("edge.report._keyed_sha256") is None
