"""The compiled (mypyc) build of the call plane against its pure-Python sources
(edge/native.py): same report bytes on a simulated feed, and the loader only takes a
build made from the current sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge import native

REPO = Path(__file__).resolve().parents[4]
CONFIG = """\
[agent]
site = "native-site"
id = "native-agent"
status_interval_s = 1800
[privacy]
key = "native-test-key-0001"
[detectors.ipplane]
enabled = false
"""


def _agent(env_native: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, native.ENV: env_native}
    return subprocess.run([sys.executable, "-m", "edge.cli.agent", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_compiled_and_pure_give_identical_reports(tmp_path: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the compiled build cannot exist here")
    if not (native.build_dir() / "BUILT").is_file():
        pytest.skip(f"no compiled build for these sources ({native.status()}); "
                    "run scripts/bootstrap.sh or scripts/build_native.py")
    from simulators.telecom.events import EventSimConfig, write_events

    ev = tmp_path / "feed.jsonl"
    # SIM-boxes of every evasion level and hard negatives (training profile: no
    # held-out data is looked at here, only whether both builds agree on it).
    write_events(EventSimConfig(seed=913, subscribers=3000, hours=8, simbox_devices=4,
                                ports_per_device=8), ev)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(CONFIG)
    outs = {}
    for mode in ("1", "0"):
        version = _agent(mode, "--version").stdout
        assert ("compiled" in version) == (mode == "1"), version
        out = tmp_path / f"reports-{mode}.jsonl"
        proc = _agent(mode, "replay", "--config", str(cfg), "--events", str(ev),
                      "--out", str(out), "--quiet")
        assert proc.returncode == 0, proc.stderr
        outs[mode] = out.read_bytes()
    assert outs["1"] == outs["0"]
    assert b'"simbox.sim"' in outs["0"] and b'"simbox.device"' in outs["0"]


def test_a_build_of_other_sources_is_never_imported(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A build directory for another digest (older sources) is ignored: the package
    # path stays the sources' own and the status says why.
    monkeypatch.setenv("AFE_NATIVE_DIR", str(tmp_path))
    monkeypatch.delenv(native.ENV, raising=False)
    stale = tmp_path / ("0" * 20)
    (stale / "edge/telecom/callplane").mkdir(parents=True)
    (stale / "BUILT").write_text("stale\n")
    path: list[str] = ["src"]
    native.attach(path)
    assert path == ["src"] and "no compiled build for these sources" in native.status()
    # The current digest's build is taken (first on the path) ...
    cur = tmp_path / native.digest()
    (cur / "edge/telecom/callplane").mkdir(parents=True)
    (cur / "BUILT").write_text("ok\n")
    native.attach(path)
    assert path == [str(cur / "edge/telecom/callplane"), "src"]
    # ... unless switched off.
    monkeypatch.setenv(native.ENV, "0")
    path = ["src"]
    native.attach(path)
    assert path == ["src"] and "AFE_NATIVE=0" in native.status()


def test_the_digest_covers_the_compiled_sources(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for p in native.sources():
        dst = tmp_path / p.relative_to(native.ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(p.read_bytes())
    monkeypatch.setattr(native, "ROOT", tmp_path)
    before = native.digest()
    assert before == native.digest()
    state = tmp_path / "edge/telecom/callplane/state.py"
    state.write_bytes(state.read_bytes() + b"\n# an edit\n")
    assert native.digest() != before
