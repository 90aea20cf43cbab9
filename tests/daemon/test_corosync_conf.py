"""The tree's corosync.conf -> the host's (local.md 5.4): decision, atomic write, backup, reload."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import corosync_conf
from daemon.corosync_conf import HostCorosyncConf, changes_conf, config_version, plan
from tests.fakes.corosync_conf import Runs, conf
from wire.dcdb import DcdbMessageType

TIMEOUT_S = 10.0


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def host(tmp_path: Path, runs: Runs) -> Iterator[HostCorosyncConf]:
    made = HostCorosyncConf(str(tmp_path / "corosync.conf"), reload_delay=0.05, run=runs)
    yield made
    made.close()


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----- the version and the messages that count ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (b"totem {\n  config_version: 7\n}\n", 7),
        (b"config_version:3", 3),
        (b"config_version \t:\n 12", 12),
        (b"# config_version: 9 in a comment counts\ntotem { config_version: 2 }", 9),
        (b"totem { version: 2 }", 0),
        (b"config_version: x", 0),
        (b"config_version: 0", 0),
        (b"", 0),
        (b"config_version: 99999999999999999999999", 2**64 - 1),
    ],
)
def test_config_version_is_the_first_match_of_the_regex(text: bytes, version: int) -> None:
    assert config_version(text) == version


@pytest.mark.parametrize(
    ("subtype", "path", "to", "counts"),
    [
        (DcdbMessageType.WRITE, "corosync.conf", None, True),
        (DcdbMessageType.CREATE, "corosync.conf", None, True),
        (DcdbMessageType.RENAME, "corosync.conf.new", "corosync.conf", True),
        (DcdbMessageType.RENAME, "corosync.conf", "corosync.conf.old", False),
        (DcdbMessageType.WRITE, "corosync.conf.new", None, False),
        (DcdbMessageType.WRITE, "/corosync.conf", None, False),
        (DcdbMessageType.DELETE, "corosync.conf", None, False),
        (DcdbMessageType.MTIME, "corosync.conf", None, False),
        (DcdbMessageType.MKDIR, "corosync.conf", None, False),
    ],
)
def test_which_delivered_changes_count(subtype: int, path: str, to: str | None, counts: bool) -> None:
    assert changes_conf(subtype, path, to) is counts


# ----- the decision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tree", "old", "notify", "expected"),
    [
        (conf(3), conf(2), True, (True, 3, 2)),
        (conf(3), conf(2), False, (False, 3, 2)),
        (conf(2, "edited"), conf(2), True, (True, 2, 2)),  # equal version, other bytes: written
        (conf(3), None, True, (False, 3, 0)),  # no host file: written, nothing to reload
        (conf(3), b"", True, (False, 3, 0)),
        (conf(3), conf(None), True, (False, 3, 0)),  # a host file without version counts as 0
    ],
)
def test_plan_writes(tree: bytes, old: bytes | None, notify: bool, expected: tuple[bool, int, int]) -> None:
    todo = plan(tree, old, notify=notify)
    assert todo is not None
    assert (todo.reload, todo.new_version, todo.old_version) == expected


@pytest.mark.parametrize(
    ("tree", "old"),
    [
        (None, conf(2)),  # no corosync.conf in the tree
        (b"", conf(2)),  # an empty one
        (conf(2), conf(2)),  # identical bytes
    ],
)
def test_plan_does_nothing_quietly(tree: bytes | None, old: bytes, caplog: pytest.LogCaptureFixture) -> None:
    assert plan(tree, old, notify=True) is None
    assert not caplog.records


@pytest.mark.allow_error_logs
@pytest.mark.parametrize(
    ("tree", "old", "message"),
    [
        (conf(2), conf(3), "local corosync.conf is newer"),
        (conf(None), conf(3), "unable to parse cluster config_version"),
        (conf(0), None, "unable to parse cluster config_version"),
    ],
)
def test_plan_refuses_with_a_critical(
    tree: bytes, old: bytes | None, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert plan(tree, old, notify=True) is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.CRITICAL, message)]


# ----- the host file -----------------------------------------------------------------------


def test_a_newer_tree_copy_replaces_the_host_file_and_keeps_the_old_one(
    host: HostCorosyncConf, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = Path(host.path)
    path.write_bytes(conf(2))
    path.chmod(0o600)
    with open(path, "rb") as reader:  # a reader of the old file keeps the old file: a rename
        caplog.set_level(logging.INFO, logger="daemon.corosync_conf")
        assert host.sync(conf(3), notify=False) is True
        assert reader.read() == conf(2)
    assert path.read_bytes() == conf(3)
    assert Path(host.backup_path).read_bytes() == conf(2)
    assert files(tmp_path) == ["corosync.conf", "corosync.conf.bak"]  # no temp file left
    for kept in (path, Path(host.backup_path)):
        st = kept.stat()
        assert stat.S_IMODE(st.st_mode) == 0o644
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (0, 0)
    assert f"wrote new corosync config '{path}' (version = 3)" in caplog.messages


def test_no_host_file_yet_is_written_without_backup_and_without_reload(
    host: HostCorosyncConf, tmp_path: Path, runs: Runs
) -> None:
    assert host.sync(conf(5), notify=True) is True
    assert Path(host.path).read_bytes() == conf(5)
    assert files(tmp_path) == ["corosync.conf"]
    host.close()
    assert runs.calls == []


def test_the_backup_is_the_file_just_replaced(host: HostCorosyncConf) -> None:
    Path(host.path).write_bytes(conf(1))
    host.sync(conf(2), notify=False)
    host.sync(conf(3), notify=False)
    assert Path(host.path).read_bytes() == conf(3)
    assert Path(host.backup_path).read_bytes() == conf(2)


@pytest.mark.allow_error_logs
def test_an_older_tree_copy_leaves_the_host_file_alone(
    host: HostCorosyncConf, tmp_path: Path, runs: Runs
) -> None:
    Path(host.path).write_bytes(conf(4))
    assert host.sync(conf(3), notify=True) is False
    assert Path(host.path).read_bytes() == conf(4)
    assert files(tmp_path) == ["corosync.conf"]
    host.close()
    assert runs.calls == []


def test_identical_content_writes_nothing(host: HostCorosyncConf, tmp_path: Path) -> None:
    Path(host.path).write_bytes(conf(4))
    before = os.stat(host.path)
    assert host.sync(conf(4), notify=True) is False
    after = os.stat(host.path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert files(tmp_path) == ["corosync.conf"]


@pytest.mark.allow_error_logs
def test_a_failed_write_leaves_the_host_file_and_no_temp_file(
    host: HostCorosyncConf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Path(host.path).write_bytes(conf(1))

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(corosync_conf.os, "replace", fail)
    assert host.sync(conf(2), notify=True) is False
    assert Path(host.path).read_bytes() == conf(1)
    assert files(tmp_path) == ["corosync.conf"]
    assert any("unable to write cluster config file" in m for m in caplog.messages)


@pytest.mark.allow_error_logs
def test_an_unreadable_host_file_counts_as_version_0(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "corosync.conf"
    folder.mkdir()  # reading it fails with EISDIR, not ENOENT
    assert corosync_conf.read_host(str(folder)) is None
    assert any(m.startswith(f"unable to read cluster config file '{folder}'") for m in caplog.messages)


# ----- corosync-cfgtool -R -------------------------------------------------------------------


def test_notify_reloads_after_the_delay_without_blocking(tmp_path: Path, runs: Runs) -> None:
    host = HostCorosyncConf(str(tmp_path / "corosync.conf"), reload_delay=0.3, run=runs)
    try:
        Path(host.path).write_bytes(conf(1))
        t0 = time.monotonic()
        assert host.sync(conf(2), notify=True) is True
        assert time.monotonic() - t0 < 0.25  # the write returns before the reload
        assert runs.calls == []
        assert runs.called.wait(TIMEOUT_S)
        assert time.monotonic() - t0 >= 0.3
        assert runs.calls == [("corosync-cfgtool", "-R")]
    finally:
        host.close()


def test_without_notify_there_is_no_reload(host: HostCorosyncConf, runs: Runs) -> None:
    Path(host.path).write_bytes(conf(1))
    assert host.sync(conf(2), notify=False) is True
    host.close()
    assert runs.calls == []


def test_changes_before_the_reload_share_one_reload(tmp_path: Path, runs: Runs) -> None:
    host = HostCorosyncConf(str(tmp_path / "corosync.conf"), reload_delay=0.3, run=runs)
    try:
        Path(host.path).write_bytes(conf(1))
        host.sync(conf(2), notify=True)
        host.sync(conf(3), notify=True)
        assert runs.called.wait(TIMEOUT_S)
    finally:
        host.close()
    assert runs.calls == [("corosync-cfgtool", "-R")]


def test_close_cancels_a_pending_reload(tmp_path: Path, runs: Runs) -> None:
    host = HostCorosyncConf(str(tmp_path / "corosync.conf"), reload_delay=60.0, run=runs)
    Path(host.path).write_bytes(conf(1))
    host.sync(conf(2), notify=True)
    t0 = time.monotonic()
    host.close()
    assert time.monotonic() - t0 < 5.0
    assert runs.calls == []


@pytest.mark.allow_error_logs
def test_a_failed_reload_is_a_critical(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runs = Runs(code=3)
    host = HostCorosyncConf(str(tmp_path / "corosync.conf"), reload_delay=0.0, run=runs)
    Path(host.path).write_bytes(conf(1))
    host.sync(conf(2), notify=True)
    assert runs.called.wait(TIMEOUT_S)
    host.close()  # waits for the timer thread, which logs after the run
    assert "corosync-cfgtool -R failed with exit code 3" in caplog.messages


def test_the_real_runner_reports_exit_status() -> None:
    assert corosync_conf._run_quietly(["sh", "-c", "echo noise; echo more >&2; exit 4"]) == 4
    assert corosync_conf._run_quietly(["/nonexistent/corosync-cfgtool", "-R"]) == 127
