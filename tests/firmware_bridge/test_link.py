"""The link layer: negotiation failing closed, retransmission, dedup, restarts."""

from __future__ import annotations

import dataclasses

from linkpair import T0, Wire, make_link

from firmware_bridge import messages as M
from firmware_bridge.link import Acked, GaveUp, PeerRestarted, Received, Refused, Up


def _pair(dead_s: float = 3.0, **kw: object) -> Wire:
    agent = make_link(M.ROLE_AGENT, M.ROLE_STATION, 11, 0, T0, dead_s=dead_s)
    dev = make_link(M.ROLE_STATION, M.ROLE_AGENT, 22, 1, T0)
    return Wire(agent, dev, **kw)  # type: ignore[arg-type]


def _eye(i: int) -> M.PhotoEye:
    return M.PhotoEye(t_us=i * 1000, seq=i, lane="L1", eye=i % 3, blocked=i % 2)


def test_handshake_then_reliable_delivery() -> None:
    w = _pair()
    w.run(0.1)
    assert w.a.up and w.b.up
    assert len(w.of("a", Up)) == 1 and w.of("a", Up)[0].peer.role == M.ROLE_STATION
    for i in range(50):
        w.b.send(_eye(i), w.now)
    w.run(0.5)
    assert [e.msg for e in w.of("a", Received)] == [_eye(i) for i in range(50)]
    assert len(w.of("b", Acked)) == 50 and w.b.pending() == 0


def test_every_reliable_message_arrives_once_despite_loss_and_duplicates() -> None:
    w = _pair(loss=0.2, dup=0.1, seed=7)
    w.run(0.5)
    for i in range(300):
        w.b.send(_eye(i), w.now)
    w.run(8.0)
    got = sorted(e.msg.seq for e in w.of("a", Received))
    assert got == list(range(300))
    assert w.a.c["duplicates"] > 0 and w.b.c["retransmits"] > 0
    assert not w.of("b", GaveUp)


def test_version_catalogue_and_role_mismatch_fail_closed_with_a_reason() -> None:
    w = _pair()
    w.b.role = M.ROLE_BASE_STATION  # the agent expects a station controller
    w.run(0.3)
    assert not w.a.up and not w.b.up
    r = w.of("a", Refused)
    assert r and "expected a station" in r[0].reason and not r[0].by_peer
    assert any(e.by_peer and "peer refused" in e.reason for e in w.of("b", Refused))
    # nothing gets through a refused link
    w.b.send(_eye(1), w.now)
    w.run(0.3)
    assert not w.of("a", Received) and w.a.state == "refused"

    w = _pair()
    real = M.CATALOGUE_ID
    try:
        M.CATALOGUE_ID = real ^ 0xFFFF  # the device was built with other definitions
        w.b.poll(w.now)
        hello = w.b.output()
    finally:
        M.CATALOGUE_ID = real
    w.events["a"] += w.a.receive(hello, w.now)
    assert "catalogue" in w.of("a", Refused)[0].reason

    w = _pair()
    h = M.Hello(2, 0, M.ROLE_STATION, real, 5, 0, 1024, "v2-box")
    w.events["a"] += w.a.receive(w.b.codec.encode(h, 0, now=w.now), w.now)
    assert "protocol 2.0 not supported" in w.of("a", Refused)[0].reason


def test_unacknowledged_commands_give_up_after_bounded_retries_and_at_deadline() -> None:
    w = _pair(dead_s=60.0)
    w.run(0.1)
    w.loss = 1.0  # the device is unplugged
    cmd = M.Divert(1, 0, 7, "L1", "SF1")
    w.a.send(cmd, w.now, deadline=w.now + 0.4)
    w.a.send(dataclasses.replace(cmd, cmd_id=2), w.now)
    w.run(6.0)
    g = {e.msg.cmd_id: e for e in w.of("a", GaveUp)}
    assert g[1].reason == "deadline" and g[2].reason == "retries"
    assert g[2].tries == w.a.max_retries + 1
    # backoff: 8 retries doubling from 50 ms, capped at 1 s: given up after 5.55 s
    assert w.a.c["retransmits"] >= w.a.max_retries


def test_divert_copies_carry_the_time_left() -> None:
    w = _pair(loss=0.0)
    w.run(0.1)
    w.loss = 1.0
    w.a.send(M.Divert(1, 0, 7, "L1", "SF1"), w.now, deadline=w.now + 1.0)
    w.run(0.2)
    w.loss = 0.0
    w.run(0.5)
    got = w.of("b", Received)[0].msg
    assert 100 < got.deadline_ms < 900


def test_a_peer_restart_resets_state_and_pending_messages_still_arrive() -> None:
    w = _pair()
    w.run(0.1)
    for i in range(5):
        w.a.send(M.Divert(i, 5000, i, "L1", f"SF{i}"), w.now)
    w.b = make_link(M.ROLE_STATION, M.ROLE_AGENT, 23, 1, w.now)  # rebooted, forgot it all
    w.run(1.0)
    assert w.of("a", PeerRestarted) and w.a.up and w.b.up
    assert sorted(e.msg.cmd_id for e in w.of("b", Received)) == list(range(5))
