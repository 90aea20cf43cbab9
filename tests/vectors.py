"""Where the golden vectors captured from a C pmxcfs live: ../shared/vectors beside the repo."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO.parent / "shared" / "vectors"
"""Read-only: tests copy what they change."""
