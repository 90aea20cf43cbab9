#!/usr/bin/env bash
# Install everything and run pmxcfs in the foreground, mounted on /etc/pve with its database in
# /var/lib/pve-cluster/config.db, in local mode (-l).
# With --cluster (anywhere among the arguments; it is not passed on) the daemon follows the
# service's rule instead: a new database imports /etc/corosync/corosync.conf, and a database
# holding corosync.conf runs in cluster mode (read-only until a running corosync reports quorum).
# Other arguments go to pmxcfs, e.g. scripts/run.sh -d --mount /tmp/pve --db /tmp/pve.db

# Sets MAIN_ARGS to main.py's arguments for "$@": -f, -l unless --cluster is among them, the rest.
main_args() {
    local arg local_mode=-l
    local -a rest=()
    for arg in "$@"; do
        if [[ $arg == --cluster ]]; then
            local_mode=
        else
            rest+=("$arg")
        fi
    done
    MAIN_ARGS=(-f ${local_mode:+"$local_mode"} ${rest[@]+"${rest[@]}"})
}

run() {
    set -euo pipefail
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    main_args "$@"
    bash scripts/install.sh
    exec .venv/bin/python main.py "${MAIN_ARGS[@]}"
}

# Sourced (tests), only the functions are defined.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    run "$@"
fi
