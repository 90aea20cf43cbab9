"""fusepy, under whichever name the system installs it.

PyPI's fusepy is the module ``fuse``; Debian's python3-fusepy installs it as ``fusepy``, because
there ``fuse`` is python3-fuse, a different binding with another API. Every part of the daemon
imports fusepy from here, so both work and the wrong ``fuse`` is never taken for it.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _load() -> ModuleType:
    for name in ("fusepy", "fuse"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "FUSE") and hasattr(module, "Operations"):
            return module
    raise ImportError(
        "fusepy is not installed (Debian: apt install python3-fusepy; PyPI: pip install fusepy)",
        name="fusepy",
    )


_fusepy = _load()
FUSE = _fusepy.FUSE
FuseOSError = _fusepy.FuseOSError
Operations = _fusepy.Operations
