"""Runs the desk app with uvicorn in a background thread of the collector process."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from edge.errors import ConfigError
from edge.fleet.config import FleetConfig
from edge.fleet.web.app import make_app


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"desk listen address {listen!r} is not HOST:PORT",
                          key="fleet.desk.listen")
    return host.strip("[]") or "127.0.0.1", int(port)


class DeskServer:
    """``start()`` serves the desks on ``cfg.desk.listen``; ``stop()`` ends it."""

    def __init__(self, cfg: FleetConfig, stats: Any = None) -> None:
        host, port = parse_listen(cfg.desk.listen)
        config = uvicorn.Config(make_app(cfg, stats), host=host, port=port,
                                log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="fleet-desk", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise ConfigError("the desk server did not start (port in use?)",
                                  key="fleet.desk.listen")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
