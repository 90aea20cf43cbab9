"""Run a set of IPC requests as another user and print their errnos as JSON (0: success).

    python -m tests.ipc.client_probe NAME UID GID [GROUP,...]

Started as root by the tests. Python 3.11 lives below /root here, which other users can't
read, so the child loads everything it needs first and only then drops to UID:GID (and the
supplementary groups given), right before it connects: the server sees those credentials.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from bindings.libqb import lib
from ipc.client import IpcError, PveIpcClient

TOKEN = "root@pam!test 11111111-2222-3333-4444-555555555555"


def verify(client: PveIpcClient) -> None:
    if not client.verify_token(TOKEN):
        raise IpcError(12, -2)  # report a mismatch as ENOENT, as the daemon answered it


CALLS: dict[str, Callable[[PveIpcClient], object]] = {
    "get_fs_version": lambda c: c.get_fs_version(),
    "get_cluster_info": lambda c: c.get_cluster_info(),
    "get_guest_list": lambda c: c.get_guest_list(),
    "get_config": lambda c: c.get_config("datacenter.cfg"),
    "get_config_private": lambda c: c.get_config("priv/token.cfg"),
    "get_config_node_private": lambda c: c.get_config("nodes/node1/priv/key"),
    "set_status": lambda c: c.set_status("kv/probe", b"probe\0"),
    "get_status": lambda c: c.get_status("kv/probe"),
    "log_cluster_msg": lambda c: c.log_cluster_msg(5, "probe", "probe", "from the probe"),
    "get_cluster_log": lambda c: c.get_cluster_log(),
    "get_rrd_dump": lambda c: c.get_rrd_dump(),
    "get_guest_config_property": lambda c: c.get_guest_config_property(0, "name"),
    "get_guest_config_properties": lambda c: c.get_guest_config_properties(100, ["name", "memory"]),
    "verify_token": verify,
    "get_health": lambda c: c.get_health(),
}


def main() -> int:
    name, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    groups = [int(g) for g in sys.argv[4].split(",") if g] if len(sys.argv) > 4 else []
    lib()  # load libqb while its files are still readable
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    result: dict[str, int] = {"uid": os.getuid(), "gid": os.getgid()}
    try:
        client = PveIpcClient(name, timeout_ms=10_000)
    except OSError as exc:
        result["connect"] = exc.errno or -1
        print(json.dumps(result))
        return 0
    result["connect"] = 0
    with client:
        for label, call in CALLS.items():
            try:
                call(client)
                result[label] = 0
            except IpcError as exc:
                result[label] = exc.errno or -1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
