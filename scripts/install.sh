#!/usr/bin/env bash
# Install what pmxcfs needs on Debian 12 (as root): system packages and a virtualenv in .venv.
# Usage: scripts/install.sh [--dev]   (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

# librrd-dev, pkg-config, gcc and python3-dev build the rrdtool binding (RRD files, as the original)
packages=(fuse libfuse2 python3 python3-venv python3-dev gcc pkg-config librrd-dev)
if [ "${1:-}" = "--dev" ]; then
  # the tests also run real corosync clusters in network namespaces and read databases with sqlite3
  # and an rrdcached of their own for the RRD path through the cache daemon;
  # systemd-analyze (package systemd) checks the unit file
  packages+=(corosync iproute2 util-linux sqlite3 rrdcached systemd)
fi
bash scripts/apt-install.sh "${packages[@]}"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
fi
