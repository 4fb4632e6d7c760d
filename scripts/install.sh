#!/usr/bin/env bash
# Installs the agent as a service on Debian 12+ (amd64 or arm64), from this checkout:
#   sudo scripts/install.sh [--config examples/basestation.toml] [--extras depot]
# - Debian packages it needs (python3-venv, mosquitto-clients for checks, nftables);
# - a dedicated system user 'afe' (in group dialout for serial scanners);
# - a virtualenv in /opt/antifraud-edge/venv with this project (no dev or training extras);
# - /etc/afe/agent.toml from the example (kept if it exists), checked with check-config;
# - the systemd unit deploy/systemd/edge-agent.service, enabled (not started: start it
#   after setting the site, the broker and the key file).
# Safe to run again: an upgrade re-installs the package and keeps config and state.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=/opt/antifraud-edge
CONFIG_SRC=examples/basestation.toml
EXTRAS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG_SRC=$2; shift 2 ;;
    --extras) EXTRAS="[$2]"; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "install: run as root (sudo)" >&2; exit 1; }
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$arch" in
  amd64|x86_64|arm64|aarch64) ;;
  *) echo "install: untested architecture $arch (amd64 and arm64 are supported)" >&2 ;;
esac

need=()
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null \
  || need+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
command -v nft >/dev/null 2>&1 || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi

id afe >/dev/null 2>&1 || useradd --system --home-dir /var/lib/afe --no-create-home \
  --shell /usr/sbin/nologin --groups dialout afe
install -d -m 0755 "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install -q --upgrade pip
"$PREFIX/venv/bin/python" -m pip install -q --upgrade ".${EXTRAS}"
install -m 0644 README.md "$PREFIX/README.md"

install -d -m 0750 -o root -g afe /etc/afe
install -d -m 0750 -o afe -g afe /var/lib/afe /var/log/afe
if [ ! -f /etc/afe/agent.toml ]; then
  install -m 0640 -o root -g afe "$CONFIG_SRC" /etc/afe/agent.toml
  echo "install: wrote /etc/afe/agent.toml from $CONFIG_SRC: set site, broker and key file"
fi
"$PREFIX/venv/bin/edge-agent" check-config --no-probe /etc/afe/agent.toml

unit=deploy/systemd/edge-agent.service
sed "s#/opt/antifraud-edge#$PREFIX#g" "$unit" > /etc/systemd/system/edge-agent.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable edge-agent.service
  echo "install: enabled edge-agent.service; start it with: systemctl start edge-agent"
else
  echo "install: systemd is not running here; unit written to /etc/systemd/system"
fi
