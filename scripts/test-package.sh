#!/usr/bin/env bash
# Build the Debian package, install it with apt-get and test the installed daemon: /usr/bin/pmxcfs
# on the system python3 with Debian's python3-* packages, through the real FUSE, IPC and 3-node
# corosync tests; then remove it and check the original's /usr/bin/pmxcfs is back.
# Run as root on a Debian 12 test machine (not on a Proxmox node: it installs and removes
# pmxcfs-py). Needs the test virtualenv (bash scripts/install.sh --dev) for pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if dpkg-query -W -f='${Status}' pve-cluster 2>/dev/null | grep -q "install ok installed"; then
  echo "pve-cluster is installed here: not testing the package on a Proxmox node" >&2
  exit 1
fi
if [ -e /usr/bin/pmxcfs ] || [ -e /usr/bin/pmxcfs.distrib ]; then
  echo "/usr/bin/pmxcfs or /usr/bin/pmxcfs.distrib already exists: remove it (or pmxcfs-py) first" >&2
  exit 1
fi

bash scripts/build-deb.sh
deb=$(ls dist/pmxcfs-py_*_all.deb)

# A stand-in for the original's binary, where pve-cluster puts it: the diversion must move it
# aside on install and back on removal.
cleanup() {
  if dpkg-query -W pmxcfs-py >/dev/null 2>&1; then  # installed, or removed with its state kept
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq pmxcfs-py >/dev/null || true
  fi
  if [ "$(cat /usr/bin/pmxcfs 2>/dev/null)" = "$(printf '#!/bin/sh\necho original pmxcfs')" ]; then
    rm -f /usr/bin/pmxcfs
  fi
}
trap cleanup EXIT
printf '#!/bin/sh\necho original pmxcfs\n' > /usr/bin/pmxcfs
chmod 755 /usr/bin/pmxcfs

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb"

# The unit tests on the system python3 with Debian's python3-* packages (pulled in by the
# package): a virtualenv that sees them and holds only the test tools from requirements-dev.txt.
/usr/bin/python3 -m venv --system-site-packages .venv-debian
.venv-debian/bin/python -m pip install -q --disable-pip-version-check \
  "$(grep '^pytest==' requirements-dev.txt)" pytest-timeout "$(grep '^hypothesis==' requirements-dev.txt)"
.venv-debian/bin/python - <<'PY'
import pykka, peewee, ujson
assert pykka.__version__.startswith("3.1"), pykka.__version__  # Debian 12's, not the pinned ones
print("unit tests on Debian's pykka", pykka.__version__, "peewee", peewee.__version__, "ujson", ujson.__version__)
PY
.venv-debian/bin/python -m pytest tests --ignore tests/integration --ignore tests/cluster --ignore tests/chaos

# The real tests, the daemon being /usr/bin/pmxcfs (lab/daemon.py: PMXCFS_DAEMON);
# test_handler_failures.py needs this tree's main.py behind a fault injector, so it is left out.
PMXCFS_PACKAGE=installed PMXCFS_DAEMON=/usr/bin/pmxcfs .venv/bin/python -m pytest \
  tests/package \
  tests/integration --ignore tests/integration/test_handler_failures.py \
  tests/ipc/test_daemon.py \
  tests/cluster/test_pmxcfs_cluster.py \
  tests/cluster/test_replication.py

DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq pmxcfs-py
PMXCFS_PACKAGE=removed .venv/bin/python -m pytest tests/package
