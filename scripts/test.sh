#!/usr/bin/env bash
# Install everything and run the whole test suite: lint, type check, unit and FUSE tests.
# Run as root (the FUSE tests mount for real). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
exec .venv/bin/python -m pytest "$@"
