"""The fuzzing campaign that stays (issue 9): every corpus entry (simulator seeds and
past finds) replays cleanly, and a short hypothesis-driven mutation run per decoder
(seeded from the corpus and, at test time, from the real captures) finds nothing.
The long run is ``python -m edge.security.fuzz`` (figures in bench/RESULTS.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.security.fuzz import Target, campaign, capture_seeds, load_corpus, mutate, targets

CORPUS = Path(__file__).with_name("corpus")
TARGETS = targets()
NAMES = sorted(TARGETS)


@pytest.fixture(scope="module")
def real(captures_dir: Path) -> dict[str, list[bytes]]:
    return capture_seeds(captures_dir)


def test_every_decoder_has_a_corpus() -> None:
    assert set(NAMES) == {"events", "pcap", "sip", "sdp", "goip", "downlink", "config"}
    for name in NAMES:
        assert load_corpus(CORPUS, name), f"tests/fuzz/corpus/{name}/ is empty"


@pytest.mark.parametrize("name", NAMES)
def test_corpus_replays_cleanly(name: str) -> None:
    fig = campaign(TARGETS[name], 0, corpus=load_corpus(CORPUS, name))
    assert fig.finds == [], fig.finds[0][1] if fig.finds else ""
    assert fig.inputs == fig.corpus


@pytest.mark.parametrize("name", NAMES)
def test_short_campaign_with_real_capture_seeds(name: str,
                                                real: dict[str, list[bytes]]) -> None:
    fig = campaign(TARGETS[name], 150, seed=1, corpus=load_corpus(CORPUS, name),
                   extra=real.get(name, []))
    assert fig.finds == [], fig.finds[0][1] if fig.finds else ""
    assert fig.inputs == 150 + fig.corpus and 0 < fig.rejects <= fig.inputs


def _entries(t: Target) -> list[bytes]:
    return load_corpus(CORPUS, t.name) or t.seeds()


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(rnd=st.randoms(use_true_random=False), pick=st.integers(0, 10**6),
       rounds=st.integers(1, 3))
def test_hypothesis_mutations_never_escape(name: str, rnd: random.Random, pick: int,
                                           rounds: int) -> None:
    t = TARGETS[name]
    entries = _entries(t)
    data = entries[pick % len(entries)]
    for _ in range(rounds):
        data = mutate(rnd, data, entries)
    t.run(data)  # a verdict either way; an exception fails (and hypothesis shrinks it)
