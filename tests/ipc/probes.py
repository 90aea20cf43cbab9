"""The IPC access rule seen from another process: tests/ipc/client_probe.py run as a given user."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from lab.daemon import REPO


def probe(name: str, uid: int, gid: int, groups: tuple[int, ...] = ()) -> dict[str, Any]:
    """Run tests/ipc/client_probe.py as uid:gid; the errno of each request (0: success)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ipc.client_probe",
            name,
            str(uid),
            str(gid),
            ",".join(map(str, groups)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert (result["uid"], result["gid"]) == (uid, gid)
    return result


READS_OK = {
    "get_fs_version": 0,
    "get_cluster_info": 0,
    "get_guest_list": 0,
    "get_config": 0,
    "get_cluster_log": 0,
    "get_rrd_dump": 0,
    "get_guest_config_property": 0,
    "get_guest_config_properties": 0,
    "verify_token": 0,
}
ROOT_OK = {
    "uid": 0,
    "gid": 0,
    "connect": 0,
    **READS_OK,
    "get_config_private": 0,
    "get_config_node_private": 0,
    "set_status": 0,
    "get_status": 0,
    "log_cluster_msg": 0,
    "get_health": 0,
}
"""What root may do: everything."""
