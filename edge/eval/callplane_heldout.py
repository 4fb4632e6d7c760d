"""Held-out evaluation of the call-plane detector, end to end.

    python -m edge.eval.callplane_heldout                  # 3 held-out days, prints tables
    python -m edge.eval.callplane_heldout --write-card     # also updates models/callplane/README.md

Each held-out day is simulated with the ``heldout`` parameter ranges and seeds never
used in training (training uses 20260101.., validation 20260601), written to JSONL,
replayed through the same agent code path as ``edge-agent replay`` (decoder,
pipeline, detector with the committed model, reporter with pseudonyms, JSONL sink),
and scored with :mod:`edge.eval.callplane`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import orjson

from edge.config import Config
from edge.eval.callplane import CallPlaneScore, load_reports, markdown, score
from simulators.telecom.events import EventSimConfig, write_events

CARD = Path(__file__).resolve().parents[2] / "models" / "callplane" / "README.md"
HELDOUT_SEEDS = (90001, 90002, 90003)
EVAL_KEY = "callplane-eval-key-0001"
CARD_BEGIN = "<!-- eval:begin -->"
CARD_END = "<!-- eval:end -->"


def replay(events: Path, out: Path, key: str = EVAL_KEY) -> dict[str, int | float]:
    """Run the agent's replay path over one events file; returns pipeline counters."""
    from edge.assembly import assemble
    from edge.pipeline import merge_by_time
    from edge.report.sinks import JsonlSink

    cfg = Config()
    cfg.privacy.key = key
    cfg.detectors.ipplane.enabled = False
    cfg.agent.status_interval_s = 3600.0
    agent = assemble(cfg, mode="replay", sinks=[JsonlSink(out)], inputs={"events": [events]})
    try:
        agent.pipeline.run(merge_by_time(agent.sources))
    finally:
        agent.close()
    return agent.pipeline.counters()


def run(seeds: tuple[int, ...], subscribers: int, boxes: int, ports: int, hours: float,
        workdir: Path, log=print) -> CallPlaneScore:  # type: ignore[no-untyped-def]
    total = CallPlaneScore()
    for seed in seeds:
        t0 = time.time()
        ev = workdir / f"heldout-{seed}.jsonl"
        tr = workdir / f"heldout-{seed}.truth.json"
        rp = workdir / f"heldout-{seed}.reports.jsonl"
        cfg = EventSimConfig(seed=seed, subscribers=subscribers, simbox_devices=boxes,
                             ports_per_device=ports, hours=hours, profile="heldout")
        n = write_events(cfg, ev, tr)
        t1 = time.time()
        if rp.exists():
            rp.unlink()
        replay(ev, rp)
        t2 = time.time()
        one = score(load_reports(rp), orjson.loads(tr.read_bytes()), EVAL_KEY.encode())
        score(load_reports(rp), orjson.loads(tr.read_bytes()), EVAL_KEY.encode(), into=total)
        log(f"seed {seed}: {n:,} events (sim {t1 - t0:.0f} s, replay {t2 - t1:.0f} s, "
            f"{n / max(t2 - t1, 1e-9):,.0f} ev/s): F1 {one.f1:.4f} P {one.precision:.4f} "
            f"R {one.recall:.4f} FP {one.fp}/{one.active_normal} "
            f"median delay {one.delay_stats()['median_s']} s")
    return total


def write_card(table: str, header: str) -> None:
    card = CARD
    text = card.read_text("utf-8")
    block = f"{CARD_BEGIN}\n{header}\n\n{table}{CARD_END}"
    if CARD_BEGIN in text:
        text = re.sub(re.escape(CARD_BEGIN) + r".*?" + re.escape(CARD_END), lambda _: block,
                      text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    card.write_text(text, "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default=",".join(map(str, HELDOUT_SEEDS)))
    ap.add_argument("--subscribers", type=int, default=20000)
    ap.add_argument("--boxes", type=int, default=12, help="SIM-boxes per day (all levels)")
    ap.add_argument("--ports", type=int, default=8)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--workdir", type=Path, help="keep the files here (default: temp dir)")
    ap.add_argument("--write-card", action="store_true", help="update models/callplane/README")
    ap.add_argument("--json", type=Path, help="also write the full result as JSON")
    args = ap.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    with tempfile.TemporaryDirectory() as tmp:
        wd = args.workdir or Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        res = run(seeds, args.subscribers, args.boxes, args.ports, args.hours, wd)
    table = markdown(res)
    print(table)
    if args.json:
        args.json.write_bytes(orjson.dumps(res.as_dict(), option=orjson.OPT_INDENT_2))
    if args.write_card:
        header = (f"Held-out run: `python -m edge.eval.callplane_heldout --write-card` "
                  f"(seeds {args.seeds}, profile heldout, {args.subscribers} subscribers, "
                  f"{args.boxes} boxes x ~{args.ports} ports, {args.hours:g} h each).")
        write_card(table, header)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
