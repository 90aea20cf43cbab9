"""Building the benchmarks' compiled baselines (C clients)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def build(source: Path, out_dir: Path, library: str) -> Path:
    """Compile ``source`` with gcc -O2 against ``library`` (pkg-config name) into ``out_dir``."""
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", library], check=True, capture_output=True, text=True
    ).stdout.split()
    binary = out_dir / source.stem
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(source), *flags], check=True)
    return binary
