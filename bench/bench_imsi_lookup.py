"""What one IMSI -> SIM look-up costs at 500 k SIMs (issue 13, speed part): a dict of
str keys, as the call plane's fold does per event, against a C open-addressing table of
IMSIs packed into int64, looked up 4,096 at a time (the size of the pipeline's runs).

A measurement for the next step of the speed work (bench/RESULTS.md, session 7), not
part of the agent: the C table is written to a temporary directory and built with the
machine's C compiler (skipped without one), and called through ctypes.

    python bench/bench_imsi_lookup.py /tmp/cpspeed/events-5000000-500000-4711.jsonl
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

C_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
/* open addressing, linear probing: key an IMSI as int64 (> 0), value its dense number */
typedef struct { int64_t *keys; int32_t *vals; uint64_t mask; int32_t n; } tab_t;
static uint64_t mix(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x; }
tab_t *tab_new(int bits) { tab_t *t = calloc(1, sizeof *t); size_t sz = (size_t)1 << bits;
  t->keys = calloc(sz, 8); t->vals = calloc(sz, 4); t->mask = sz - 1; return t; }
/* look n keys up (a new key gets the next number); their numbers go to out */
void tab_ids(tab_t *t, const int64_t *k, int32_t *out, int n) {
  for (int i = 0; i < n; i++) { uint64_t h = mix((uint64_t)k[i]) & t->mask;
    for (;;) { int64_t c = t->keys[h];
      if (c == k[i]) { out[i] = t->vals[h]; break; }
      if (c == 0) { t->keys[h] = k[i]; t->vals[h] = t->n; out[i] = t->n++; break; }
      h = (h + 1) & t->mask; } } }
"""
RUN = 4096


class _Imsi(msgspec.Struct):
    imsi: str


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    dec = msgspec.json.Decoder(_Imsi).decode
    with open(sys.argv[1], "rb") as fh:
        imsis = [dec(ln).imsi for ln in fh]
    n = len(imsis)
    print(f"{n:,} events, {len(set(imsis)):,} distinct IMSIs")
    for _ in range(2):
        d: dict[str, int] = {}
        t = time.process_time()
        for s in imsis:  # the fold's sims.get(imsi), then sims[imsi] = ... on a miss
            if d.get(s) is None:
                d[s] = len(d)
        dt = time.process_time() - t
        print(f"dict of str keys: {dt:.2f} CPU s, {1e9 * dt / n:.0f} ns a look-up")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("no C compiler: the C table is skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        src, lib_path = Path(tmp) / "tab.c", Path(tmp) / "tab.so"
        src.write_text(C_SOURCE)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib_path), str(src)], check=True)
        lib = ctypes.CDLL(str(lib_path))
    lib.tab_new.restype = ctypes.c_void_p
    lib.tab_ids.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    out = np.empty(RUN, dtype=np.int32)
    for _ in range(2):
        tab = lib.tab_new(21)  # 2 M slots: 500 k SIMs at a quarter full
        parse = 0.0
        t = time.process_time()
        for k in range(0, n, RUN):
            t0 = time.process_time()
            keys = np.array(imsis[k:k + RUN], dtype="U15").astype(np.int64)
            parse += time.process_time() - t0
            lib.tab_ids(tab, keys.ctypes.data, out.ctypes.data, len(keys))
        dt = time.process_time() - t
        print(f"C table of int64 keys, {RUN:,} at a time: {dt:.2f} CPU s, "
              f"{1e9 * dt / n:.0f} ns a look-up, of which {1e9 * parse / n:.0f} ns "
              f"parsing the IMSI strings in numpy, {1e9 * (dt - parse) / n:.0f} ns the look-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
