"""Evaluate the parcel decision (image model + rules) on held-out simulated days.

``python -m models.xray.evaluate`` simulates ``--days`` days of ``--parcels`` parcels of
the ``heldout`` profile (seeds ``--seed``, ``--seed + 1``, ...: never used in training;
every parameter drawn from sub-ranges the training profile never draws from, see
``simulators/depot/contents.py``), with look-alikes and clutter, renders each at the
machine pitch of 1.5 mm, runs the committed ONNX model through the device's scorer and
the explicit rules of ``edge/courier/decide.py``, and prints per-category recall (on
batches of >= 20 cards, >= 100 notes, >= 50 g gold: every simulated threat qualifies),
false alarms per 100 parcels, and the confusion matrix. ``--write-card`` puts the result
into ``models/xray/README.md`` and ``model.json``.

``--profile train`` simulates validation days of the training profile instead (for
choosing the rules' settings; their seeds must be apart from every training set's), and
``--sweep-support 1.0,0.9,...`` judges the same scored parcels with each support ratio
of the ``image_supported`` rule, after printing how common its signals are.

``--lofo FAMILY`` (repeatable) adds leave-one-family-out runs: the model's head is
trained (``models.xray.head``, same seeds and data) on the training and validation sets
minus every parcel that used FAMILY, exported to ONNX with the committed CNN part (not
retrained: it saw the family among its 2,400 images) and evaluated on held-out parcels
that all contain FAMILY. Needs the ``train`` extra for ``--lofo``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.courier.decide import DecideSettings, ParcelFacts, judge, load_scorer
from edge.courier.xray_scorer import LABELS, XrayScorer, XrayScores
from simulators.depot.contents import (
    CARD_LAYOUTS,
    CASH_LAYOUTS,
    GOLD_LAYOUTS,
    ParcelSpec,
    sample_parcel,
)
from simulators.depot.xray import render

HERE = Path(__file__).resolve().parent
EVAL_RATES = {"card_batch": 0.10, "gold": 0.07, "cash": 0.07}
CLASSES = ("none",) + LABELS


@dataclass
class Result:
    n: int
    confusion: dict[str, dict[str, int]]    # truth -> predicted -> count
    recall: dict[str, float]
    positives: dict[str, int]
    false_alarms_per_100: float
    false_alarm_parcels: int
    kind_correct: int
    kind_told: int
    kind_total: int
    image_ms_p50: float
    image_ms_p99: float
    by_layout: dict[str, list[int]] | None = None   # threat layout -> [found, total]

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def facts_of(spec: ParcelSpec, rng: np.random.Generator) -> ParcelFacts:
    """What the station would have measured: scale and dimensioner with their noise."""
    length, width, height = spec.size_mm
    vol = (length + rng.normal(0, 3)) * (width + rng.normal(0, 3)) * (height + rng.normal(0, 3))
    return ParcelFacts(spec.weight_kg * (1 + rng.normal(0, 0.004)), vol / 1e6, spec.declared,
                       float(spec.declared_value_cny), spec.sender_verified, spec.rfid_tags)


def score_all(scorer: XrayScorer, specs_iter: object, rng: np.random.Generator,
              progress: bool = False) -> list[tuple[ParcelSpec, XrayScores, ParcelFacts, float]]:
    """Render and score every parcel of ``specs_iter`` once: (spec, scores, facts, ms)."""
    out = []
    for spec in specs_iter:  # type: ignore[attr-defined]
        r = render(spec, rng, 1.5)
        t0 = time.perf_counter()
        x = scorer.score(r.image, 1.5)
        ms = (time.perf_counter() - t0) * 1000
        out.append((spec, x, facts_of(spec, rng), ms))
        if progress and len(out) % 100 == 0:
            print(f"  judged {len(out)}", flush=True)
    return out


def run(scorer: XrayScorer, settings: DecideSettings, specs_iter: object,
        rng: np.random.Generator, progress: bool = False) -> Result:
    """Score and judge every parcel of ``specs_iter`` (iterable of ParcelSpec)."""
    return judge_all(score_all(scorer, specs_iter, rng, progress), settings)


def signal_rates(scored: list[tuple[ParcelSpec, XrayScores, ParcelFacts, float]]) -> str:
    """How common the rules' non-image signals are without a threat and with each category
    (what the image_supported rule may count as support)."""
    from edge.courier.decide import _EXPLAINS

    parts = []
    for cat in CLASSES:
        rows = [f for spec, _x, f, _ms in scored if spec.category == cat]
        if not rows:
            continue
        unver = np.mean([f.sender_verified is False for f in rows])
        not_expl = [np.mean([not any(w in f.declared.lower() for w in _EXPLAINS[c])
                             for f in rows]) for c in LABELS]
        parts.append(f"{cat} ({len(rows)}): sender not verified {100 * unver:.0f} %, "
                     "declaration not accounting for card_batch/gold/cash "
                     + "/".join(f"{100 * v:.0f}" for v in not_expl) + " %")
    return "; ".join(parts)


def judge_all(scored: list[tuple[ParcelSpec, XrayScores, ParcelFacts, float]],
              settings: DecideSettings) -> Result:
    """The rules of ``settings`` over parcels scored once (:func:`score_all`)."""
    conf: dict[str, Counter[str]] = {c: Counter() for c in CLASSES}
    ms: list[float] = []
    kind_ok = kind_told = kind_total = 0
    n = 0
    layouts: dict[str, list[int]] = {}
    for spec, x, facts, score_ms in scored:
        t0 = time.perf_counter()
        findings = judge(x, facts, settings)
        ms.append(score_ms + (time.perf_counter() - t0) * 1000)
        cats = sorted({f.category for f in findings})
        pred = "none" if not cats else (cats[0] if len(cats) == 1 else "+".join(cats))
        conf[spec.category][pred] += 1
        if spec.category != "none":
            key = f"{spec.category}:{spec.layout}"
            got = layouts.setdefault(key, [0, 0])
            got[0] += int(spec.category in pred.split("+"))
            got[1] += 1
        if spec.category == "card_batch":
            kind_total += 1
            f = next((f for f in findings if f.category == "card_batch"), None)
            if f is not None and f.card_kind:
                kind_told += 1
                kind_ok += int(f.card_kind == spec.card_kind
                               or (f.card_kind == "sim_or_iot" and spec.card_kind in ("sim",
                                                                                     "iot")))
        n += 1
    recall = {}
    pos = {}
    for cat in LABELS:
        tot = sum(conf[cat].values())
        hit = sum(v for k, v in conf[cat].items() if cat in k.split("+"))
        pos[cat] = tot
        recall[cat] = hit / tot if tot else float("nan")
    fa = sum(v for k, v in conf["none"].items() if k != "none")
    return Result(n, {k: dict(v) for k, v in conf.items()}, recall, pos,
                  100.0 * fa / max(n, 1), fa, kind_ok, kind_told, kind_total,
                  float(np.percentile(ms, 50)) if ms else 0.0,
                  float(np.percentile(ms, 99)) if ms else 0.0, dict(sorted(layouts.items())))


def heldout_days(days: int, parcels: int, seed: int, profile: str = "heldout"
                 ) -> list[ParcelSpec]:
    """Simulated days (``profile`` ``train``: validation days of the training profile,
    for choosing the rules' settings; never the held-out profile for that)."""
    specs = []
    for d in range(days):
        rng = np.random.default_rng(seed + d)
        specs += [sample_parcel(rng, profile, rates=EVAL_RATES) for _ in range(parcels)]
    return specs


def family_parcels(family: str, n: int, seed: int) -> list[ParcelSpec]:
    """Held-out parcels that all use ``family`` (threat layouts: all threats of it)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if family in CARD_LAYOUTS:
            out.append(sample_parcel(rng, "heldout", category="card_batch", layout=family)
                       if i % 2 == 0 else sample_parcel(rng, "heldout", category="none"))
        elif family in GOLD_LAYOUTS:
            out.append(sample_parcel(rng, "heldout", category="gold", layout=family)
                       if i % 2 == 0 else sample_parcel(rng, "heldout", category="none"))
        elif family in CASH_LAYOUTS:
            out.append(sample_parcel(rng, "heldout", category="cash", layout=family)
                       if i % 2 == 0 else sample_parcel(rng, "heldout", category="none"))
        else:
            out.append(sample_parcel(rng, "heldout", rates=EVAL_RATES,
                                     include_families=[family]))
    return out


def settings_for(scorer: XrayScorer, support_ratio: float | None = None,
                 from_declaration: bool = False) -> DecideSettings:
    thr = {k: float(v) for k, v in scorer.model.contract.get("thresholds", {}).items()}
    st = DecideSettings(thresholds=thr, divert=False, support_from_declaration=from_declaration)
    if support_ratio is not None:
        st.support_ratio = support_ratio
    return st


def _confusion_md(res: Result) -> list[str]:
    preds = sorted({p for row in res.confusion.values() for p in row},
                   key=lambda p: (p != "none", p))
    lines = ["| truth \\ decided | " + " | ".join(preds) + " |",
             "|---|" + "---|" * len(preds)]
    for t in CLASSES:
        row = res.confusion.get(t, {})
        lines.append(f"| {t} | " + " | ".join(str(row.get(p, 0)) for p in preds) + " |")
    return lines


def _summary(res: Result) -> str:
    rec = ", ".join(f"{k} {v:.3f} ({res.positives[k]})" for k, v in res.recall.items())
    return (f"{res.n} parcels; recall {rec}; false alarms {res.false_alarms_per_100:.2f} "
            f"per 100 parcels ({res.false_alarm_parcels}); card kind told "
            f"{res.kind_told}/{res.kind_total}, right {res.kind_correct}; "
            f"image+rules p50 {res.image_ms_p50:.1f} ms, p99 {res.image_ms_p99:.1f} ms")


def lofo(family: str, n_test: int, seed: int, cache: Path, chunks: int, val_chunks: int,
         train_seed: int) -> Result:
    """Train the head without ``family`` (``models.xray.head --exclude``), evaluate on
    held-out parcels that all contain it. The CNN part is the committed one."""
    import argparse as _ap

    from models.xray.head import VAL_FP, train

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        head = json.loads((HERE / "model.json").read_text("utf-8")).get(
            "training", {}).get("head", "gbm")
        train(_ap.Namespace(chunks=chunks, val_chunks=val_chunks, seed=train_seed,
                            val_fp=VAL_FP, exclude=[family], out=folder, cache=cache,
                            head=head))
        scorer = load_scorer(folder)
        return run(scorer, settings_for(scorer), family_parcels(family, n_test, seed),
                   np.random.default_rng(seed + 99))


def write_card(mains: dict[str, tuple[str, Result]], lofos: dict[str, Result],
               lofo_cmds: list[str]) -> None:
    """Write the evaluation block of the card and ``model.json``'s ``evaluation``:
    ``mains`` held-out name (e.g. "days 7100-7101") -> (command, result)."""
    readme = HERE / "README.md"
    text = readme.read_text("utf-8")
    start, end = "<!-- evaluation:start -->", "<!-- evaluation:end -->"
    body = [start, ""]
    for name, (cmd, main) in mains.items():
        body += [f"**Held-out {name}** (`{cmd}`): {_summary(main)}", "",
                 *_confusion_md(main), ""]
    if len(mains) > 1:
        lays = sorted({k for _c, m in mains.values() for k in (m.by_layout or {})})
        names = list(mains)
        body += ["Recall by threat layout (found / parcels):", "",
                 "| layout | " + " | ".join(names) + " |",
                 "|---|" + "---|" * len(names)]
        for key in lays:
            cells = []
            for nm in names:
                hit, tot = (mains[nm][1].by_layout or {}).get(key, [0, 0])
                cells.append(f"{hit}/{tot} ({hit / tot:.2f})" if tot else "-")
            body.append(f"| {key} | " + " | ".join(cells) + " |")
        body.append("")
    elif mains:
        main = next(iter(mains.values()))[1]
        body += ["Recall by threat layout (found / parcels):", "",
                 "| layout | found | parcels | recall |", "|---|---|---|---|"]
        for key, (hit, tot) in (main.by_layout or {}).items():
            body.append(f"| {key} | {hit} | {tot} | {hit / tot:.2f} |")
        body.append("")
    if lofos:
        body += ["Leave-one-family-out (train without the family, test on held-out parcels "
                 "that all contain it; half threats of that layout for a threat layout; "
                 + " and ".join(f"`{c}`" for c in dict.fromkeys(lofo_cmds)) + "):", "",
                 "| family left out | parcels | recall card / gold / cash | false alarms "
                 "per 100 |", "|---|---|---|---|"]
        for fam, r in lofos.items():
            rec = " / ".join("-" if not r.positives[k] else f"{v:.3f} ({r.positives[k]})"
                             for k, v in r.recall.items())
            body.append(f"| {fam} | {r.n} | {rec} | {r.false_alarms_per_100:.2f} |")
        body.append("")
    body.append(end)
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        text = pre + "\n".join(body) + post
    else:
        text = text.rstrip() + "\n\n" + "\n".join(body) + "\n"
    readme.write_text(text, "utf-8")
    path = HERE / "model.json"
    contract = json.loads(path.read_text("utf-8"))
    contract["evaluation"] = {
        "heldout": {name: {"command": cmd, **res.as_dict()} for name, (cmd, res) in
                    mains.items()},
        "lofo": {k: {"command": c, **v.as_dict()} for (k, v), c in
                 zip(lofos.items(), lofo_cmds, strict=True)}}
    path.write_text(json.dumps(contract, indent=1) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Held-out evaluation of the parcel decision.")
    ap.add_argument("--days", type=int, default=2, help="held-out simulated days")
    ap.add_argument("--parcels", type=int, default=600, help="parcels per day")
    ap.add_argument("--seed", type=int, default=7100, help="first held-out day's seed")
    ap.add_argument("--lofo", action="append", default=[], help="family to leave out")
    ap.add_argument("--lofo-parcels", type=int, default=240, help="test parcels per LOFO run")
    ap.add_argument("--chunks", type=int, default=16,
                    help="training sets of 500 parcels for the LOFO heads")
    ap.add_argument("--val-chunks", type=int, default=3,
                    help="validation sets of 500 parcels for the LOFO heads")
    ap.add_argument("--train-seed", type=int, default=20261201, help="training seed (LOFO)")
    ap.add_argument("--cache", type=Path, default=Path(".cache/xray"), help="dataset cache")
    ap.add_argument("--skip-main", action="store_true", help="only the LOFO runs")
    ap.add_argument("--support-ratio", type=float, default=None,
                    help="share of the threshold the image_supported rule needs "
                         "(default: DecideSettings', as on the device)")
    ap.add_argument("--sweep-support", default="",
                    help="comma-separated support ratios: judge the same scored parcels "
                         "with each and print recall and false alarms (choosing the ratio)")
    ap.add_argument("--support-from-declaration", action="store_true",
                    help="count a declaration that does not account for the image as support")
    ap.add_argument("--profile", choices=("heldout", "train"), default="heldout",
                    help="train: validation days of the training profile (to choose the "
                         "rules' settings on; seeds apart from every training set)")
    ap.add_argument("--write-card", action="store_true", help="write README.md/model.json")
    ap.add_argument("--model", type=Path, default=None,
                    help="model folder to evaluate (default: the committed models/xray)")
    args = ap.parse_args(argv)
    cmd = "python -m models.xray.evaluate " + " ".join(argv if argv is not None else
                                                      __import__("sys").argv[1:])
    main_res = None
    if not args.skip_main:
        scorer = load_scorer(args.model)
        scored = score_all(scorer, heldout_days(args.days, args.parcels, args.seed,
                                                args.profile),
                           np.random.default_rng(args.seed + 500), progress=True)
        if args.sweep_support:
            print("signals:", signal_rates(scored))
        for ratio in (float(v) for v in args.sweep_support.split(",") if v):
            r = judge_all(scored, settings_for(scorer, ratio, args.support_from_declaration))
            print(f"support ratio {ratio:g}: {_summary(r)}", flush=True)
        main_res = judge_all(scored, settings_for(scorer, args.support_ratio,
                                                  args.support_from_declaration))
        print(_summary(main_res))
        print("\n".join(_confusion_md(main_res)))
        print("recall by layout:", {k: f"{a}/{b}" for k, (a, b) in
                                    (main_res.by_layout or {}).items()})
    results = args.cache / "eval"
    results.mkdir(parents=True, exist_ok=True)
    if main_res is not None and args.profile == "heldout":
        # one file per set of days, so the card can show the old and the new days
        (results / f"main_{args.seed}_{args.days}x{args.parcels}.json").write_text(
            json.dumps({"cmd": cmd.strip(), "seed": args.seed, "days": args.days,
                        **main_res.as_dict()}), "utf-8")
    for fam in args.lofo:
        r = lofo(fam, args.lofo_parcels, args.seed + 50, args.cache, args.chunks,
                 args.val_chunks, args.train_seed)
        print(f"LOFO {fam}: {_summary(r)}", flush=True)
        (results / f"lofo_{fam}.json").write_text(json.dumps({"cmd": cmd.strip(),
                                                              **r.as_dict()}), "utf-8")
    if args.write_card:
        # the main runs and the LOFO runs may come from separate invocations
        files = sorted(results.glob("main_*.json"))
        if not files:
            print("no main evaluation result yet; run without --skip-main first")
            return 1
        mains = {}
        for f in files:
            m = json.loads(f.read_text("utf-8"))
            seed, days = m.pop("seed"), m.pop("days")
            name = f"day {seed}" if days == 1 else f"days {seed}-{seed + days - 1}"
            mains[name] = (m.pop("cmd"), Result(**m))
        lofos, lofo_cmds = {}, []
        for f in sorted(results.glob("lofo_*.json")):
            d = json.loads(f.read_text("utf-8"))
            lofo_cmds.append(d.pop("cmd"))
            lofos[f.stem[5:]] = Result(**d)
        write_card(mains, lofos, lofo_cmds)
        print(f"wrote {HERE / 'README.md'} and model.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
