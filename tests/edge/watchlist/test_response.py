"""Responses to watchlist hits: dry-run and real (nftables in a private network
namespace), expiry, undo; the hash-chained audit log survives kill -9 and shows
tampering."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from edge.downlink.watchlist import WatchlistStore
from edge.pipeline import Pipeline
from edge.records import BaseStationEvent, Command, Packet
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import MemorySink
from edge.watchlist.audit import AuditLog, verify
from edge.watchlist.matcher import WatchlistMatcher
from edge.watchlist.nft import NftablesActuator
from edge.watchlist.response import ResponseStage

P = Pseudonymiser(b"site-key-for-watchlist-tests")
T = 1_767_225_600.0
BAD_IP = "203.0.113.77"


def _agent(tmp: Path, nft: NftablesActuator, dry_run: bool
           ) -> tuple[Pipeline, MemorySink, ResponseStage]:
    store = WatchlistStore(tmp, check_s=0.0)
    store.apply({"id": "w1", "version": 1, "type": "snapshot", "entries": [
        {"kind": "ip", "value": "203.0.113.0/24", "list": "c2", "case": "C-7",
         "issuer": "PSB"},
        {"kind": "imsi", "value": "460001234567890", "list": "cards", "case": "C-8"}]}, now=T)
    resp = ResponseStage(AuditLog(tmp / "audit.jsonl"), dry_run=dry_run,
                         pseudonymise=P.pseudonym)
    sink = MemorySink()
    rep = Reporter(site="s", agent="a", pseudonymiser=P, ids=IdFactory("t"), sinks=[sink])
    pipe = Pipeline([WatchlistMatcher(store, P), resp], rep, actuators=[nft],
                    status_interval_s=1e9)
    return pipe, sink, resp


def _kinds(sink: MemorySink) -> list[str]:
    return [r["kind"] for r in sink.reports]


def test_dry_run_audits_and_reports_without_acting(tmp_path: Path) -> None:
    nft = NftablesActuator(dry_run=True)
    pipe, sink, resp = _agent(tmp_path, nft, dry_run=True)
    pipe.feed(Packet(T, BAD_IP, "10.0.0.1", 5060, 5060, 17, b""))
    pipe.feed(BaseStationEvent(T + 1, "attach", "460001234567890"))
    kinds = _kinds(sink)
    assert kinds.count("watchlist.hit") == 2 and "response.sim_request" in kinds
    actions = [r for r in sink.reports if r["kind"] == "response.action"]
    assert {a["evidence"][0]["features"]["outcome"] for a in actions} == {"dry_run"}
    req = next(r for r in sink.reports if r["kind"] == "response.sim_request")
    assert req["route"] == ["carrier", "telecom"] and req["subject"]["pseudonymised"]
    assert nft.counters()["dry_run"] == 1 and nft.counters()["blocked"] == 0
    assert verify(tmp_path / "audit.jsonl").ok and resp.audit.seq == 2
    text = (tmp_path / "audit.jsonl").read_text()
    assert "460001234567890" not in text.split('"args"')[0]  # subject pseudonymised


@pytest.fixture()
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.skip("needs root, iproute2 and nftables (the test command installs them)")
    name = f"afe-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        pytest.skip("this machine cannot create network namespaces")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _set(ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "set", "inet", "afe",
                           "blocked4"], capture_output=True, text=True).stdout


@pytest.mark.needs_root
def test_real_block_expiry_and_undo_in_a_namespace(tmp_path: Path, netns: str) -> None:
    nft = NftablesActuator(dry_run=False, netns=netns)
    pipe, sink, resp = _agent(tmp_path, nft, dry_run=False)
    pipe.feed(Packet(T, BAD_IP, "10.0.0.1", 5060, 5060, 17, b""))
    action = next(r for r in sink.reports if r["kind"] == "response.action")
    assert action["evidence"][0]["features"]["outcome"] == "acted"
    assert BAD_IP in _set(netns) and "timeout" in _set(netns)
    seq = action["evidence"][0]["features"]["audit_seq"]
    # undo on command (the downlink thread queues it; the pipeline does it)
    assert resp.downlink_commands()["response_undo"]({"seq": seq}) == {"queued": seq}
    pipe.tick_idle(T + 5)
    assert BAD_IP not in _set(netns)
    undo = [r for r in sink.reports if r["kind"] == "response.action"][-1]
    assert undo["evidence"][0]["features"]["undo_of"] == seq
    # expiry: a block with a 1 s timeout is gone by itself
    (oc,) = nft.submit(Command(T, "nftables", "block_ip", {"ip": "203.0.113.9", "ttl_s": 1},
                               T + 5, "x"))
    assert oc.status == "acted"
    assert "203.0.113.9" in _set(netns)
    time.sleep(2.2)
    assert "203.0.113.9" not in _set(netns)
    assert verify(tmp_path / "audit.jsonl").ok


def test_tampering_is_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(5):
        log.append({"ts": T + i, "action": "block_ip", "outcome": "acted", "args": {"i": i}})
    log.close()
    assert verify(tmp_path / "audit.jsonl").entries == 5
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    d = orjson.loads(lines[2])
    d["outcome"] = "failed"
    edited = lines[:2] + [orjson.dumps(d)] + lines[3:]
    (tmp_path / "audit.jsonl").write_bytes(b"\n".join(edited) + b"\n")
    r = verify(tmp_path / "audit.jsonl")
    assert not r.ok and r.broken_at == 3 and "changed" in r.reason
    (tmp_path / "audit.jsonl").write_bytes(b"\n".join(lines[:2] + lines[3:]) + b"\n")
    r = verify(tmp_path / "audit.jsonl")
    assert not r.ok and r.broken_at == 3 and "removed" in r.reason


def test_audit_log_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    code = ("import sys, itertools\nfrom edge.watchlist.audit import AuditLog\n"
            f"log = AuditLog(__import__('pathlib').Path({str(path)!r}))\n"
            "for i in itertools.count():\n"
            "    log.append({'ts': float(i), 'action': 'block_ip', 'outcome': 'acted',"
            " 'args': {'pad': 'x' * 500}})\n"
            "    if i == 20: print('go', flush=True)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == b"go"
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    log = AuditLog(path)  # reopening sets a torn last line aside
    n = log.seq
    assert n >= 21
    log.append({"ts": 1e9, "action": "after_restart", "outcome": "acted"})
    log.close()
    r = verify(path)
    assert r.ok and r.entries == n + 1
