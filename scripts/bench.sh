#!/usr/bin/env bash
# Run every benchmark and write bench/results/report.md and latency.png (as root, Debian 12).
# Usage: scripts/bench.sh [--quick] [--no-cluster] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt
exec .venv/bin/python bench/report.py "$@"
