#!/usr/bin/env bash
# The whole test suite. Installs what it needs first (venv, mosquitto, tshark, sipp, sngrep).
# Extra arguments go to pytest (e.g. ./test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")"
AFE_WITH_TEST_TOOLS=1 bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
