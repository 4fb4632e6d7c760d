"""The optional compiled (mypyc) build of the call plane's hot modules.

The pure-Python sources are the reference; a compiled build is the same code turned
into C by mypyc (``scripts/build_native.py``, run by ``scripts/bootstrap.sh`` when a C
compiler is present) and must give byte-identical reports
(tests/edge/telecom/callplane/test_native.py). It lives outside the source tree, in
``<venv>/afe-native/<digest>/``, where the digest covers the sources of the compiled
modules and of the project modules they import, and the interpreter's cache tag: an
edited source has another digest, so a stale build is never imported (the pure
modules run until the build is redone).

:func:`attach` is called by ``edge/telecom/callplane/__init__.py`` before any of its
submodules is imported: when the build for the current digest exists (and
``AFE_NATIVE`` is not ``0``), its directory goes first on the package's ``__path__``,
so ``import edge.telecom.callplane.state`` finds the extension module before the
``.py``. :func:`status` says which is running (``edge-agent --version``, the agent's
start-up log, the ``afe_native`` metric).

The same build holds the optional C extensions of :data:`EXTENSIONS` (each built only
when its headers and libraries are present; the Python code it speeds up runs
otherwise), loaded by :func:`extension`.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "edge.telecom.callplane"
COMPILED = ("state", "features", "cohort", "detector")
"""The modules of :data:`PACKAGE` that are compiled (one mypyc group)."""
GROUP = f"{PACKAGE}.native"  # mypyc's shared library: ``native__mypyc`` in the package
# Project modules the compiled ones import: mypyc reads their types (and may inline
# their constants), so they enter the digest too.
IMPORTED = ("edge/records.py", "edge/config.py", "edge/detection.py",
            "edge/telecom/callplane/rules.py", "edge/telecom/callplane/tacs.py")
# C extensions built beside them, each on its own: module -> (source, libraries)
EXTENSIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    # keyed pseudonyms (HMAC-SHA256 over OpenSSL's SHA-256): edge/report/pseudonym.py
    "edge.report._keyed_sha256": ("edge/report/_keyed_sha256.c", ("crypto",)),
}
ROOT = Path(__file__).resolve().parent.parent  # the directory holding ``edge/``
ENV = "AFE_NATIVE"  # "0": always the pure modules

_status: dict[str, str | bool] = {"active": False, "reason": "not attached yet"}


def sources() -> list[Path]:
    pkg = ROOT / PACKAGE.replace(".", "/")
    return [pkg / f"{m}.py" for m in COMPILED] + [ROOT / p for p in IMPORTED] + \
        [ROOT / src for src, _ in EXTENSIONS.values()]


def digest() -> str:
    """What a build must have been made from to be imported: the sources above and
    the interpreter (its cache tag, e.g. ``cpython-311``)."""
    h = hashlib.sha256(sys.implementation.cache_tag.encode())
    for p in sources():
        h.update(p.relative_to(ROOT).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def build_root() -> Path:
    """Where builds are kept: ``afe-native`` in the virtualenv (``sys.prefix``)."""
    return Path(os.environ.get("AFE_NATIVE_DIR") or Path(sys.prefix) / "afe-native")


def build_dir(dig: str | None = None) -> Path:
    return build_root() / (dig or digest())


def attach(package_path: list[str]) -> None:
    """Put the compiled build first on the call-plane package's ``__path__`` when it
    exists for the current sources (see the module docstring)."""
    if os.environ.get(ENV, "") == "0":
        _set(False, f"pure Python ({ENV}=0)")
        return
    try:
        dig = digest()
    except OSError as exc:  # sources not readable (an unusual install): stay pure
        _set(False, f"pure Python (sources not readable: {exc})")
        return
    pkg_dir = build_dir(dig) / PACKAGE.replace(".", "/")
    if not (build_dir(dig) / "BUILT").is_file():
        _set(False, f"pure Python (no compiled build for these sources in {build_root()}; "
                    "scripts/bootstrap.sh makes one when a C compiler is present)")
        return
    package_path.insert(0, str(pkg_dir))
    _set(True, f"compiled (mypyc, build {dig})")


def extension(name: str) -> ModuleType | None:
    """The C extension ``name`` (one of :data:`EXTENSIONS`) of the build for the current
    sources, or None: not built (no compiler or headers), another build, ``AFE_NATIVE=0``,
    or it does not load. Its caller keeps a Python fallback."""
    if os.environ.get(ENV, "") == "0":
        return None
    try:
        root = build_dir()
    except OSError:
        return None
    if not (root / "BUILT").is_file():
        return None
    stem = name.replace(".", "/")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = root / f"{stem}{suffix}"
        spec = importlib.util.spec_from_file_location(name, path) if path.is_file() else None
        if spec is not None and spec.loader is not None:
            try:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except ImportError:  # built for another interpreter or library: fallback
                return None
            return module
    return None


def _set(active: bool, reason: str) -> None:
    _status["active"] = active
    _status["reason"] = reason


def confirm() -> None:
    """After the package's modules are imported: whether the extension modules are
    the ones that were loaded (a build for another interpreter is skipped by the
    import system, which then takes the ``.py``)."""
    if not _status["active"]:
        return
    loaded = [sys.modules.get(f"{PACKAGE}.{m}") for m in COMPILED]
    pure = [m for m, mod in zip(COMPILED, loaded, strict=True)
            if mod is not None and str(getattr(mod, "__file__", "")).endswith(".py")]
    if pure:
        _set(False, f"pure Python (the compiled build did not load for: {', '.join(pure)})")


def active() -> bool:
    """Whether the compiled modules are the ones running."""
    confirm()
    return bool(_status["active"])


def status() -> str:
    """One line: which build of the call plane runs, and why."""
    confirm()
    return f"call plane: {_status['reason']}"
