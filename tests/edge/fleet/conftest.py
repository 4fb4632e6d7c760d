"""Fixtures: a throwaway PostgreSQL cluster per module, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from simulators.postgres import LocalPostgres, find_pg_bin

_n = itertools.count()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[LocalPostgres]:
    try:
        find_pg_bin()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is not installed ({exc}); the test command installs it")
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture()
def dsn(pg_cluster: LocalPostgres) -> str:
    """An empty database of its own (no migrations applied)."""
    return pg_cluster.new_database(f"t{next(_n)}")
