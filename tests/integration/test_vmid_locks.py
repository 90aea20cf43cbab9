"""VMID uniqueness and guest migration (reference section 4) and locks under priv/lock (1.9)."""

from __future__ import annotations

import errno
import os
import time

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import expect_errno, vmlist

pytestmark = pytest.mark.fuse

CREATE = os.O_CREAT | os.O_WRONLY


def guest_dirs(pve: Daemon) -> None:
    for node in ("node1", "node2"):
        for kind in ("qemu-server", "lxc"):
            os.makedirs(pve.path(f"nodes/{node}/{kind}"))


def owners(pve: Daemon) -> dict[str, tuple[str, str]]:
    return {vmid: (vm["node"], vm["type"]) for vmid, vm in vmlist(pve)["ids"].items()}


# ----- VMID rules ------------------------------------------------------------------------


def test_a_vmid_used_elsewhere_can_not_be_created(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("memory: 512\n")
    for rel in ("nodes/node2/qemu-server/100.conf", "nodes/node1/lxc/100.conf", "nodes/node2/lxc/100.conf"):
        expect_errno(errno.EEXIST, os.open, pve.path(rel), CREATE)
        with pytest.raises(FileExistsError):
            pve.path(rel).write_text("x\n")
        assert not pve.path(rel).exists()
    assert owners(pve) == {"100": ("node1", "qemu")}
    assert pve.path("nodes/node1/qemu-server/100.conf").read_text() == "memory: 512\n"


def test_the_owner_may_rewrite_its_config(pve: Daemon) -> None:
    guest_dirs(pve)
    conf = pve.path("nodes/node1/qemu-server/100.conf")
    conf.write_text("memory: 512\n")
    conf.write_text("memory: 1024\n")
    assert conf.read_text() == "memory: 1024\n"
    # the atomic-write pattern of the Perl tools: tmp file, then rename onto the config
    tmp = pve.path("nodes/node1/qemu-server/100.conf.tmp.4242")
    tmp.write_text("memory: 2048\n")
    os.rename(tmp, conf)
    assert conf.read_text() == "memory: 2048\n"
    assert owners(pve) == {"100": ("node1", "qemu")}


def test_rename_of_a_tmp_file_onto_a_foreign_vmid_is_eexist(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("memory: 512\n")
    tmp = pve.path("nodes/node2/qemu-server/100.conf.tmp.4242")
    tmp.write_text("memory: 1024\n")  # the tmp name is not a guest config: allowed
    expect_errno(errno.EEXIST, os.rename, tmp, pve.path("nodes/node2/qemu-server/100.conf"))
    expect_errno(errno.EEXIST, os.rename, tmp, pve.path("nodes/node1/lxc/100.conf"))
    assert tmp.read_text() == "memory: 1024\n"
    assert not pve.path("nodes/node2/qemu-server/100.conf").exists()
    assert owners(pve) == {"100": ("node1", "qemu")}


def test_rename_of_another_guest_onto_a_used_vmid_is_eexist(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("a\n")
    pve.path("nodes/node1/qemu-server/101.conf").write_text("b\n")
    expect_errno(
        errno.EEXIST,
        os.rename,
        pve.path("nodes/node1/qemu-server/101.conf"),
        pve.path("nodes/node2/qemu-server/100.conf"),
    )
    assert owners(pve) == {"100": ("node1", "qemu"), "101": ("node1", "qemu")}


def test_migration_by_rename_moves_the_guest(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("memory: 512\n")
    before = vmlist(pve)
    os.rename(pve.path("nodes/node1/qemu-server/100.conf"), pve.path("nodes/node2/qemu-server/100.conf"))
    after = vmlist(pve, until=lambda d: d["ids"].get("100", {}).get("node") == "node2")
    assert after["ids"]["100"]["type"] == "qemu"
    assert after["version"] > before["version"]
    assert after["ids"]["100"]["version"] > before["ids"]["100"]["version"]
    assert pve.path("nodes/node2/qemu-server/100.conf").read_text() == "memory: 512\n"
    assert not pve.path("nodes/node1/qemu-server/100.conf").exists()
    # node1 no longer owns 100
    expect_errno(errno.EEXIST, os.open, pve.path("nodes/node1/qemu-server/100.conf"), CREATE)


def test_a_guest_may_change_its_type_by_rename(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    os.rename(pve.path("nodes/node1/qemu-server/100.conf"), pve.path("nodes/node1/lxc/100.conf"))
    assert owners(pve) == {"100": ("node1", "lxc")}


def test_rename_to_another_vmid_or_away_from_the_config_name(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    os.rename(pve.path("nodes/node1/qemu-server/100.conf"), pve.path("nodes/node1/qemu-server/105.conf"))
    assert owners(pve) == {"105": ("node1", "qemu")}
    os.rename(pve.path("nodes/node1/qemu-server/105.conf"), pve.path("nodes/node1/qemu-server/105.conf.bak"))
    assert owners(pve) == {}
    pve.path("nodes/node2/lxc/105.conf").write_text("y\n")  # 105 is free again
    assert owners(pve) == {"105": ("node2", "lxc")}


def test_delete_frees_the_vmid(pve: Daemon) -> None:
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    os.unlink(pve.path("nodes/node1/qemu-server/100.conf"))
    pve.path("nodes/node2/lxc/100.conf").write_text("y\n")
    assert owners(pve) == {"100": ("node2", "lxc")}


def test_non_config_names_and_mkdir_are_not_checked(pve: Daemon) -> None:
    guest_dirs(pve)
    os.makedirs(pve.path("nodes/bad.name/qemu-server"))
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    pve.path("nodes/node2/qemu-server/100.conf.tmp").write_text("x\n")
    pve.path("nodes/node2/qemu-server/0100.conf").write_text("x\n")
    pve.path("nodes/bad.name/qemu-server/100.conf").write_text("x\n")
    os.mkdir(pve.path("nodes/node2/lxc/100.conf"))  # mkdir has no VMID check
    assert owners(pve) == {"100": ("node1", "qemu")}


def test_vmids_survive_a_restart(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    guest_dirs(pve)
    pve.path("nodes/node1/qemu-server/100.conf").write_text("x\n")
    pve.path("nodes/node2/lxc/101.conf").write_text("x\n")
    assert pve.stop() == 0
    pve.start()
    assert owners(pve) == {"100": ("node1", "qemu"), "101": ("node2", "lxc")}
    expect_errno(errno.EEXIST, os.open, pve.path("nodes/node2/qemu-server/100.conf"), CREATE)


# ----- locks -----------------------------------------------------------------------------


def lock_dir(pve: Daemon) -> None:
    os.makedirs(pve.path("priv/lock"))


def test_a_lock_is_taken_once(pve: Daemon) -> None:
    expect_errno(errno.ENOENT, os.mkdir, pve.path("priv/lock/file-user_cfg"))  # nobody makes priv/lock
    lock_dir(pve)
    os.mkdir(pve.path("priv/lock/file-user_cfg"))
    expect_errno(errno.EEXIST, os.mkdir, pve.path("priv/lock/file-user_cfg"))
    os.mkdir(pve.path("priv/lock/storage-local"))  # another lock is independent


def test_unlock_request_on_a_fresh_lock_is_eacces(pve: Daemon) -> None:
    lock_dir(pve)
    lock = pve.path("priv/lock/test")
    os.mkdir(lock)
    mtime = os.stat(lock).st_mtime
    expect_errno(errno.EACCES, os.utime, lock, (0, 0))
    assert lock.is_dir()
    assert os.stat(lock).st_mtime == mtime
    expect_errno(errno.EACCES, os.utime, lock, (mtime - 10, mtime - 10))  # older: refused too


def test_refresh_with_a_newer_mtime_works(pve: Daemon) -> None:
    lock_dir(pve)
    lock = pve.path("priv/lock/test")
    os.mkdir(lock)
    newer = int(time.time()) + 30
    os.utime(lock, (newer, newer))
    assert os.stat(lock).st_mtime == newer
    os.utime(lock, (newer, newer))  # the same mtime is not older: allowed
    expect_errno(errno.EACCES, os.utime, lock, (newer - 1, newer - 1))
    assert os.stat(lock).st_mtime == newer


def test_a_lock_can_not_be_renamed(pve: Daemon) -> None:
    lock_dir(pve)
    os.mkdir(pve.path("priv/lock/test"))
    expect_errno(errno.EACCES, os.rename, pve.path("priv/lock/test"), pve.path("priv/lock/other"))
    expect_errno(errno.EACCES, os.rename, pve.path("priv/lock/test"), pve.path("priv/moved"))
    os.mkdir(pve.path("priv/lock/test/sub"))
    # the lock check comes before the emptiness check, and covers any depth
    expect_errno(errno.EACCES, os.rename, pve.path("priv/lock/test"), pve.path("priv/lock/other"))
    expect_errno(errno.EACCES, os.rename, pve.path("priv/lock/test/sub"), pve.path("priv/lock/test/s2"))
    assert pve.path("priv/lock/test/sub").is_dir()
    assert not pve.path("priv/lock/other").exists()


def test_files_below_priv_lock_are_not_locks(pve: Daemon) -> None:
    lock_dir(pve)
    f = pve.path("priv/lock/file")
    f.write_text("x")
    os.utime(f, (0, 0))
    assert os.stat(f).st_mtime == 0
    os.rename(f, pve.path("priv/lock/file2"))
    assert pve.path("priv/lock/file2").read_text() == "x"


def test_directories_deeper_below_a_lock_are_not_locks(pve: Daemon) -> None:
    """Only a directory directly in priv/lock has the mtime rule; an unlock request on a
    deeper one (not expired: its age starts now) becomes a plain mtime set."""
    lock_dir(pve)
    os.makedirs(pve.path("priv/lock/test/deeper"))
    os.utime(pve.path("priv/lock/test/deeper"), (0, 0))
    assert os.stat(pve.path("priv/lock/test/deeper")).st_mtime == 0
    expect_errno(errno.EACCES, os.utime, pve.path("priv/lock/test"), (0, 0))


def test_rmdir_releases_a_lock(pve: Daemon) -> None:
    lock_dir(pve)
    lock = pve.path("priv/lock/test")
    os.mkdir(lock)
    os.rmdir(lock)
    assert not lock.exists()
    os.mkdir(lock)
    expect_errno(errno.EACCES, os.utime, lock, (0, 0))  # a fresh lock again
    assert lock.is_dir()


def test_a_held_lock_survives_a_restart_with_a_fresh_age(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    lock_dir(pve)
    os.mkdir(pve.path("priv/lock/test"))
    assert pve.stop() == 0
    pve.start()
    expect_errno(errno.EEXIST, os.mkdir, pve.path("priv/lock/test"))
    expect_errno(errno.EACCES, os.utime, pve.path("priv/lock/test"), (0, 0))
    assert pve.path("priv/lock/test").is_dir()
