#!/usr/bin/env bash
# Installs what the demo and the tests need on a Debian machine with Python 3.11+:
# system packages (only those missing), a virtualenv in .venv, and this project
# with its dev extras. Safe to run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
if [ "${AFE_WITH_TEST_TOOLS:-0}" = 1 ]; then
  command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
  command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
  command -v sngrep >/dev/null 2>&1 || need_apt+=(sngrep)
  command -v socat >/dev/null 2>&1 || need_apt+=(socat)
  command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
  # the fleet collector's tests start throwaway PostgreSQL clusters (initdb, pg_ctl)
  # and drive the desk views in Debian's headless Chromium through its chromedriver
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
fi

PY=""
for cand in python3.13 python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "" >/dev/null 2>&1 &&
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    PY=$(command -v "$cand"); break
  fi
done
if [ -z "$PY" ]; then need_apt+=(python3 python3-venv); fi
if [ -n "$PY" ] && [ ! -x .venv/bin/python ] && ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bootstrap: installing Debian packages: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  [ -n "$PY" ] || PY=$(command -v python3)
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi
stamp=".venv/.afe-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing the project and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.afe-installed-*
  touch "$stamp"
fi

# The compiled (mypyc) build of the call plane's hot modules: optional (the pure-Python
# modules are the reference and run without it), made when a C compiler is present,
# kept in .venv/afe-native/ by the digest of its sources (so it is only rebuilt when
# they change: ~20 CPU-seconds). AFE_NATIVE=0 skips it. See edge/native.py.
if [ "${AFE_NATIVE:-1}" != 0 ]; then
  if command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; then
    .venv/bin/python scripts/build_native.py >/dev/null ||
      echo "bootstrap: the compiled call-plane build failed; the pure-Python modules run" >&2
  else
    echo "bootstrap: no C compiler: the call plane runs its pure-Python modules" >&2
  fi
fi
