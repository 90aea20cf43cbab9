"""``python -m tools COMMAND ...``: the operator tools (see tools/cli.py)."""

from __future__ import annotations

import sys

from tools.cli import main

sys.exit(main())
