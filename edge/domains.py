"""Domains as plug-ins: which parts of the world the agent can watch and act on.

A *domain* (telecom; the courier depot; the firmware bridge) is a package that
declares, in one :class:`Domain` value, how to build its sources, stages and
actuators from an :class:`AssemblyContext`, and optionally its own config table
(``config_key`` + a dataclass, validated like the core's with line numbers and
"did you mean"). :data:`DOMAINS` maps each name to ``"module:ATTRIBUTE"`` and is
imported lazily, as python-can does for its interfaces: a domain whose package is
not installed is skipped, exactly like a missing optional module; an import error
*inside* a present package is raised.

Adding a domain is one line here plus the package; nothing in the pipeline, the
assembly or edge/config.py changes (see README "Adding a domain").
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.actuators import Actuator
    from edge.config import Config
    from edge.detection import ModelInfo
    from edge.downlink.watchlist import WatchlistStore
    from edge.pipeline import Source, Stage
    from edge.report.pseudonym import Pseudonymiser

log = logging.getLogger(__name__)

#: name -> "module:attribute" of its :class:`Domain`. Order is assembly order (stages
#: of earlier domains see a record type first).
DOMAINS: dict[str, str] = {
    "telecom": "edge.telecom.domain:DOMAIN",
    "depot": "edge.courier.domain:DOMAIN",
    "bridge": "firmware_bridge.domain:DOMAIN",
}

MODES = ("replay", "run", "demo")


@dataclass
class AssemblyContext:
    """What a domain's builders get: the config and the shared parts, built once."""

    cfg: Config
    mode: str  # "replay" | "run" | "demo"
    pseudonymiser: Pseudonymiser  # the site key, loaded once
    watchlist: WatchlistStore | None
    inputs: dict[str, list[Path]] = field(default_factory=dict)
    """CLI overrides by kind: {"events": [...], "pcap": [...], "depot": [...]}."""
    models: list[ModelInfo] = field(default_factory=list)
    """Builders append every model they load (name, version, sha256): the birth
    message lists them."""
    model_store: Any = None
    """The on-device model store (:class:`models.store.ModelStore`): builders open
    their model through it (installed update or packaged), which makes it updatable
    over the downlink, watched for drift and listed in the birth message."""
    settings: Any = None
    """The live-settings hub (:class:`edge.settings.Settings`): components subscribe to
    the config keys they read, and get changes on the pipeline thread."""

    @property
    def live(self) -> bool:
        """True in ``run``: open devices and sockets; False: replay recorded files."""
        return self.mode == "run"

    def files(self, kind: str, configured: Iterable[Path] = ()) -> list[Path]:
        """Configured files of one kind followed by the CLI's (``inputs[kind]``)."""
        return list(configured) + list(self.inputs.get(kind, ()))


def _none(ctx: AssemblyContext) -> list[Any]:
    return []


@dataclass(frozen=True)
class Domain:
    name: str
    build_sources: Callable[[AssemblyContext], Sequence[Source]]
    """Replay or live sources according to ``ctx.mode``."""
    build_stages: Callable[[AssemblyContext], Sequence[Stage]]
    build_actuators: Callable[[AssemblyContext], Sequence[Actuator]] = _none
    config_key: str | None = None
    """Top-level TOML table of the domain's own settings, e.g. "depot"."""
    config_type: type | None = None
    """Its dataclass (documented fields, as in edge/config.py); read it with
    ``cfg.section(config_key)``; an absent table gives the defaults."""
    runtime_keys: frozenset[str] = frozenset()
    """Dotted keys of the domain's settings the downlink may change at runtime; the
    component reading each must subscribe to it (edge.settings)."""
    input_kinds: tuple[str, ...] = ()
    """Kinds of ``AssemblyContext.inputs`` it reads (for CLI help and checks)."""
    has_live_inputs: Callable[[Config], bool] | None = None
    """True when the config gives the domain something to read in ``run`` (preflight:
    an agent with no live input at all is refused)."""
    preflight: Callable[[Config, bool], Sequence[Any]] | None = None
    """Start-up checks of the domain's own devices (``edge.ops.preflight.Problem``
    list; ``probe`` True may open them briefly)."""


_loaded: dict[str, Domain | None] = {}


def _missing(exc: ModuleNotFoundError, module: str) -> bool:
    """True when the module itself (or a package above it) is absent, as opposed to a
    present domain failing on an import of its own."""
    name = exc.name or ""
    return name == module or module.startswith(name + ".")


def load_domain(name: str) -> Domain | None:
    """The registered domain ``name``, or None when its package is not installed."""
    if name in _loaded:
        return _loaded[name]
    target = DOMAINS[name]
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if not _missing(exc, mod_name):
            raise
        log.debug("domain %s not installed (%s)", name, mod_name)
        _loaded[name] = None
        return None
    dom = getattr(mod, attr)
    if not isinstance(dom, Domain) or dom.name != name:
        raise TypeError(f"{target} is not the Domain named {name!r}")
    _loaded[name] = dom
    return dom


def available_domains(names: Iterable[str] | None = None) -> list[Domain]:
    """The installed domains, in registry order (``names`` restricts them)."""
    wanted = list(DOMAINS) if names is None else list(names)
    unknown = [n for n in wanted if n not in DOMAINS]
    if unknown:
        raise KeyError(f"unknown domain(s) {', '.join(unknown)} (known: {', '.join(DOMAINS)})")
    return [d for n in DOMAINS if n in wanted and (d := load_domain(n)) is not None]


def config_sections() -> dict[str, type]:
    """Top-level config tables declared by the installed domains: key -> dataclass."""
    out: dict[str, type] = {}
    for d in available_domains():
        if d.config_key is not None and d.config_type is not None:
            out[d.config_key] = d.config_type
    return out


def runtime_keys() -> frozenset[str]:
    """Runtime-changeable keys the installed domains declare."""
    keys: set[str] = set()
    for d in available_domains():
        keys |= d.runtime_keys
    return frozenset(keys)


def reset_cache() -> None:
    """Forget which domains were imported (tests that change :data:`DOMAINS`)."""
    _loaded.clear()
