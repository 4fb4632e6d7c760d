"""A real agent process for the reliability tests: pushes numbered reports through
the durable outbox and MQTT link, and resumes where it stopped after a SIGKILL.

usage: python agent_child.py HOST PORT DATA_DIR N RATE_PER_S [stay]

With ``stay`` it keeps its connection open after "done" until it is killed (a test
that SIGKILLs it to see the broker's will must not race a clean close).

It records in DATA_DIR/progress (a plain write to the page cache, so it survives a
SIGKILL of this process) the number of reports whose ``publish`` returned, i.e. that
are durable in the outbox. A report whose publish returned but whose progress write
did not happen is submitted again after a restart: a duplicate with the same id.
Prints "done" when all N are submitted and the outbox drained.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import orjson

from edge.config import MqttSection, OutboxSection
from edge.report.durable import open_outbox
from edge.report.link import MqttLink


def main() -> int:
    host, port, data_dir, n, rate = (sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]),
                                     int(sys.argv[4]), float(sys.argv[5]))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="child %(levelname)s %(name)s: %(message)s")
    data_dir.mkdir(parents=True, exist_ok=True)
    prog = data_dir / "progress"
    start = int(prog.read_text() or 0) if prog.exists() else 0
    fd = os.open(prog, os.O_RDWR | os.O_CREAT, 0o644)
    cfg = MqttSection(enabled=True, host=host, port=port, inflight=50, backoff_base_s=0.05,
                      backoff_cap_s=0.5, heartbeat_s=5.0, connect_timeout_s=2.0,
                      drain_timeout_s=30.0,
                      # longer than the test broker's persistence period (autosave every
                      # 1 s, checked on whole seconds, late under load): an acknowledged
                      # report the broker had not yet saved when it was SIGKILLed is
                      # sent again after the reconnect (a duplicate sharing its id)
                      ack_hold_s=4.0)
    link = MqttLink(cfg, open_outbox(OutboxSection(), data_dir), site="s1", agent="a1",
                    data_dir=data_dir)
    t0 = time.monotonic()
    for i in range(start, n):
        rid = f"R{i:025d}"
        rep = {"id": rid, "kind": "simbox.sim", "severity": "high", "seq": i,
               "pad": "x" * 200}
        link.publish(rep, orjson.dumps(rep))
        os.pwrite(fd, f"{i + 1:<12d}".encode(), 0)
        ahead = (i - start + 1) / rate - (time.monotonic() - t0)
        if ahead > 0.002:
            time.sleep(ahead)
    link.wait_drained(60)
    print("done", flush=True)
    if sys.argv[6:] == ["stay"]:
        while True:
            time.sleep(3600)
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
