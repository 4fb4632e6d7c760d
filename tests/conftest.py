"""Shared fixtures: where the shared captures are, a private mosquitto broker."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # The suite never writes state into the checkout (edge-data/): runs on embedded
    # defaults keep theirs in one temporary directory per session (subprocesses too).
    if "AFE_DATA_DIR" not in os.environ:
        os.environ["AFE_DATA_DIR"] = tempfile.mkdtemp(prefix="afe-test-data-")


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
