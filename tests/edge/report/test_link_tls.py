"""TLS with server verification and client certificates (mTLS), certificate
rotation, username/password, and a broker ACL that denies a topic."""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

import orjson
import pytest

from edge.config import MqttSection, TlsSection
from edge.report.link import MqttLink
from edge.report.outbox import Outbox
from edge.report.topics import report_filter
from simulators.broker import BrokerTls, LocalBroker
from simulators.subscriber import ReportSubscriber


def _link(tmp: Path, port: int, **kw: object) -> MqttLink:
    tls = kw.pop("tls", TlsSection())
    cfg = MqttSection(enabled=True, host="127.0.0.1", port=port, backoff_base_s=0.05,
                      backoff_cap_s=0.3, connect_timeout_s=2.0, heartbeat_s=60.0,
                      drain_timeout_s=3.0, tls=tls, **kw)  # type: ignore[arg-type]
    return MqttLink(cfg, Outbox(tmp / "ob.sqlite"), site="s1", agent="a1", data_dir=tmp)


def _rep(i: int, kind: str = "simbox.sim") -> tuple[dict[str, object], bytes]:
    r = {"id": f"T{i:025d}", "kind": kind, "severity": "high"}
    return r, orjson.dumps(r)


def _ops_ctx(pki: dict) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].pem.cert))
    ctx.load_cert_chain(str(pki["ops"].cert), str(pki["ops"].key))
    return ctx


def _tls_broker(pki: dict) -> LocalBroker:
    return LocalBroker(tls=BrokerTls(pki["ca"].pem.cert, pki["server"].cert,
                                     pki["server"].key, require_certificate=True))


