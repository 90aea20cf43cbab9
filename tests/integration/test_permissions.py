"""Who may do what, through the real mount and the real IPC service of one running daemon.

The rule (the original's): everything belongs to root:www-data. A process whose primary group
is www-data may read the ordinary files and the status files, but change nothing (EACCES from
the mount, EPERM over IPC) and read nothing private (priv/, nodes/<node>/priv/: EACCES from the
mount, EPERM over IPC). Any other non-root process may list the public folders, read no file
(config files are 0640, status files 0440), change nothing, and is refused at the IPC connect.

The mount's checks are the kernel's (default_permissions on the modes the daemon reports); the
IPC checks are the daemon's own, made on the credentials libqb reports at connect. Each case
runs in a child process with the given uid and gid and no supplementary groups; the daemon runs
as root.
"""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipc.client import PveIpcClient
from lab.daemon import Daemon, is_mounted
from tests.expected import STATUS_NAMES
from tests.integration.helpers import read_status, run_as
from tests.integration.mounts import require_fuse
from tests.ipc.client_probe import TOKEN
from tests.ipc.probes import READS_OK, ROOT_OK, probe
from tests.require import require

pytestmark = pytest.mark.fuse

NOBODY = "nobody"
WWW_DATA = "www-data"

CONTENT = {
    "user.cfg": b"user:root@pam:1:0:::\n",
    "datacenter.cfg": b"keyboard: en-us\n",
    "nodes/node1/qemu-server/100.conf": b"name: vm100\nmemory: 512\n",
    "priv/shadow.cfg": b"secret\n",
    "priv/token.cfg": f"{TOKEN}\n".encode(),
    "nodes/node1/priv/key": b"node secret\n",
    "olddir/keep": b"keep\n",
}
"""What the daemon holds before any test; no test may change it."""


