"""Shared fixtures: where the shared captures are, a private mosquitto broker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (read-only captures and docs)."""
    d = (REPO / ".." / "shared").resolve()
    if not d.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return d


@pytest.fixture(scope="session")
def captures_dir(shared_dir: Path) -> Path:
    return shared_dir / "captures"


@pytest.fixture()
def broker() -> Iterator[object]:
    """A mosquitto of the test's own on a free loopback port (killable)."""
    from simulators.broker import LocalBroker

    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail("mosquitto is not installed; the test command installs it")
    with LocalBroker() as b:
        yield b
