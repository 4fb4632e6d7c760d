#!/usr/bin/env bash
# The main job on embedded defaults: simulated site -> agent -> MQTT -> subscriber.
# Extra arguments go to 'edge-agent demo' (e.g. --broker 127.0.0.1:1883 --hours 12).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh
exec .venv/bin/edge-agent demo "$@"
