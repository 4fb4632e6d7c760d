"""The OpenMetrics endpoint: content after a snapshot, served over real HTTP."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from edge.ops.metrics import MetricsExporter


@pytest.fixture()
def exporter() -> Iterator[MetricsExporter]:
    m = MetricsExporter(port=0)
    m.start()
    yield m
    m.close()


def _scrape(m: MetricsExporter, openmetrics: bool = False) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{m.port}/metrics")
    if openmetrics:
        req.add_header("Accept", "application/openmetrics-text; version=1.0.0")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


def test_counters_become_labelled_families(exporter: MetricsExporter) -> None:
    assert exporter.publish({"records": 1200, "detections": 3, "malformed": 7,
                             "source.events.lines": 1200, "source.capture.queue_drops": 4,
                             "callplane.sims": 812, "callplane.model_batch_us_p99": 950.5,
                             "sink.mqtt.outbox_depth": 12, "final": False}, force=True)
    text = _scrape(exporter)
    assert "afe_records_total 1200.0" in text
    assert "afe_malformed_total 7.0" in text
    assert 'afe_source{counter="queue_drops",source="capture"} 4.0' in text
    assert 'afe_stage{counter="model_batch_us_p99",stage="callplane"} 950.5' in text
    assert 'afe_sink{counter="outbox_depth",sink="mqtt"} 12.0' in text
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text
    assert "final" not in text  # booleans are not metrics
    from edge import native
    assert f'afe_native{{module="callplane"}} {float(native.active())}' in text
    om = _scrape(exporter, openmetrics=True)
    assert om.rstrip().endswith("# EOF")


def test_publish_is_rate_limited_and_scrapes_see_the_last_snapshot(
        exporter: MetricsExporter) -> None:
    exporter.publish({"records": 1}, force=True)
    assert not exporter.publish({"records": 2})  # within min_interval_s: kept cheap
    assert "afe_records_total 1.0" in _scrape(exporter)
    exporter.publish({"records": 3}, force=True)
    assert "afe_records_total 3.0" in _scrape(exporter)
