"""Parcels per second through assembly and both models, and image-arrival -> decision latency.

``python bench/bench_parcel.py [--parcels 300]`` simulates a lane's parcels
(``simulators/depot``), renders and PNG-encodes their X-ray images beforehand (the X-ray
machine's work, not timed), then on one thread, per parcel: decodes the PNG (what the
folder watcher does), feeds the scanner, scale, dimensioner and X-ray records into the
depot's parcel assembly (``edge.courier.assembly.ParcelAssembler``, when present), and
hands the assembled parcel to the decision stage (image model through onnxruntime on
one thread, then the explicit rules; reports and the divert command built).
Prints parcels per CPU-second, the p50/p99 latency from image arrival (PNG bytes in
hand) to decision, in wall time (what a loaded shared box gives) and in CPU time of the
thread (what one free core would give), and the image model alone at batch 1 (the
explicit features and the ONNX graph, separately).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.courier.decide import DecideSettings, ParcelDecisionStage, load_scorer  # noqa: E402
from edge.courier.records import (  # noqa: E402
    DimsReading,
    Parcel,
    ScanRead,
    Waybill,
    WeightReading,
    XrayImage,
)
from edge.detection import Detection  # noqa: E402
from simulators.depot.contents import sample_parcel  # noqa: E402
from simulators.depot.xray import render  # noqa: E402


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, default=300, help="parcels to simulate")
    ap.add_argument("--seed", type=int, default=99, help="simulation seed")
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core
    except (AttributeError, OSError):
        pass
    rng = np.random.default_rng(args.seed)
    print(f"rendering {args.parcels} parcels (not timed)...", flush=True)
    specs = [sample_parcel(rng, "heldout") for _ in range(args.parcels)]
    pngs = [_png(render(s, rng, 1.5).image) for s in specs]

    scorer = load_scorer()
    thr = {k: float(v) for k, v in scorer.model.contract["thresholds"].items()}
    stage = ParcelDecisionStage(scorer, DecideSettings(thresholds=thr, inspection_list=None,
                                                       crop_dir=None), scorer.model.info)
    try:
        from edge.courier.assembly import ParcelAssembler
        waybills = {f"SF{1000000000000 + i}": Waybill(f"SF{1000000000000 + i}", s.declared,
                                                      s.declared_value_cny, s.sender_verified)
                    for i, s in enumerate(specs)}
        asm: object | None = ParcelAssembler("L1", waybill=waybills.get)
    except ImportError:
        asm = None
    gap = 1.5           # seconds between parcels' leading edges at the scanner
    t0_event = 1_800_000_000.0
    lat: list[float] = []
    lat_cpu: list[float] = []
    alerts = 0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i, (spec, data) in enumerate(zip(specs, pngs, strict=True)):
        ts = t0_event + i * gap
        code = f"SF{1000000000000 + i}"
        length, width, height = (v / 10 for v in spec.size_mm)
        t_arrive = time.perf_counter()
        c_arrive = time.thread_time()
        pixels = _decode(data)
        xr = XrayImage(ts + 6.0, "L1", Path(f"{int((ts + 6) * 1000)}_L1.png"), pixels, 1.5,
                       0.5, True)
        parcels: list[Parcel] = []
        if asm is not None:
            for rec in (ScanRead(ts, "L1", code),
                        WeightReading(ts + 1.6, "L1", "stable", spec.weight_kg),
                        DimsReading(ts + 4.5, "L1", True, length, width, height,
                                    spec.weight_kg),
                        xr):
                asm.feed(rec)  # type: ignore[attr-defined]
            parcels = asm.tick(xr.ts + 0.01)  # type: ignore[attr-defined]
        else:
            parcels = [Parcel(ts, "L1", i + 1, code, Waybill(code, spec.declared), spec.weight_kg,
                              (length, width, height), None, (), xr, (), (), xr.ts + 2.0)]
        for p in parcels:
            out = stage.feed(p)
            alerts += sum(1 for o in out if isinstance(o, Detection)
                          and o.kind in ("parcel.card_batch", "parcel.gold", "parcel.cash"))
        if parcels:
            lat.append((time.perf_counter() - t_arrive) * 1000)
            lat_cpu.append((time.thread_time() - c_arrive) * 1000)
    if asm is not None:
        for p in asm.flush():  # type: ignore[attr-defined]
            stage.feed(p)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    # the image model alone at batch 1, one thread
    from models.xray.features import extract
    from models.xray.preprocess import prepare

    x = prepare(_decode(pngs[0]), 1.5).x[None]
    sess = scorer.model.session
    feeds = {"image" if scorer.two_part else scorer.model.input_name: x}
    if scorer.two_part:
        n_feat = len(scorer.model.contract["features"])
        feeds["features"] = np.zeros((1, n_feat), dtype=np.float32)
    for _ in range(5):
        sess.run(None, feeds)
    from models.xray.native import extract as extract_native

    prep0 = prepare(_decode(pngs[0]), 1.5)
    x0, y0, x1, y1 = prep0.native_window()
    crop0 = _decode(pngs[0])[y0:y1, x0:x1]
    times, ftimes, ntimes = [], [], []
    for _ in range(200):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1000)
        if scorer.two_part:
            t = time.perf_counter()
            extract(x[0])
            ftimes.append((time.perf_counter() - t) * 1000)
        if scorer.native:
            t = time.perf_counter()
            extract_native(crop0, 1.5)
            ntimes.append((time.perf_counter() - t) * 1000)
    n = args.parcels
    print(f"assembly: {'edge.courier.assembly.ParcelAssembler' if asm else 'none (not in tree)'}")
    print(f"parcels: {n}, decided: {stage.counters()['judged']}, alerts: {alerts}")
    print(f"throughput: {n / cpu:.1f} parcels per CPU-second ({n / wall:.1f} per wall-second), "
          "PNG decode + assembly + image model + rules")
    if lat:
        print(f"image arrival -> decision: p50 {np.percentile(lat, 50):.1f} ms, "
              f"p99 {np.percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms "
              f"(decided after the X-ray record; {len(lat)} samples)")
        print(f"image arrival -> decision, CPU time of the thread: p50 "
              f"{np.percentile(lat_cpu, 50):.1f} ms, p99 {np.percentile(lat_cpu, 99):.1f} ms, "
              f"max {max(lat_cpu):.1f} ms")
    print(f"image model alone (ONNX graph), batch 1, one thread: p50 "
          f"{np.percentile(times, 50):.2f} ms, p99 {np.percentile(times, 99):.2f} ms")
    if ftimes:
        print(f"explicit features (numpy), one image: p50 {np.percentile(ftimes, 50):.2f} ms, "
              f"p99 {np.percentile(ftimes, 99):.2f} ms")
    if ntimes:
        print(f"native-pitch features (numpy), one image: p50 {np.percentile(ntimes, 50):.2f} "
              f"ms, p99 {np.percentile(ntimes, 99):.2f} ms")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