def test_mtls_publishes_and_rotates_certificates(tmp_path: Path, pki: dict) -> None:
    with _tls_broker(pki) as b:
        sub = ReportSubscriber(b.host, b.port, report_filter("afe/v1"), client_id="ops",
                               tls=_ops_ctx(pki))
        cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
        cert.write_bytes(pki["client"].cert.read_bytes())
        key.write_bytes(pki["client"].key.read_bytes())
        link = _link(tmp_path, b.port, tls=TlsSection(
            enabled=True, ca_file=pki["ca"].pem.cert, cert_file=cert, key_file=key,
            reload_check_s=0.5))
        assert link.wait_connected(10), link.last_error
        link.publish(*_rep(1))
        assert sub.wait_distinct(1, 10)
        # rotation: new client certificate files -> the link reconnects with them
        new = pki["ca"].issue("agent2", "a1", server=False)
        key.write_bytes(new.key.read_bytes())
        cert.write_bytes(new.cert.read_bytes())
        deadline = time.monotonic() + 10
        while link.counters()["tls_reloads"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.counters()["tls_reloads"] == 1
        assert link.wait_connected(10)
        link.publish(*_rep(2))
        assert sub.wait_distinct(2, 10)
        assert link.counters()["connects"] == 2
        link.close()
        sub.close()


@pytest.mark.parametrize("case", ["wrong_ca", "no_client_cert"])
def test_tls_failures_are_clear(tmp_path: Path, pki: dict, case: str,
                                caplog: pytest.LogCaptureFixture) -> None:
    if case == "wrong_ca":
        tls = TlsSection(enabled=True, ca_file=pki["other"].pem.cert,
                         cert_file=pki["client"].cert, key_file=pki["client"].key)
        want = "broker certificate not trusted"
    else:
        tls = TlsSection(enabled=True, ca_file=pki["ca"].pem.cert)
        want = "client certificate"
    with _tls_broker(pki) as b, caplog.at_level(logging.ERROR):
        link = _link(tmp_path, b.port, tls=tls)
        link.publish(*_rep(1))
        assert not link.wait_connected(3)
        assert link.last_error is not None and link.last_error.startswith("TLS failure")
        assert want in link.last_error, link.last_error
        # one clear line, not one per retry
        lines = [r for r in caplog.records if "TLS failure" in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert link.outbox.depth() == 1  # kept for when the operator fixes it
        link.close(timeout_s=0.2)


def test_username_password(tmp_path: Path) -> None:
    with LocalBroker(users={"agent": "s3cret"}) as b:
        bad = _link(tmp_path / "bad", b.port, username="agent", password="wrong")
        assert not bad.wait_connected(2)
        assert bad.last_error is not None and "auth failure" in bad.last_error
        # mosquitto answers a wrong password with 0x87 not authorized (0x86 elsewhere)
        assert "0x87" in bad.last_error or "0x86" in bad.last_error
        bad.close(timeout_s=0.1)
        good = _link(tmp_path / "good", b.port, username="agent", password="s3cret")
        assert good.wait_connected(5), good.last_error
        good.close()


ACL = """\
topic readwrite afe/v1/s1/a1/status
topic write afe/v1/s1/a1/heartbeat
topic read afe/v1/s1/a1/down/#
topic write afe/v1/s1/a1/up/ack
topic write afe/v1/s1/a1/report/simbox.sim
topic read afe/v1/#
"""


def test_acl_denial_mqtt5_is_reported_not_retried(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with LocalBroker(acl=ACL) as b, caplog.at_level(logging.ERROR):
        sub = ReportSubscriber(b.host, b.port, report_filter("afe/v1"), client_id="ops")
        link = _link(tmp_path, b.port)
        for i in range(10):
            link.publish(*_rep(i, "goip.endpoint" if i % 2 else "simbox.sim"))
        assert link.wait_drained(10)
        assert sub.wait_distinct(5, 5)
        time.sleep(0.3)
        assert sub.distinct() == 5
        c = link.counters()
        assert c["denied"] == 5 and c["acked"] >= 5 and c["pending"] == 0
        assert link.outbox.stats().drops == {"alert.denied": 5}
        dead = link.outbox.dead()
        assert len(dead) == 5 and all("0x87" in reason for _, _, reason in dead)
        assert any("refused a report" in r.getMessage() and "ACL" in r.getMessage()
                   for r in caplog.records)
        assert link.connected.is_set()  # the link stays up for what is allowed
        link.close()
        sub.close()


def test_acl_denial_mqtt311_is_silent(tmp_path: Path) -> None:
    """MQTT 3.1.1 has no PUBACK reason codes: mosquitto (2.0.11) acknowledges a denied
    publish, discards it and closes the connection. The client cannot tell the report
    was refused; the link reconnects, re-sends a just-acknowledged report at most once,
    and goes on. Documented in the README."""
    with LocalBroker(acl=ACL) as b:
        sub = ReportSubscriber(b.host, b.port, report_filter("afe/v1"), client_id="ops")
        link = _link(tmp_path, b.port, protocol="3.1.1")
        for i in range(4):
            link.publish(*_rep(i, "goip.endpoint" if i % 2 else "simbox.sim"))
        assert link.wait_drained(10)
        time.sleep(0.5)
        assert sub.distinct() == 2  # the two denied ones vanished at the broker
        c = link.counters()
        assert c["acked"] >= 4 and c["denied"] == 0 and c["pending"] == 0
        link.close()
        sub.close()


def test_insecure_skip_verify_warns_at_start_and_every_connect_and_says_so_in_birth(
        tmp_path: Path, pki: dict, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 9: a mismatched certificate was accepted without the promised warning."""
    from edge.report.topics import status_topic

    tls = TlsSection(enabled=True, ca_file=pki["other"].pem.cert,  # would not verify
                     cert_file=pki["client"].cert, key_file=pki["client"].key,
                     insecure_skip_verify=True)
    with _tls_broker(pki) as b, caplog.at_level(logging.WARNING):
        link = _link(tmp_path, b.port, tls=tls)
        assert any("insecure_skip_verify = true" in r.getMessage() for r in caplog.records)
        assert link.wait_connected(10), link.last_error
        sub = ReportSubscriber(b.host, b.port, status_topic("afe/v1", "s1", "a1"),
                               client_id="ops", tls=_ops_ctx(pki))
        assert sub.wait_for(1, 10)
        birth = sub.reports[-1]
        assert birth["state"] == "online"
        assert birth["tls"] == {"enabled": True, "insecure_skip_verify": True}
        link._cmd_reconnect({})
        deadline = time.monotonic() + 10
        while link.counters()["connects"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        connects = [r for r in caplog.records if "WITHOUT verifying" in r.getMessage()]
        assert link.counters()["connects"] == 2 and len(connects) == 2
        sub.close()
        link.close(timeout_s=1)


def test_config_hash_leaves_secrets_out(tmp_path: Path) -> None:
    """Issue 9: the hash of a file holding the inline site key confirmed a guess."""
    import hashlib

    from edge.config import load_config
    from edge.report.presence import config_hash

    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[privacy]\nkey = "guessable-key-0001"\n[mqtt]\npassword = "pw1"\n')
    b.write_text('[privacy]\nkey = "another-key-00002"\n[mqtt]\npassword = "pw2"\n')
    ca, cb = load_config(a), load_config(b)
    assert config_hash(ca) == config_hash(cb)           # the secret does not enter it
    assert config_hash(ca) != hashlib.sha256(a.read_bytes()).hexdigest()
    cb.detectors.callplane.min_calls = 7
    assert config_hash(ca) != config_hash(cb)           # everything else does
    assert len(config_hash(ca)) == 64
