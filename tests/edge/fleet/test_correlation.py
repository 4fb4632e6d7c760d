"""Cross-site correlation on a simulated multi-site day (real broker, real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from edge.fleet.correlate import Member, group, load_cases
from simulators.broker import LocalBroker
from simulators.fleet_day import make_day, truth_cases
from tests.edge.fleet.dayload import day_end, load_day


def test_group_is_transitive_and_skips_hub_keys() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    ms = [Member("A", "s1", t0, "parcel.card_batch", ("f1:recv",)),
          Member("B", "s2", t0 + timedelta(hours=1), "parcel.card_batch", ("f1:recv", "f1:x")),
          Member("C", "s3", t0 + timedelta(hours=2), "parcel.card_batch", ("f1:x",)),
          Member("D", "s1", t0, "simbox.sim", ("f1:hub",)),
          Member("E", "s2", t0, "simbox.sim", ("f1:hub",)),
          Member("F", "s3", t0, "simbox.sim", ("f1:hub",))]
    cases = group(ms, max_key_reports=2)
    assert [c.reports for c in cases] == [("A", "B", "C")]
    assert cases[0].site_path == ("s1", "s2", "s3") and cases[0].moves == 2
    assert cases[0].cross_site and cases[0].id == "A"


def test_cases_on_a_simulated_multi_site_day(dsn: str) -> None:
    day = make_day(seed=3)
    with LocalBroker() as broker:
        load_day(day, dsn, broker.host, broker.port)
    with psycopg.connect(dsn) as conn:
        cases = load_cases(conn, days=2, until=day_end(day) + timedelta(minutes=1))
        got = sorted(sorted(c.reports) for c in cases)
        assert got == sorted(sorted(c) for c in truth_cases(day))
        by_first = {c.reports[0]: c for c in cases}
        moving = by_first[day.planted["moving_sim"][0]]
        assert moving.site_path == ("bs-00", "bs-01", "bs-02") and moving.moves == 2
        chain = next(c for c in cases if set(c.reports) == set(day.planted["depot_chain"]))
        assert chain.cross_site and set(chain.kinds) == {"parcel.card_batch",
                                                         "parcel.mismatch"}
        one = next(c for c in cases if set(c.reports) == set(day.planted["sim_one_site"]))
        assert not one.cross_site
        # no clear identifier anywhere in what the collector stored
        dump = " ".join(str(r) for table in ("reports", "report_identifiers")
                        for r in conn.execute(f"SELECT * FROM {table}").fetchall())
        for value in day.clear_values:
            assert value not in dump
