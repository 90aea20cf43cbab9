#!/usr/bin/env bash
# Run every benchmark and write bench/results/report.md and latency.png (as root, Debian 12).
# Usage: scripts/bench.sh [--quick] [--no-cluster] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
# libqb-dev: bench/ipc_compiled.py builds a C IPC client with gcc against it
if ! dpkg-query -W -f='${Status}' libqb-dev 2>/dev/null | grep -q "install ok installed"; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libqb-dev >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt
exec .venv/bin/python bench/report.py "$@"
