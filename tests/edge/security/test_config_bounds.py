"""Every numeric config key is finite and inside a documented two-sided range, in the
TOML file and over the downlink (issue 9: nan/inf/1e300/10^12 were accepted)."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import pytest

from edge.config import Config, Range, apply_overrides, parse_config
from edge.downlink.runtime import RUNTIME_KEYS, RuntimeConfig
from edge.errors import ConfigError


def _numeric_keys(cls: type = Config, prefix: str = "") -> list[tuple[str, type, Range | None]]:
    out: list[tuple[str, type, Range | None]] = []
    hints = get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp: Any = hints[f.name]
        if get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in get_args(tp) if a is not type(None))
        marks: list[Any] = []
        if get_origin(tp) is Annotated:
            tp, *marks = get_args(tp)
        if dataclasses.is_dataclass(tp):
            out += _numeric_keys(tp, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        elif tp in (int, float):
            rng = next((m for m in marks if isinstance(m, Range)), None)
            out.append((prefix + f.name, tp, rng))
    return out


NUMERIC = _numeric_keys()


def _toml(key: str, literal: str) -> str:
    *section, leaf = key.split(".")
    return (f"[{'.'.join(section)}]\n" if section else "") + f"{leaf} = {literal}\n"


def test_every_numeric_key_has_a_two_sided_range() -> None:
    assert len(NUMERIC) > 30
    loose = [k for k, _, r in NUMERIC if r is None or r.lo is None or r.hi is None]
    assert loose == [], f"give these a Range(lo, hi) in edge/config.py: {loose}"


@pytest.mark.parametrize("key, tp, rng", NUMERIC)
def test_toml_refuses_non_finite_and_huge(key: str, tp: type, rng: Range | None) -> None:
    bad = ["nan", "inf", "-inf", "1e300"]
    if tp is int:
        bad += [str(2**63 - 1), str(int(rng.hi) + 1) if rng and rng.hi is not None else "-1"]
    for literal in bad:
        with pytest.raises(ConfigError) as ei:
            parse_config(_toml(key, literal))
        assert key in str(ei.value), (literal, str(ei.value))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300, 10**12])
def test_downlink_refuses_non_finite_and_huge(value: float, tmp_path: Path) -> None:
    rt = RuntimeConfig(Config(), tmp_path)
    for key in sorted(RUNTIME_KEYS):
        if key == "agent.log_level":
            continue
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            rt.apply({key: value})
    assert rt.version == 0 and not (tmp_path / "runtime-config.json").exists()


def test_nan_in_overrides_names_the_key() -> None:
    with pytest.raises(ConfigError, match="finite"):
        apply_overrides(Config(), {"mqtt.backoff_cap_s": float("nan")})
