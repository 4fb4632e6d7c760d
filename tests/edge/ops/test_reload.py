"""Planning a SIGHUP reload: live keys applied, the rest named as needing a restart."""

from __future__ import annotations

from edge.config import parse_config
from edge.ops.reload import flatten, plan_reload

LIVE = frozenset({"agent.status_interval_s", "detectors.ipplane.threshold"})


def test_plan_splits_live_and_restart_keys() -> None:
    old = parse_config('[agent]\nsite = "a"\nstatus_interval_s = 300\n')
    new = parse_config('[agent]\nsite = "b"\nstatus_interval_s = 60\n'
                       '[detectors.ipplane]\nthreshold = 0.7\n[mqtt]\nport = 8883\n')
    plan = plan_reload(old, new, LIVE)
    assert plan.apply == {"agent.status_interval_s": 60.0, "detectors.ipplane.threshold": 0.7}
    assert plan.restart == ["agent.site", "mqtt.port"]


def test_same_file_plans_nothing() -> None:
    text = '[agent]\nsite = "a"\n[inputs.events]\nudp_listen = "127.0.0.1:9000"\n'
    assert plan_reload(parse_config(text), parse_config(text), LIVE).empty


def test_flatten_reaches_nested_sections() -> None:
    keys = dict(flatten(parse_config("")))
    assert "mqtt.tls.ca_file" in keys and "detectors.callplane.threshold" in keys
