#!/usr/bin/env bash
# Run every benchmark and write bench/results/report.md and latency.png (as root, Debian 12).
# Usage: scripts/bench.sh [--quick] [--no-cluster] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
# libqb-dev and libcpg-dev: bench/ipc_compiled.py and bench/cpg_floor.py build C clients with gcc
bash scripts/apt-install.sh libqb-dev libcpg-dev
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt
exec .venv/bin/python bench/report.py "$@"
