#!/usr/bin/env bash
# Install everything and run the whole test suite: lint, type check, unit and FUSE tests, then
# the Debian package built, installed and tested as /usr/bin/pmxcfs (scripts/test-package.sh).
# Run as root (the FUSE tests mount for real). Extra arguments go to pytest and leave out the
# package stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
  bash scripts/test-package.sh
fi
