"""Paths and helpers of the package tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

BIN = Path("/usr/bin/pmxcfs")
DIVERTED = Path("/usr/bin/pmxcfs.distrib")
STAND_IN = b"#!/bin/sh\necho original pmxcfs\n"
"""What scripts/test-package.sh puts at /usr/bin/pmxcfs before installing (the original's place)."""
LIBDIR = Path("/usr/lib/pmxcfs-py")
SYSTEM_PYTHON = "/usr/bin/python3"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def diversion_owner() -> str:
    return run("dpkg-divert", "--listpackage", str(BIN)).stdout.strip()
