"""The long fuzzing run (issue 9): 10,000 mutated inputs per decoder, seeded from the
repository corpus and from the real captures; prints the RESULTS.md table.

    nice -n 10 .venv/bin/python bench/fuzz_campaign.py            # defaults below
    nice -n 10 .venv/bin/python bench/fuzz_campaign.py --n 50000 --seed 2

Inputs that break a decoder land in fuzz-finds/ (input + traceback): fix the decoder,
then move the input into tests/fuzz/corpus/<target>/find-*.bin so it stays a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.security.fuzz import main  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--captures" not in args:
        args += ["--captures", str(REPO.parent / "shared" / "captures")]
    if "--corpus" not in args:
        args += ["--corpus", str(REPO / "tests" / "fuzz" / "corpus")]
    sys.exit(main(args))
