"""Build the compiled (mypyc) call-plane modules for this checkout (see edge/native.py).

    .venv/bin/python scripts/build_native.py          # build unless already built
    .venv/bin/python scripts/build_native.py --force  # build again

The build goes to ``<venv>/afe-native/<digest>/`` (the digest of the sources, so an
edit makes a new one and the old build is never imported again; older builds are
removed). Needs mypy (a dev dependency: mypyc is part of it) and a C compiler; exits
0 with a message and no build when either is missing, so bootstrap goes on with the
pure modules. The C extensions of ``native.EXTENSIONS`` go into the same build, each
skipped with a message when it does not build (e.g. no OpenSSL headers: the keyed
hashes stay in Python). About 20 CPU-seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import native  # noqa: E402


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc.split()[0]):
            return cc
    return None


def _build_extension(name: str, src: str, libs: tuple[str, ...], work: Path) -> None:
    """One optional C extension into ``work / "lib"``; a failure is reported, not raised
    (the Python code it speeds up runs instead)."""
    from setuptools import Distribution, Extension

    dist = Distribution({"name": "afe-native-ext",
                         "ext_modules": [Extension(name, [src], libraries=list(libs))]})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(work / "lib")  # type: ignore[attr-defined]
    cmd.build_temp = str(work / "tmp-ext")  # type: ignore[attr-defined]
    try:
        dist.run_command("build_ext")
    except Exception as exc:  # noqa: BLE001 - compile or link errors of an optional part
        print(f"build_native: {name} not built ({exc}): its Python fallback runs",
              file=sys.stderr)


def build(force: bool = False) -> int:
    dig = native.digest()
    out = native.build_dir(dig)
    if (out / "BUILT").is_file() and not force:
        print(f"build_native: up to date ({out})")
        return 0
    if _compiler() is None:
        print("build_native: no C compiler (cc, gcc, clang): the pure-Python call plane "
              "runs", file=sys.stderr)
        return 0
    try:
        from mypyc.build import mypycify
        from setuptools import Distribution
    except ImportError as exc:
        print(f"build_native: mypyc not installed ({exc}): the pure-Python call plane runs",
              file=sys.stderr)
        return 0
    t0 = time.time()
    root = native.build_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="afe-native-", dir=root) as tmp:
        work = Path(tmp)
        pkg = native.PACKAGE.replace(".", "/")
        paths = [f"{pkg}/{m}.py" for m in native.COMPILED]
        cwd = os.getcwd()
        os.chdir(ROOT)  # mypyc names the modules after their paths
        try:
            exts = mypycify(paths, opt_level="3", debug_level="0",
                            target_dir=str(work / "c"), group_name=native.GROUP)
            dist = Distribution({"name": "afe-native", "ext_modules": exts})
            cmd = dist.get_command_obj("build_ext")
            cmd.build_lib = str(work / "lib")  # type: ignore[attr-defined]
            cmd.build_temp = str(work / "tmp")  # type: ignore[attr-defined]
            dist.run_command("build_ext")
            for name, (src, libs) in native.EXTENSIONS.items():
                _build_extension(name, src, libs, work)
        finally:
            os.chdir(cwd)
        if native.digest() != dig:
            print("build_native: the sources changed during the build; run it again",
                  file=sys.stderr)
            return 1
        stage = root / f".{dig}.new"
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(work / "lib", stage)
        (stage / "BUILT").write_text(f"{dig}\n" + "\n".join(paths) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        stage.rename(out)
    for old in root.iterdir():  # builds of earlier sources: never imported again
        if old.is_dir() and old.name != dig and not old.name.startswith("afe-native-"):
            shutil.rmtree(old, ignore_errors=True)
    print(f"build_native: built {len(paths)} modules in {time.time() - t0:.0f} s -> {out}",
          file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="build even when up to date")
    return build(ap.parse_args().force)


if __name__ == "__main__":
    sys.exit(main())
