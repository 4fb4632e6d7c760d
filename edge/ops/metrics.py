"""An OpenMetrics endpoint on localhost for the agent's counters (prometheus-client).

The pipeline thread owns every counter. It hands a *snapshot* (a plain dict copied
from ``Pipeline.counters()``) to :meth:`MetricsExporter.publish` at most once per
``min_interval_s``; the HTTP thread only ever reads the latest snapshot, so no
component state is touched from another thread and a scrape costs the pipeline
nothing. Counter names follow the pipeline's flat scheme and become labelled
families:

==============================  ==============================================
pipeline counter                metric
==============================  ==============================================
``records``, ``detections``,    ``afe_records_total``, ``afe_detections_total``,
``malformed``                   ``afe_malformed_total``
``source.<src>.<name>``         ``afe_source{source="<src>",counter="<name>"}``
``sink.<sink>.<name>``          ``afe_sink{sink="<sink>",counter="<name>"}``
``<stage>.<name>``              ``afe_stage{stage="<stage>",counter="<name>"}``
==============================  ==============================================

plus ``afe_snapshot_timestamp_seconds`` (when the pipeline last published),
``afe_native{module="callplane"}`` (1 when the call plane's compiled build runs, 0 for
the pure-Python modules: :mod:`edge.native`) and the standard ``process_*`` metrics (RSS, CPU seconds, open fds) of this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server

from edge import native

TOTALS = ("records", "detections", "malformed")


class _SnapshotCollector:
    def __init__(self) -> None:
        self.snapshot: Mapping[str, Any] = {}
        self.stamp = 0.0

    def collect(self) -> Iterator[Metric]:
        snap, stamp = self.snapshot, self.stamp  # one read of each: a consistent pair
        for name in TOTALS:
            c = CounterMetricFamily(f"afe_{name}", f"{name} seen by the pipeline")
            c.add_metric([], float(snap.get(name, 0)))
            yield c
        src = GaugeMetricFamily("afe_source", "per-source counters", labels=["source", "counter"])
        sink = GaugeMetricFamily("afe_sink", "per-sink counters (outbox, MQTT link, files)",
                                 labels=["sink", "counter"])
        stage = GaugeMetricFamily("afe_stage", "per-stage counters (decoders, detectors, "
                                  "model latencies)", labels=["stage", "counter"])
        for key, value in snap.items():
            if key in TOTALS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            head, _, rest = key.partition(".")
            if not rest:
                stage.add_metric(["pipeline", head], float(value))
            elif head in ("source", "sink"):
                owner, _, counter = rest.partition(".")
                (src if head == "source" else sink).add_metric([owner, counter or "value"],
                                                               float(value))
            else:
                stage.add_metric([head, rest], float(value))
        yield src
        yield sink
        yield stage
        ts = GaugeMetricFamily("afe_snapshot_timestamp_seconds",
                               "wall-clock time of the pipeline's last snapshot")
        ts.add_metric([], stamp)
        yield ts
        nat = GaugeMetricFamily("afe_native", "1: the module's compiled (mypyc) build runs, "
                                "0: its pure-Python source", labels=["module"])
        nat.add_metric(["callplane"], 1.0 if native.active() else 0.0)
        yield nat


class MetricsExporter:
    """Serves the latest snapshot at ``http://<bind>:<port>/metrics``.

    ``port=0`` picks a free port (see :attr:`port`). Bind to 127.0.0.1 unless a
    scraper elsewhere must reach it: the counters say how busy a site is.
    """

    def __init__(self, bind: str = "127.0.0.1", port: int = 9464,
                 min_interval_s: float = 1.0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _SnapshotCollector()
        self.registry.register(self._collector)  # type: ignore[arg-type]
        self.registry.register(ProcessCollector(registry=None))
        self.min_interval_s = min_interval_s
        self._last = float("-inf")
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.bind, self.port = bind, port

    def start(self) -> None:
        self._server, self._thread = start_http_server(self.port, self.bind, self.registry)
        self.port = self._server.server_address[1]

    def publish(self, snapshot: Mapping[str, Any], *, force: bool = False) -> bool:
        """Hand over a fresh snapshot (called on the pipeline thread); cheap when early."""
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return False
        self._last = now
        self._collector.snapshot = dict(snapshot)
        self._collector.stamp = time.time()
        return True

    def publish_lazy(self, snapshot: Callable[[], Mapping[str, Any]]) -> bool:
        """Like :meth:`publish`, but the snapshot is only built when it is due."""
        if time.monotonic() - self._last < self.min_interval_s:
            return False
        return self.publish(snapshot(), force=True)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
