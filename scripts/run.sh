#!/usr/bin/env bash
# Install everything and run pmxcfs in the foreground (local mode unless the database holds
# corosync.conf), mounted on /etc/pve with its database in /var/lib/pve-cluster/config.db.
# Extra arguments go to pmxcfs, e.g. scripts/run.sh -d --mount /tmp/pve --db /tmp/pve.db
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python main.py -f "$@"