def ids(name: str) -> tuple[int, int]:
    """(uid, primary gid) of a system account; skip (fail under CI) if it is missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        require([f"user {name}"], "permission tests")
        raise
    return entry.pw_uid, entry.pw_gid


def www_gid() -> int:
    try:
        return grp.getgrnam(WWW_DATA).gr_gid
    except KeyError:
        require([f"group {WWW_DATA} (getent group {WWW_DATA})"], "permission tests")
        raise


def run_ops(uid: int, gid: int, ops: list[tuple[str, Path, str]]) -> list[tuple[str, Any]]:
    """File operations in a child process as uid:gid without supplementary groups."""
    return run_as(uid, gid, ops)


@pytest.fixture(scope="module")
def pve() -> Iterator[Daemon]:
    """A local-mode daemon with its own IPC name, its mount reachable by other users.

    pytest's tmp_path lies below a 0700 folder, so this one lives in a 0755 folder in /tmp.
    """
    require_fuse()
    www_gid()
    base = Path(tempfile.mkdtemp(prefix="pmxcfs-perm-", dir="/tmp"))
    base.chmod(0o755)
    name = f"pve2-perm-{uuid.uuid4().hex[:12]}"
    daemon = Daemon(base / "d", extra_args=("--ipc-name", name))
    daemon.ipc_name = name  # type: ignore[attr-defined]
    (base / "d").mkdir(mode=0o755)
    try:
        daemon.start()
        for rel, data in CONTENT.items():
            daemon.path(rel).parent.mkdir(parents=True, exist_ok=True)
            daemon.path(rel).write_bytes(data)
        daemon.path("emptydir").mkdir()
        yield daemon
    finally:
        daemon.cleanup()
        if not is_mounted(daemon.mount):
            shutil.rmtree(base, ignore_errors=True)


def unchanged(pve: Daemon) -> None:
    """Nothing the other users tried reached the tree."""
    for rel, data in CONTENT.items():
        assert pve.path(rel).read_bytes() == data, rel
    names = sorted(os.listdir(pve.mount))
    assert not {"new.cfg", "newdir", "renamed.cfg", "link"} & set(names), names
    assert pve.path("emptydir").is_dir()
    assert pve.path(".debug").read_text() == "0\n"


def status_state(pve: Daemon) -> tuple[Any, ...]:
    """The status a write over IPC would change: kv versions and the cluster log."""
    version = json.loads(read_status(pve, ".version"))
    log = json.loads(read_status(pve, ".clusterlog"))
    return version.get("kvstore"), [entry["msg"] for entry in log["data"]]


# ----- the mount ---------------------------------------------------------------------------------


def write_attempts(pve: Daemon) -> list[tuple[str, Path, str]]:
    p = pve.path
    return [
        ("write", p("user.cfg"), ""),
        ("append", p("datacenter.cfg"), ""),
        ("truncate", p("user.cfg"), ""),
        ("write", p(".debug"), ""),
        ("create", p("new.cfg"), ""),
        ("create", p("nodes/node1/qemu-server/101.conf"), ""),
        ("mkdir", p("newdir"), ""),
        ("unlink", p("user.cfg"), ""),
        ("rmdir", p("emptydir"), ""),
        ("rename", p("user.cfg"), str(p("renamed.cfg"))),
        ("rename", p("olddir"), str(p("newdir"))),
        ("symlink", p("link"), "user.cfg"),
    ]


def private_attempts(pve: Daemon) -> list[tuple[str, Path, str]]:
    p = pve.path
    return [
        ("size", p("priv/shadow.cfg"), ""),
        ("size", p("priv/token.cfg"), ""),
        ("listdir", p("priv"), ""),
        ("stat", p("priv/shadow.cfg"), ""),
        ("size", p("nodes/node1/priv/key"), ""),
        ("listdir", p("nodes/node1/priv"), ""),
    ]


@pytest.mark.parametrize("user", [WWW_DATA, NOBODY], ids=["uid-www-data", "uid-nobody"])
def test_www_data_group_reads_through_the_mount(pve: Daemon, user: str) -> None:
    uid, _ = ids(user)
    gid = www_gid()
    p = pve.path
    reads = [
        ("size", p("user.cfg"), ""),
        ("size", p("datacenter.cfg"), ""),
        ("size", p("qemu-server/100.conf"), ""),
        ("readlink", p("local"), ""),
        ("listdir", p("nodes/node1/qemu-server"), ""),
        *[("size", p(name), "") for name in STATUS_NAMES],
    ]
    results = run_ops(uid, gid, reads)
    assert results[0] == ("ok", len(CONTENT["user.cfg"]))
    assert results[1] == ("ok", len(CONTENT["datacenter.cfg"]))
    assert results[2] == ("ok", len(CONTENT["nodes/node1/qemu-server/100.conf"]))
    assert results[3] == ("ok", "nodes/node1")
    assert results[4] == ("ok", ["100.conf"])
    assert [kind for kind, _ in results[5:]] == ["ok"] * len(STATUS_NAMES), results[5:]


@pytest.mark.parametrize("user", [WWW_DATA, NOBODY], ids=["uid-www-data", "uid-nobody"])
def test_www_data_group_changes_nothing_and_reads_nothing_private(pve: Daemon, user: str) -> None:
    uid, _ = ids(user)
    attempts = write_attempts(pve) + private_attempts(pve)
    results = run_ops(uid, www_gid(), attempts)
    refused = {(op, str(path)): result for (op, path, _), result in zip(attempts, results, strict=True)}
    assert refused == {key: ("errno", errno.EACCES) for key in refused}
    unchanged(pve)


def test_others_list_public_folders_and_nothing_else(pve: Daemon) -> None:
    uid, gid = ids(NOBODY)
    assert gid != www_gid()
    p = pve.path
    allowed = [
        ("listdir", p("nodes/node1/qemu-server"), ""),
        ("stat", p("user.cfg"), ""),
        ("readlink", p("local"), ""),
    ]
    denied = [
        ("size", p("user.cfg"), ""),
        ("size", p("datacenter.cfg"), ""),
        ("size", p("qemu-server/100.conf"), ""),
        *[("size", p(name), "") for name in STATUS_NAMES],
        *private_attempts(pve),
        *write_attempts(pve),
    ]
    results = run_ops(uid, gid, allowed + denied)
    assert results[0] == ("ok", ["100.conf"])
    assert results[1] == ("ok", 0o100640)
    assert results[2] == ("ok", "nodes/node1")
    refused = {(op, str(path)): result for (op, path, _), result in zip(denied, results[3:], strict=True)}
    assert refused == {key: ("errno", errno.EACCES) for key in refused}
    unchanged(pve)


# ----- IPC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [WWW_DATA, NOBODY], ids=["uid-www-data", "uid-nobody"])
def test_www_data_group_reads_over_ipc_and_gets_eperm_for_the_rest(pve: Daemon, user: str) -> None:
    uid, _ = ids(user)
    gid = www_gid()
    before = status_state(pve)
    result = probe(pve.ipc_name, uid, gid)  # type: ignore[attr-defined]
    assert result == {
        "uid": uid,
        "gid": gid,
        "connect": 0,
        **READS_OK,
        "get_config_private": errno.EPERM,
        "get_config_node_private": errno.EPERM,
        "set_status": errno.EPERM,
        "get_status": errno.ENOENT,  # the refused SET_STATUS stored nothing
        "log_cluster_msg": errno.EPERM,
        "get_health": errno.EPERM,  # ours: root only
    }
    assert status_state(pve) == before
    unchanged(pve)


def test_others_are_refused_at_the_ipc_connect(pve: Daemon) -> None:
    uid, gid = ids(NOBODY)
    before = status_state(pve)
    assert probe(pve.ipc_name, uid, gid) == {"uid": uid, "gid": gid, "connect": errno.EACCES}  # type: ignore[attr-defined]
    # only the primary group counts: www-data as a supplementary group opens no IPC door
    assert probe(pve.ipc_name, uid, gid, (www_gid(),))["connect"] == errno.EACCES  # type: ignore[attr-defined]
    pve.wait_for_line(lambda line: f"connection from bad user {uid}! - rejected" in line)
    assert status_state(pve) == before
    unchanged(pve)


def test_root_may_do_all_of_it(pve: Daemon) -> None:
    """The counter-check: the same probes as root succeed, so the refusals above are the rule's."""
    result = probe(pve.ipc_name, 0, 0)  # type: ignore[attr-defined]
    assert result == ROOT_OK
    assert pve.path("priv/shadow.cfg").read_bytes() == CONTENT["priv/shadow.cfg"]
    with PveIpcClient(pve.ipc_name) as admin:  # type: ignore[attr-defined]
        admin.set_status("kv/probe", None)  # leave the status as the other tests expect it
