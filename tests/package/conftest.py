"""The installed Debian package: collected only from scripts/test-package.sh.

That script builds the package, puts a stand-in for the original's /usr/bin/pmxcfs in place,
installs the package and runs test_installed.py with PMXCFS_PACKAGE=installed, removes it and
runs test_removed.py with PMXCFS_PACKAGE=removed. Anywhere else neither is collected: they
install nothing themselves and have nothing to look at.
"""

from __future__ import annotations

import os

PACKAGE_STATE = os.environ.get("PMXCFS_PACKAGE", "")

collect_ignore = [
    name for name in ("test_installed.py", "test_removed.py") if name != f"test_{PACKAGE_STATE}.py"
]
