"""The assembly on its own: domains from the registry (missing ones skipped), a
domain's own config table, sources/stages/actuators wired into one pipeline."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from edge import domains
from edge.assembly import assemble
from edge.config import Config, apply_overrides, get_key, parse_config
from edge.config_doc import reference_markdown
from edge.errors import ConfigError
from edge.pipeline import merge_by_time
from edge.report.sinks import MemorySink

PLUGIN = '''
"""A domain for tests: a [toy] table, a file source, a stage that commands a gate."""
from __future__ import annotations
from dataclasses import dataclass, field
from typing import Annotated
from edge.config import Range
from edge.domains import Domain
from edge.detection import Detection, Evidence, Subject
from edge.records import Command, CommandOutcome
from edge.actuators import DryRunActuator

@dataclass
class ToySection:
    limit: Annotated[int, Range(1, 100)] = 5
    """Readings above this raise an alert."""
    gates: list[str] = field(default_factory=list)
    """Gate names."""

@dataclass(slots=True)
class Reading:
    ts: float
    value: int

class ToySource:
    def __init__(self, path):
        self.name = "toy:" + path.name
        self.path = path
        self.closed = False
    def __iter__(self):
        for line in self.path.read_text().split():
            ts, v = line.split(",")
            yield Reading(float(ts), int(v))
    def counters(self):
        return {"read": 1}
    def close(self):
        self.closed = True

class ToyStage:
    name = "toy"
    consumes = (Reading, CommandOutcome)
    def __init__(self, limit):
        self.limit = limit
        self.outcomes = []
    def feed(self, r):
        if isinstance(r, CommandOutcome):
            self.outcomes.append(r.status)
            return ()
        if r.value <= self.limit:
            return ()
        return (Detection(ts=r.ts, kind="toy.high", severity="low", score=0.5,
                          subject=Subject("device", "gate"), evidence=[Evidence("high")],
                          route=["ops"], detector="toy"),
                Command(ts=r.ts, target="gate", action="close", args={"v": r.value},
                        deadline=r.ts + 1, correlation_id=f"t{r.ts}", origin="toy"))
    def tick(self, now): return ()
    def flush(self, now): return ()
    def counters(self): return {"outcomes": len(self.outcomes)}

def sources(ctx):
    return [ToySource(p) for p in ctx.files("toy")]

def stages(ctx):
    return [ToyStage(ctx.cfg.section("toy").limit)]

def actuators(ctx):
    return [DryRunActuator("gate")]

DOMAIN = Domain(name="toy", build_sources=sources, build_stages=stages,
                build_actuators=actuators, config_key="toy", config_type=ToySection,
                input_kinds=("toy",))
'''


@pytest.fixture()
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "toy_domain.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(domains.DOMAINS, "toy", "toy_domain:DOMAIN")
    monkeypatch.setitem(domains.DOMAINS, "absent", "no_such_package.domain:DOMAIN")
    domains.reset_cache()
    yield
    domains.reset_cache()
    sys.modules.pop("toy_domain", None)


def _cfg(tmp_path: Path, extra: str = "") -> Config:
    return parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp_path}/d"\n'
                        f'[privacy]\nkey = "assembly-test-key-01"\n{extra}')


def test_missing_domain_packages_are_skipped_like_optional_modules(toy: None) -> None:
    names = [d.name for d in domains.available_domains()]
    assert names[0] == "telecom" and "toy" in names and "absent" not in names
    assert domains.load_domain("absent") is None


def test_a_broken_domain_raises_instead_of_vanishing(
        toy: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_domain.py").write_text("import no_such_dependency\n")
    monkeypatch.setitem(domains.DOMAINS, "broken", "broken_domain:DOMAIN")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        domains.load_domain("broken")


def test_domain_config_table_is_validated_like_the_core(toy: None, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[toy]\nlimit = 7\ngates = ["g1"]\n')
    assert cfg.section("toy").limit == 7 and cfg.section("toy").gates == ["g1"]
    assert _cfg(tmp_path).section("toy").limit == 5  # absent table: defaults
    assert Config().section("toy").limit == 5
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path, "[toy]\n\nlimit = 700\n")
    assert "toy.limit" in str(e.value) and e.value.line == 8 and "out of range" in str(e.value)
    with pytest.raises(ConfigError, match="did you mean 'limit'"):
        _cfg(tmp_path, "[toy]\nlimt = 7\n")
    with pytest.raises(ConfigError, match="did you mean 'toy'"):
        _cfg(tmp_path, "[toyy]\nlimit = 7\n")
    new = apply_overrides(cfg, {"toy.limit": 9})
    assert get_key(new, "toy.limit") == 9 and cfg.section("toy").limit == 7
    with pytest.raises(ConfigError, match="toy.limit"):
        apply_overrides(cfg, {"toy.limit": 0})
    ref = reference_markdown()
    assert "| `toy.limit` | int [1..100] | `5` | Readings above this raise an alert. |" in ref


def test_assemble_wires_a_domain_end_to_end(toy: None, tmp_path: Path) -> None:
    data = tmp_path / "r.toy"
    data.write_text("1,3 2,9 3,4 4,11")
    mem = MemorySink()
    agent = assemble(_cfg(tmp_path), mode="replay", sinks=[mem],
                     inputs={"toy": [data]}, domains=["toy"])
    assert [s.name for s in agent.sources] == ["toy:r.toy"]
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    assert agent.sources[0].closed
    assert [r["kind"] for r in mem.reports] == ["toy.high", "toy.high", "agent.status"]
    st = mem.reports[-1]["evidence"][0]["features"]
    assert st["commands.dry_run"] == 2 and st["toy.outcomes"] == 2
    assert st["actuator.gate.commands"] == 2 and st["source.toy:r.toy.read"] == 1


def test_assemble_builds_telecom_sources_per_mode(tmp_path: Path) -> None:
    ev = tmp_path / "e.jsonl"
    ev.write_bytes(orjson.dumps({"ts": 1.0, "type": "attach", "imsi": "460001234567890"}))
    cfg = _cfg(tmp_path)
    agent = assemble(cfg, mode="replay", sinks=[], inputs={"events": [ev], "pcap": []})
    assert [s.name for s in agent.sources] == ["events:e.jsonl"]
    names = [s.name for s in agent.pipeline.stages]
    # the domains' stages in order, then the model watch (drift, model counters)
    assert names[0] == "capture.decoder" and names[-4:] == ["watchlist", "response", "warning", "models"]
    agent.close()
    with pytest.raises(ValueError, match="mode"):
        assemble(cfg, mode="live", sinks=[])
    with pytest.raises(KeyError, match="unknown domain"):
        assemble(cfg, mode="replay", sinks=[], domains=["nope"])


def test_the_site_key_is_loaded_once_and_shared(tmp_path: Path) -> None:
    cfg = parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp_path}/d"\n')  # generated key
    agent = assemble(cfg, mode="replay", sinks=[])
    wl = [s for s in agent.pipeline.stages if s.name.startswith("watchlist")][0]
    assert wl._pseudo is agent.pseudonymiser  # type: ignore[attr-defined]
    assert agent.reporter._pseudo is agent.pseudonymiser
    agent.close()


def test_unused_domains_cost_no_imports(tmp_path: Path) -> None:
    """The registry is lazy all the way down: parsing a config and assembling a
    telecom replay imports no depot, X-ray, bridge, serial-port or signing code (a
    replay's start-up time and memory stay those of the domain in use)."""
    import subprocess

    code = (
        "import sys\n"
        "from edge.assembly import assemble\n"
        "from edge.config import parse_config\n"
        "from edge.report.sinks import MemorySink\n"
        f"cfg = parse_config('[agent]\\ndata_dir = \"{tmp_path}\"\\n')\n"
        "a = assemble(cfg, mode='replay', sinks=[MemorySink()], inputs={'events': []})\n"
        "a.close()\n"
        "heavy = ('PIL', 'construct', 'serial', 'cryptography', 'cobs', 'firmware_bridge.messages',\n"
        "         'firmware_bridge.client', 'drivers.xray.core', 'edge.courier.assembly',\n"
        "         'drivers.transport.serialport')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
