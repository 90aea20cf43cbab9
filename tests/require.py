"""One rule for tests that need a piece of the machine: skip on a developer box, fail in CI."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest


def require(missing: Sequence[str], what: str) -> None:
    """Skip with the missing pieces named; under CI=true a missing piece fails instead."""
    if not missing:
        return
    reason = f"{what} need " + ", ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
