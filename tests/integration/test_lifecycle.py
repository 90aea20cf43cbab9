"""Start, stop, restart, a second instance, C-written and corrupt databases, daemonizing
(reference 2.1-2.5, 3.5, 5.1-5.6)."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.daemon import REPO, STOP_TIMEOUT_S, Daemon, is_mounted
from tests.integration.helpers import (
    CORRUPTIONS,
    LINK_NAMES,
    STATUS_NAMES,
    VECTORS,
    WWW_DATA,
    copy_vector_db,
    execute_sql,
    expect_errno,
    pid_alive,
    read_status,
    sha256,
    snapshot_tree,
    vector_tree,
    vmlist,
    wait_pid_exit,
)
from tests.integration.mounts import kill_leftover

pytestmark = pytest.mark.fuse

MakeDaemon = Callable[..., Daemon]

T = 1795608486
"""An mtime from the C-written database."""


def populate(pve: Daemon) -> None:
    """A tree with every kind of entry the tests read back."""
    os.makedirs(pve.path("nodes/node1/qemu-server"))
    os.makedirs(pve.path("nodes/node1/lxc"))
    os.makedirs(pve.path("nodes/node1/priv"))
    os.makedirs(pve.path("priv/lock"))
    os.mkdir(pve.path("priv/lock/held"))
    os.mkdir(pve.path("empty"))
    pve.path("datacenter.cfg").write_text("keyboard: en-us\n")
    pve.path("user.cfg").write_text("user:root@pam:1:0:::\n")
    pve.path("empty.cfg").write_bytes(b"")
    pve.path("binary").write_bytes(bytes(range(256)) * 4)
    pve.path("large").write_bytes(random.Random(7).randbytes(300_000))
    pve.path("priv/token.cfg").write_text("secret\n")
    pve.path("nodes/node1/priv/key").write_text("key\n")
    pve.path("nodes/node1/qemu-server/100.conf").write_text("memory: 512\n")
    pve.path("nodes/node1/lxc/101.conf").write_text("hostname: ct\n")
    os.utime(pve.path("datacenter.cfg"), (1_600_000_000, 1_600_000_000))
    os.utime(pve.path("empty"), (1_500_000_000, 1_500_000_000))


def guests(pve: Daemon) -> dict[str, tuple[str, str]]:
    return {vmid: (vm["node"], vm["type"]) for vmid, vm in vmlist(pve)["ids"].items()}


# ----- stop and restart ------------------------------------------------------------------


def test_restart_keeps_everything(make_daemon: MakeDaemon) -> None:
    pve = make_daemon()
    pve.start()
    populate(pve)
    before = snapshot_tree(pve.mount)
    statfs_before = os.statvfs(pve.mount)
    assert pve.stop(signal.SIGTERM) == 0
    assert not is_mounted(pve.mount)
    pve.start()
    assert snapshot_tree(pve.mount) == before
    assert os.statvfs(pve.mount) == statfs_before
    assert guests(pve) == {"100": ("node1", "qemu"), "101": ("node1", "lxc")}
    assert vmlist(pve)["version"] == 1  # the startup rebuild
    expect_errno(errno.EEXIST, os.mkdir, pve.path("priv/lock/held"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_sigint_and_sighup_also_stop_cleanly(make_daemon: MakeDaemon, sig: int) -> None:
    pve = make_daemon().start()
    pve.path("f").write_text("x")
    assert pve.stop(sig) == 0
    assert not is_mounted(pve.mount)
    pve.start()
    assert pve.path("f").read_text() == "x"


def test_pidfile_and_restart_flag(make_daemon: MakeDaemon) -> None:
    pve = make_daemon()
    pidfile = pve.base / "pmxcfs.pid"
    flag = pve.base / "run" / "cfs-restart-flag"
    pve.start()
    assert pidfile.read_text() == f"{pve.proc.pid}\n"
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
    assert not flag.exists()
    assert pve.stop() == 0
    assert not pidfile.exists()
    st = flag.stat()
    assert (st.st_size, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0, 0o440, 0, WWW_DATA)
    pve.start()
    assert not flag.exists()  # removed once the daemon is up again


def test_a_killed_daemon_leaves_a_stale_mount_that_the_next_start_replaces(make_daemon: MakeDaemon) -> None:
    pve = make_daemon()
    pve.start()
    populate(pve)
    before = snapshot_tree(pve.mount)
    assert pve.stop(signal.SIGKILL) == -signal.SIGKILL
    expect_errno(errno.ENOTCONN, os.listdir, pve.mount)
    pve.start()
    # every answered change was committed before it was answered
    assert snapshot_tree(pve.mount) == before


def test_a_second_identical_instance_is_refused_and_leaves_the_first_alone(make_daemon: MakeDaemon) -> None:
    """Same database, mount, run dir and pid file: the instance lock comes before any of
    them is touched (5.2 step 7)."""
    first = make_daemon("same").start()
    first.path("f").write_text("first\n")
    pidfile = first.base / "pmxcfs.pid"
    second = make_daemon("same")
    second.start(wait=False)
    assert second.wait_exit() == 255
    assert any("unable to acquire pmxcfs lock" in line for line in second.lines), second.lines
    assert first.proc.poll() is None
    assert is_mounted(first.mount)
    assert pidfile.read_text() == f"{first.proc.pid}\n"
    assert first.path("f").read_text() == "first\n"
    first.path("g").write_text("still writable\n")
    assert first.stop() == 0
    assert not is_mounted(first.mount)


def test_files_and_folders_the_daemon_makes(make_daemon: MakeDaemon) -> None:
    pve = make_daemon()
    pve.start()
    assert stat.S_IMODE(pve.db.stat().st_mode) == 0o600
    assert stat.S_IMODE((pve.db.parent / ".pmxcfs.lockfile").stat().st_mode) == 0o600
    assert stat.S_IMODE(pve.db.parent.stat().st_mode) == 0o750
    rundir = (pve.base / "run").stat()
    assert (stat.S_IMODE(rundir.st_mode), rundir.st_uid, rundir.st_gid) == (0o750, 0, WWW_DATA)
    assert pve.stop() == 0
    assert stat.S_IMODE(pve.mount.stat().st_mode) == 0o750  # the mount point, unmounted


def test_a_second_instance_on_the_same_database_is_refused(make_daemon: MakeDaemon) -> None:
    first = make_daemon("first").start()
    first.path("f").write_text("first\n")
    second = make_daemon("second")
    second.db = first.db
    second.start(wait=False)
    code = second.wait_exit()
    assert code != 0
    assert any("lock" in line.lower() for line in second.lines), second.lines
    assert not is_mounted(second.mount)
    assert first.proc.poll() is None
    assert first.path("f").read_text() == "first\n"
    first.path("g").write_text("still writable\n")
    assert first.stop() == 0


# ----- the C-written database ------------------------------------------------------------


def start_on_vector_db(make_daemon: MakeDaemon, *args: str) -> Daemon:
    pve = make_daemon(extra_args=args)
    copy_vector_db(pve.db)
    return pve.start()


def test_c_database_shows_every_entry_with_its_content_and_mtime(
    make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    pve = start_on_vector_db(make_daemon, "-l")
    expected = vector_tree(tmp_path)
    seen = snapshot_tree(pve.mount)
    assert set(seen) == set(expected)
    for rel, (kind, mtime, data) in expected.items():
        got_kind, _, size, mtime_ns, content = seen[rel]
        assert got_kind == kind, rel
        assert mtime_ns == mtime * 1_000_000_000, rel
        if kind == "file":
            assert content == (data or b""), rel
            assert size == len(data or b""), rel
    assert pve.path("corosync.conf").read_bytes() == (VECTORS / "corosync.conf").read_bytes()


def test_c_database_vmlist_has_its_six_guests(make_daemon: MakeDaemon) -> None:
    pve = start_on_vector_db(make_daemon, "-l")
    assert guests(pve) == {
        "100": ("node1", "qemu"),
        "101": ("node2", "lxc"),
        "102": ("node1", "qemu"),
        "200": ("node2", "qemu"),
        "201": ("node2", "qemu"),
        "300": ("node3", "qemu"),
    }
    # one full rebuild at startup
    assert vmlist(pve)["version"] == 1


def ls_entries(text: str, mount: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """`ls -laR --time-style=+%s` -> folder -> name -> (mode, nlink, user, group, size, mtime, rest)."""
    result: dict[str, dict[str, tuple[str, ...]]] = {}
    folder = ""
    for line in text.splitlines():
        if line.endswith(":") and line.startswith(mount):
            folder = line[len(mount) : -1].lstrip("/")
            result[folder] = {}
        elif line and not line.startswith("total "):
            mode, nlink, user, group, size, mtime, rest = line.split(None, 6)
            name = rest.split(" -> ")[0]
            result[folder][name] = (mode, nlink, user, group, size, mtime, rest)
    return result


def test_c_database_listing_matches_the_c_pmxcfs(make_daemon: MakeDaemon) -> None:
    """`ls -laR` of the C pmxcfs over the same database, field by field (status files aside)."""
    pve = start_on_vector_db(make_daemon, "-l")
    done = subprocess.run(
        ["ls", "-laR", "--time-style=+%s", str(pve.mount)],
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        check=True,
    )
    ours = ls_entries(done.stdout, str(pve.mount))
    golden = ls_entries((VECTORS / "node1-etc-pve-ls-laR-epoch.txt").read_text(), "/etc/pve")
    for name in (*STATUS_NAMES, ".."):
        del ours[""][name], golden[""][name]
    assert ours == golden


def test_c_database_with_a_name_that_is_not_utf8_loads(make_daemon: MakeDaemon) -> None:
    pve = make_daemon(extra_args=("-l",))
    copy_vector_db(pve.db)
    execute_sql(pve.db, f"INSERT INTO tree VALUES(100, 0, 5, 0, {T}, 8, CAST(X'636166e9' AS TEXT), X'41')")
    pve.start()
    with open(os.fsencode(pve.mount) + b"/caf\xe9", "rb") as handle:
        assert handle.read() == b"A"


def test_c_database_without_local_flag_is_read_only(make_daemon: MakeDaemon) -> None:
    """corosync.conf in the database means cluster mode; without corosync there is no
    quorum, so every change is EACCES and the write bits are gone (3.2, 3.5)."""
    pve = start_on_vector_db(make_daemon)
    p = pve.path
    user_cfg = p("user.cfg").read_bytes()
    modes = {
        "": 0o755,
        "nodes": 0o555,
        "datacenter.cfg": 0o440,
        "priv": 0o500,
        "priv/token.cfg": 0o400,
        ".version": 0o440,
        ".debug": 0o640,
        "local": 0o555,
    }
    assert {rel: stat.S_IMODE(os.lstat(p(rel)).st_mode) for rel in modes} == modes
    assert p("datacenter.cfg").read_text() == "keyboard: en-us\n"
    fd = os.open(p("datacenter.cfg"), os.O_WRONLY)
    try:
        expect_errno(errno.EACCES, os.write, fd, b"x")
    finally:
        os.close(fd)
    expect_errno(errno.EACCES, os.open, p("new.cfg"), os.O_CREAT | os.O_WRONLY)
    expect_errno(errno.EACCES, os.mkdir, p("newdir"))
    expect_errno(errno.EACCES, os.unlink, p("user.cfg"))
    expect_errno(errno.EACCES, os.rmdir, p("testdir/while-n1-down"))
    expect_errno(errno.EACCES, os.rename, p("user.cfg"), p("user.old"))
    expect_errno(errno.EACCES, os.truncate, p("user.cfg"), 0)
    expect_errno(errno.EACCES, os.utime, p("user.cfg"), (1, 1))
    expect_errno(errno.EACCES, os.mkdir, p("priv/lock/new"))
    # chmod and chown change nothing and are not gated; .debug keeps working
    os.chmod(p("user.cfg"), 0o640)
    os.chown(p("user.cfg"), 0, WWW_DATA)
    fd = os.open(p(".debug"), os.O_WRONLY)
    try:
        assert os.write(fd, b"1\n") == 2
    finally:
        os.close(fd)
    assert p("user.cfg").read_bytes() == user_cfg
    assert sorted(os.listdir(p("testdir"))) == ["burst", "while-n1-down"]


def test_our_database_is_readable_with_the_original_schema(make_daemon: MakeDaemon, tmp_path: Path) -> None:
    pve = make_daemon().start()
    os.mkdir(pve.path("d"))
    pve.path("d/f").write_bytes(b"abc")
    pve.path("empty").write_bytes(b"")
    assert pve.stop() == 0
    copy = tmp_path / "copy.db"
    copy.write_bytes(pve.db.read_bytes())
    for suffix in ("-wal", "-shm"):
        side = pve.db.with_name(pve.db.name + suffix)
        if side.exists():
            copy.with_name(copy.name + suffix).write_bytes(side.read_bytes())
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        columns = [(row[1], row[2], row[3], row[5]) for row in conn.execute("PRAGMA table_info(tree)")]
        rows = {row[6]: row for row in conn.execute("SELECT * FROM tree")}
    assert columns == [
        ("inode", "INTEGER", 1, 1),
        ("parent", "INTEGER", 1, 0),
        ("version", "INTEGER", 1, 0),
        ("writer", "INTEGER", 1, 0),
        ("mtime", "INTEGER", 1, 0),
        ("type", "INTEGER", 1, 0),
        ("name", "TEXT", 1, 0),
        ("data", "BLOB", 0, 0),
    ]
    assert set(rows) == {"__version__", "d", "f", "empty"}
    version = rows["__version__"]
    assert (version[0], version[1], version[5], version[7]) == (0, 0, 8, None)
    d, f, empty = rows["d"], rows["f"], rows["empty"]
    assert (d[1], d[5], d[7]) == (0, 4, None)
    assert (f[1], f[5], f[7]) == (d[0], 8, b"abc")
    assert (empty[1], empty[5], empty[7]) == (0, 8, None)
    # inode = the version at creation; the global version counts every change
    assert d[0] == 2
    assert version[2] == max(row[2] for row in rows.values())


# ----- corrupt databases -----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_database_is_refused_and_left_alone(make_daemon: MakeDaemon, kind: str) -> None:
    pve = make_daemon(extra_args=("-l",))
    pve.db.parent.mkdir(parents=True)
    CORRUPTIONS[kind](pve.db)
    digest = sha256(pve.db)
    pve.start(wait=False)
    code = pve.wait_exit()
    assert code == 255, pve.lines
    naming = [line for line in pve.lines if str(pve.db) in line]
    assert len(naming) == 1, pve.lines
    assert naming[0].split(str(pve.db), 1)[1].strip(" :'\"-"), f"no reason given: {naming[0]}"
    assert not any("Traceback" in line for line in pve.lines), pve.lines
    assert not is_mounted(pve.mount)
    assert not (pve.base / "pmxcfs.pid").exists()
    assert sha256(pve.db) == digest


# ----- command line and daemonizing ------------------------------------------------------


def test_a_positional_argument_exits_255(make_daemon: MakeDaemon) -> None:
    pve = make_daemon(extra_args=("extra",))
    pve.start(wait=False)
    assert pve.wait_exit() == 255
    assert not is_mounted(pve.mount)


def test_a_bad_option_exits_1(make_daemon: MakeDaemon) -> None:
    pve = make_daemon(extra_args=("--no-such-option",))
    pve.start(wait=False)
    assert pve.wait_exit() == 1
    assert not is_mounted(pve.mount)


def test_background_mode(make_daemon: MakeDaemon, tmp_path: Path) -> None:
    pve = make_daemon()
    command = [arg for arg in pve.command() if arg not in ("-f", "--foreground")]
    pidfile = pve.base / "pmxcfs.pid"
    flag = pve.base / "run" / "cfs-restart-flag"
    child: int | None = None
    try:
        with open(tmp_path / "parent.err", "w") as err:
            parent = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO
            )
            assert parent.wait(STOP_TIMEOUT_S) == 0, (tmp_path / "parent.err").read_text()
        # the parent exits 0 only once the mount works, after writing the child's pid
        assert is_mounted(pve.mount)
        text = pidfile.read_text()
        assert text.endswith("\n")
        child = int(text)
        assert child != parent.pid
        assert pid_alive(child)
        pve.path("f").write_text("background\n")
        assert read_status(pve, ".members").startswith('{\n"nodename": "node1"')
        os.kill(child, signal.SIGTERM)
        wait_pid_exit(child, STOP_TIMEOUT_S)
        assert not is_mounted(pve.mount)
        assert not pidfile.exists()
        assert flag.exists()
    finally:
        kill_leftover(child, pve.mount, pve.entry()[-1])
    # and the data is there for the next (foreground) start
    pve.start()
    assert pve.path("f").read_text() == "background\n"


def test_links_and_status_files_exist_after_a_restart(make_daemon: MakeDaemon) -> None:
    pve = make_daemon().start()
    assert pve.stop() == 0
    pve.start()
    assert set(os.listdir(pve.mount)) == {*STATUS_NAMES, *LINK_NAMES}
