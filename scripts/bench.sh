#!/usr/bin/env bash
# Run every benchmark and write bench/results/report.md and latency.png (as root, Debian 12).
# Usage: scripts/bench.sh [--quick] [--no-cluster] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
# libqb-dev and libcpg-dev: bench/ipc_compiled.py and bench/cpg_floor.py build C clients with gcc
missing=()
for pkg in libqb-dev libcpg-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt
exec .venv/bin/python bench/report.py "$@"
