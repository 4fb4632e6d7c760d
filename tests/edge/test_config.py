"""Config validation: every problem names its key (and line) and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli.agent import main as agent_main
from edge.config import Config, load_config, parse_config
from edge.config_doc import describe, reference_markdown
from edge.errors import ConfigError


def test_empty_config_gives_defaults() -> None:
    cfg = parse_config("")
    assert cfg == Config(agent=cfg.agent)  # agent.id defaults to the host name
    assert cfg.mqtt.port == 1883 and cfg.mqtt.protocol == "5"
    assert cfg.detectors.callplane.enabled


def test_unknown_key_names_key_line_and_suggestion() -> None:
    text = '[agent]\nsite = "s1"\n\n[mqtt]\nenabled = true\nhots = "x"\n'
    with pytest.raises(ConfigError) as ei:
        parse_config(text, source="site.toml")
    e = ei.value
    assert e.key == "mqtt.hots" and e.line == 6
    assert "did you mean 'host'" in str(e) and "site.toml:6" in str(e)


def test_unknown_section() -> None:
    with pytest.raises(ConfigError, match="key 'mqtts'") as ei:
        parse_config("[mqtts]\nport = 1\n")
    assert ei.value.line == 1


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[mqtt]\nport = "1883"\n', "mqtt.port", "expected an integer"),
        ("[mqtt]\nport = 70000\n", "mqtt.port", "out of range"),
        ("[mqtt]\nenabled = 1\n", "mqtt.enabled", "expected true or false"),
        ('[mqtt]\nprotocol = "4"\n', "mqtt.protocol", "must be one of"),
        ('[inputs.events]\nfiles = "a.jsonl"\n', "inputs.events.files", "expected a list"),
        ("[agent]\nstatus_interval_s = 0.5\n", "agent.status_interval_s", "out of range"),
        ('[agent]\nsite = "a/b"\n', "agent.site", "site must be"),
        ('[privacy]\nkey = "short"\n', "privacy.key", "at least 16"),
        ('[mqtt]\ntopic_prefix = "a/#"\n', "mqtt.topic_prefix", "wildcards"),
        ("agent = 3\n", "agent", "expected a table"),
        ('[detectors.ipplane]\ntrunk_numbers = ["86571-888"]\n',
         "detectors.ipplane.trunk_numbers", "3-15 digits"),
    ],
)
def test_wrong_values_name_the_key(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config(text)
    assert ei.value.key == key
    assert fragment in str(ei.value)


def test_missing_file_is_reported_with_key(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text('[inputs.events]\nfiles = ["nope.jsonl"]\n')
    with pytest.raises(ConfigError) as ei:
        load_config(cfg)
    assert ei.value.key == "inputs.events.files[0]" and ei.value.line == 2
    assert "nope.jsonl" in str(ei.value)


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    (tmp_path / "ev.jsonl").write_text("")
    cfg = tmp_path / "a.toml"
    cfg.write_text('[inputs.events]\nfiles = ["ev.jsonl"]\n')
    assert load_config(cfg).inputs.events.files == [tmp_path / "ev.jsonl"]


def test_invalid_toml_names_line() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config("[agent]\nsite = \n")
    assert ei.value.line == 2


def test_check_config_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[agent]\nsite = "depot-7"\n')
    assert agent_main(["check-config", "--mode", "replay", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent]\nsitee = 1\n")
    assert agent_main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "agent.sitee" in err and "bad.toml:2" in err
    assert agent_main(["check-config", str(tmp_path / "missing.toml")]) == 2


def test_describe_lists_every_leaf_key() -> None:
    keys = {row[0] for row in describe()}
    assert {"agent.site", "mqtt.tls.ca_file", "inputs.events.files"} <= keys
    table = reference_markdown()
    assert all(f"`{k}`" in table for k in keys)


def test_readme_config_reference_is_current() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    assert reference_markdown() in readme, "run: python -m edge.config_doc --update README.md"


def test_default_data_dir_is_beside_the_config_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "etc" / "agent.toml"
    conf.parent.mkdir()
    conf.write_text('[agent]\nsite = "bs-1"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # started from another directory: same state dir
    assert load_config(conf).agent.data_dir == tmp_path / "etc" / "edge-data"
    conf.write_text('[agent]\ndata_dir = "state"\n')
    assert load_config(conf).agent.data_dir == tmp_path / "etc" / "state"


def test_default_data_dir_without_a_config_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFE_DATA_DIR", str(tmp_path / "d"))
    assert load_config(None).agent.data_dir == tmp_path / "d"
    monkeypatch.delenv("AFE_DATA_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert load_config(None).agent.data_dir == tmp_path / "xdg" / "antifraud-edge"
