"""Results of every FUSE operation through the real mount (reference 1.3-1.5, 3.1, 3.3, 3.4, 3.6).

What a caller sees is the kernel's answer: where the VFS decides before asking the daemon
(an existing name for mkdir, rmdir of a non-directory, rename between a file and a
directory), the test asserts the kernel's errno and says so.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import time

import pytest

from lab.daemon import Daemon
from tests.integration.helpers import (
    LINK_NAMES,
    PLUGIN_NAMES,
    STATUS_NAMES,
    entry_count,
    expect_errno,
    snapshot_tree,
    stat_sync,
    wait_for,
)

pytestmark = pytest.mark.fuse

MIB = 1024 * 1024


# ----- mkdir -----------------------------------------------------------------------------


def test_mkdir_creates_an_empty_directory(pve: Daemon) -> None:
    os.mkdir(pve.path("d"), 0o700)  # the mode argument is ignored
    st = os.stat(pve.path("d"))
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert os.listdir(pve.path("d")) == []
    assert entry_count(pve.mount) == 2


def test_mkdir_on_an_existing_name_is_eexist(pve: Daemon) -> None:
    os.mkdir(pve.path("d"))
    pve.path("f").write_text("x")
    expect_errno(errno.EEXIST, os.mkdir, pve.path("d"))
    expect_errno(errno.EEXIST, os.mkdir, pve.path("f"))
    assert pve.path("f").read_text() == "x"


def test_mkdir_without_parent_is_enoent(pve: Daemon) -> None:
    expect_errno(errno.ENOENT, os.mkdir, pve.path("missing/d"))
    assert entry_count(pve.mount) == 1


def test_mkdir_below_a_file_is_enotdir(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    expect_errno(errno.ENOTDIR, os.mkdir, pve.path("f/d"))


def test_mkdir_of_a_plugin_name_fails_and_creates_nothing(pve: Daemon) -> None:
    """The daemon would answer EACCES, but plugin names always exist, so the kernel's
    lookup answers EEXIST first."""
    for name in PLUGIN_NAMES:
        expect_errno((errno.EEXIST, errno.EACCES), os.mkdir, pve.path(name))
    assert entry_count(pve.mount) == 1


def test_mkdir_below_a_plugin_name_fails(pve: Daemon) -> None:
    expect_errno(errno.ENOTDIR, os.mkdir, pve.path(".version/x"))
    # local -> nodes/node1, which does not exist yet: the kernel follows the link
    expect_errno(errno.ENOENT, os.mkdir, pve.path("local/x"))


# ----- rmdir and unlink ------------------------------------------------------------------


def test_rmdir_removes_an_empty_directory(pve: Daemon) -> None:
    os.mkdir(pve.path("d"))
    os.rmdir(pve.path("d"))
    assert not pve.path("d").exists()
    assert entry_count(pve.mount) == 1


def test_rmdir_errors(pve: Daemon) -> None:
    os.makedirs(pve.path("full/sub"))
    pve.path("f").write_text("x")
    expect_errno(errno.ENOENT, os.rmdir, pve.path("missing"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, pve.path("full"))
    expect_errno(errno.ENOTDIR, os.rmdir, pve.path("f"))  # the kernel's check
    assert pve.path("full/sub").is_dir()


def test_rmdir_of_a_plugin_name_fails(pve: Daemon) -> None:
    for name in PLUGIN_NAMES:  # none is a directory: the kernel answers ENOTDIR
        expect_errno((errno.ENOTDIR, errno.EACCES), os.rmdir, pve.path(name))
    assert set(PLUGIN_NAMES) <= set(os.listdir(pve.mount))


def test_unlink_removes_a_file(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    os.unlink(pve.path("f"))
    assert not pve.path("f").exists()
    assert entry_count(pve.mount) == 1


def test_unlink_errors(pve: Daemon) -> None:
    os.mkdir(pve.path("d"))
    expect_errno(errno.ENOENT, os.unlink, pve.path("missing"))
    expect_errno(errno.EISDIR, os.unlink, pve.path("d"))  # the kernel's check
    assert pve.path("d").is_dir()


def test_unlink_of_a_plugin_name_is_eacces(pve: Daemon) -> None:
    for name in PLUGIN_NAMES:
        expect_errno(errno.EACCES, os.unlink, pve.path(name))
    assert set(PLUGIN_NAMES) <= set(os.listdir(pve.mount))
    assert os.readlink(pve.path("local")) == "nodes/node1"


# ----- rename ----------------------------------------------------------------------------


def test_rename_moves_a_file_and_keeps_its_content(pve: Daemon) -> None:
    os.mkdir(pve.path("d"))
    pve.path("a").write_text("content")
    os.utime(pve.path("a"), (1_000_000_000, 1_000_000_000))
    before = int(time.time())
    os.rename(pve.path("a"), pve.path("d/b"))
    assert not pve.path("a").exists()
    assert pve.path("d/b").read_text() == "content"
    # a rename sets the mtime to the time of the rename (1.5 rename step 9)
    assert os.stat(pve.path("d/b")).st_mtime >= before
    assert entry_count(pve.mount) == 3


def test_rename_replaces_an_existing_file(pve: Daemon) -> None:
    pve.path("a").write_text("new")
    pve.path("b").write_text("old content")
    os.rename(pve.path("a"), pve.path("b"))
    assert pve.path("b").read_text() == "new"
    assert not pve.path("a").exists()
    assert entry_count(pve.mount) == 2


def test_rename_errors_for_missing_names(pve: Daemon) -> None:
    pve.path("a").write_text("x")
    expect_errno(errno.ENOENT, os.rename, pve.path("missing"), pve.path("b"))
    expect_errno(errno.ENOENT, os.rename, pve.path("a"), pve.path("nodir/b"))
    expect_errno(errno.ENOTDIR, os.rename, pve.path("a"), pve.path("a/b"))
    assert pve.path("a").read_text() == "x"


def test_rename_between_file_and_directory_is_refused_by_the_kernel(pve: Daemon) -> None:
    """memdb would let a file replace an empty dir (quirk 4), but the VFS refuses first:
    EISDIR for file -> dir, ENOTDIR for dir -> file. Nothing changes."""
    pve.path("f").write_text("x")
    os.mkdir(pve.path("empty"))
    expect_errno(errno.EISDIR, os.rename, pve.path("f"), pve.path("empty"))
    expect_errno(errno.ENOTDIR, os.rename, pve.path("empty"), pve.path("f"))
    assert pve.path("f").read_text() == "x"
    assert pve.path("empty").is_dir()


def test_rename_of_an_empty_directory_works(pve: Daemon) -> None:
    os.mkdir(pve.path("a"))
    os.mkdir(pve.path("other"))
    os.rename(pve.path("a"), pve.path("b"))
    assert pve.path("b").is_dir()
    assert not pve.path("a").exists()
    os.rename(pve.path("b"), pve.path("other/c"))
    assert pve.path("other/c").is_dir()


def test_rename_of_an_empty_directory_replaces_an_empty_directory(pve: Daemon) -> None:
    os.mkdir(pve.path("a"))
    os.mkdir(pve.path("b"))
    os.rename(pve.path("a"), pve.path("b"))
    assert sorted(n for n in os.listdir(pve.mount) if n not in PLUGIN_NAMES) == ["b"]
    assert entry_count(pve.mount) == 2


def test_rename_of_a_non_empty_directory_is_enotempty(pve: Daemon) -> None:
    os.makedirs(pve.path("full/sub"))
    expect_errno(errno.ENOTEMPTY, os.rename, pve.path("full"), pve.path("moved"))
    assert pve.path("full/sub").is_dir()
    assert not pve.path("moved").exists()


def test_rename_onto_a_non_empty_directory_is_enotempty(pve: Daemon) -> None:
    os.makedirs(pve.path("full/sub"))
    os.mkdir(pve.path("empty"))
    expect_errno(errno.ENOTEMPTY, os.rename, pve.path("empty"), pve.path("full"))
    assert pve.path("full/sub").is_dir()
    assert pve.path("empty").is_dir()


def test_failed_rename_of_a_non_empty_directory_keeps_the_target(make_daemon) -> None:  # type: ignore[no-untyped-def]
    """Quirk 3: the C code drops the target from RAM before the ENOTEMPTY check; the
    reference asks a reimplementation to check first. The target must survive, in RAM and
    after a restart."""
    pve = make_daemon().start()
    os.makedirs(pve.path("full/sub"))
    os.mkdir(pve.path("target"))
    expect_errno(errno.ENOTEMPTY, os.rename, pve.path("full"), pve.path("target"))
    assert pve.path("target").is_dir()
    assert pve.path("full/sub").is_dir()
    assert entry_count(pve.mount) == 4
    assert pve.stop() == 0
    pve.start()
    assert pve.path("target").is_dir()
    assert pve.path("full/sub").is_dir()
    assert entry_count(pve.mount) == 4


def test_rename_from_a_plugin_name_is_eacces(pve: Daemon) -> None:
    for name in PLUGIN_NAMES:
        expect_errno(errno.EACCES, os.rename, pve.path(name), pve.path("x"))
    assert not os.path.lexists(pve.path("x"))
    assert set(PLUGIN_NAMES) <= set(os.listdir(pve.mount))


def test_rename_onto_a_plugin_name_is_eacces(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    for name in PLUGIN_NAMES:
        expect_errno(errno.EACCES, os.rename, pve.path("f"), pve.path(name))
    assert pve.path("f").read_text() == "x"
    assert entry_count(pve.mount) == 2


# ----- create, open, read ----------------------------------------------------------------


def test_create_makes_an_empty_file_and_ignores_the_mode(pve: Daemon) -> None:
    before = int(time.time())
    fd = os.open(pve.path("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o777)
    os.close(fd)
    st = os.stat(pve.path("f"))
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_size == 0
    assert before <= st.st_mtime <= time.time() + 1
    assert pve.path("f").read_bytes() == b""


def test_create_exclusive_on_an_existing_name_is_eexist(pve: Daemon) -> None:
    pve.path("f").write_text("keep")
    os.mkdir(pve.path("d"))
    expect_errno(errno.EEXIST, os.open, pve.path("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    expect_errno(errno.EEXIST, os.open, pve.path("d"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    assert pve.path("f").read_text() == "keep"


def test_create_exclusive_on_a_status_file_is_eexist(pve: Daemon) -> None:
    for name in STATUS_NAMES:
        expect_errno(errno.EEXIST, os.open, pve.path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)


def test_create_without_exclusive_opens_the_existing_file(pve: Daemon) -> None:
    pve.path("f").write_text("keep")
    fd = os.open(pve.path("f"), os.O_CREAT | os.O_RDWR)
    try:
        assert os.read(fd, 100) == b"keep"
    finally:
        os.close(fd)


def test_create_errors(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    os.mkdir(pve.path("d"))
    expect_errno(errno.ENOENT, os.open, pve.path("missing/f"), os.O_CREAT | os.O_WRONLY)
    expect_errno(errno.ENOTDIR, os.open, pve.path("f/g"), os.O_CREAT | os.O_WRONLY)
    expect_errno(errno.EISDIR, os.open, pve.path("d"), os.O_CREAT | os.O_WRONLY)  # the kernel's check


def test_mknod_of_a_regular_file_creates_it(pve: Daemon) -> None:
    """libfuse 2 turns a regular-file mknod into create."""
    os.mknod(pve.path("f"), stat.S_IFREG | 0o600)
    assert pve.path("f").is_file()
    assert os.stat(pve.path("f")).st_size == 0


def test_open_errors(pve: Daemon) -> None:
    expect_errno(errno.ENOENT, os.open, pve.path("missing"), os.O_RDONLY)
    # the links dangle until nodes/node1 exists
    expect_errno(errno.ENOENT, os.open, pve.path("local"), os.O_RDONLY)
    expect_errno(errno.EISDIR, os.open, pve.mount, os.O_WRONLY)


def test_read_returns_the_bytes_and_nothing_past_the_end(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"0123456789")
    fd = os.open(pve.path("f"), os.O_RDONLY)
    try:
        assert os.pread(fd, 4, 3) == b"3456"
        assert os.pread(fd, 100, 8) == b"89"
        assert os.pread(fd, 100, 10) == b""
        assert os.pread(fd, 100, 5000) == b""
    finally:
        os.close(fd)


def test_read_of_a_directory_is_eisdir(pve: Daemon) -> None:
    os.mkdir(pve.path("d"))
    fd = os.open(pve.path("d"), os.O_RDONLY)
    try:
        expect_errno(errno.EISDIR, os.read, fd, 10)
    finally:
        os.close(fd)


# ----- write -----------------------------------------------------------------------------


def test_write_of_more_than_1_mib_is_efbig(pve: Daemon) -> None:
    pve.path("big").write_bytes(b"")
    fd = os.open(pve.path("big"), os.O_WRONLY)
    try:
        expect_errno(errno.EFBIG, os.pwrite, fd, b"x", MIB)
    finally:
        os.close(fd)
    assert os.path.getsize(pve.path("big")) == 0
    expect_errno(errno.EFBIG, pve.path("big").write_bytes, b"y" * (MIB + 1))
    assert os.path.getsize(pve.path("big")) <= MIB


@pytest.mark.parametrize("flags", [os.O_WRONLY, os.O_CREAT | os.O_WRONLY], ids=["open", "create"])
def test_write_crossing_1_mib_never_grows_past_the_limit(pve: Daemon, flags: int) -> None:
    """Files go through the page cache (the original used direct I/O): the kernel may turn the
    daemon's EFBIG for the whole request into a short write of what fits (POSIX allows either)."""
    pve.path("big").write_bytes(b"")
    fd = os.open(pve.path("big"), flags)
    try:
        expect_errno(errno.EFBIG, os.pwrite, fd, b"x", MIB)
        outcome: int | OSError
        try:
            outcome = os.pwrite(fd, b"x" * 10, MIB - 5)
        except OSError as exc:
            outcome = exc
        if isinstance(outcome, OSError):
            assert outcome.errno == errno.EFBIG
        else:
            assert outcome <= 5
    finally:
        os.close(fd)
    assert os.path.getsize(pve.path("big")) <= MIB


def test_write_of_exactly_1_mib_works(pve: Daemon) -> None:
    data = bytes(range(256)) * (MIB // 256)
    pve.path("big").write_bytes(data)
    assert os.path.getsize(pve.path("big")) == MIB
    assert pve.path("big").read_bytes() == data


def test_write_past_the_end_fills_the_gap_with_zeros(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"ab")
    fd = os.open(pve.path("f"), os.O_WRONLY)
    try:
        assert os.pwrite(fd, b"xy", 6) == 2
    finally:
        os.close(fd)
    assert pve.path("f").read_bytes() == b"ab\0\0\0\0xy"


def test_write_inside_the_file_overwrites_in_place(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"0123456789")
    fd = os.open(pve.path("f"), os.O_WRONLY)
    try:
        os.pwrite(fd, b"ab", 3)
    finally:
        os.close(fd)
    assert pve.path("f").read_bytes() == b"012ab56789"


def test_o_trunc_empties_the_file(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"long old content")
    fd = os.open(pve.path("f"), os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert pve.path("f").read_bytes() == b""
    pve.path("f").write_bytes(b"0123456789")
    fd = os.open(pve.path("f"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert pve.path("f").read_bytes() == b"new"


def test_o_append_appends(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"one\n")
    for line in (b"two\n", b"three\n"):
        fd = os.open(pve.path("f"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    assert pve.path("f").read_bytes() == b"one\ntwo\nthree\n"


def test_large_write_in_several_chunks_reads_back(pve: Daemon) -> None:
    data = os.urandom(300_000)
    pve.path("f").write_bytes(data)
    assert pve.path("f").read_bytes() == data


# ----- truncate --------------------------------------------------------------------------


def test_truncate_beyond_1_mib_is_efbig(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"abc")
    expect_errno(errno.EFBIG, os.truncate, pve.path("f"), MIB + 1)
    assert pve.path("f").read_bytes() == b"abc"
    os.truncate(pve.path("f"), MIB)
    assert os.path.getsize(pve.path("f")) == MIB


def test_truncate_shrinks_and_grows_with_zeros(pve: Daemon) -> None:
    pve.path("f").write_bytes(b"0123456789")
    os.truncate(pve.path("f"), 4)
    assert pve.path("f").read_bytes() == b"0123"
    os.truncate(pve.path("f"), 6)
    assert pve.path("f").read_bytes() == b"0123\0\0"
    fd = os.open(pve.path("f"), os.O_RDWR)
    try:
        os.ftruncate(fd, 2)
    finally:
        os.close(fd)
    assert pve.path("f").read_bytes() == b"01"


def test_truncate_of_an_empty_file_zero_fills(pve: Daemon) -> None:
    """Quirk 2: the C code records the size without a buffer; a reimplementation should zero-fill."""
    pve.path("f").write_bytes(b"")
    os.truncate(pve.path("f"), 5)
    assert os.path.getsize(pve.path("f")) == 5
    assert pve.path("f").read_bytes() == b"\0" * 5


def test_truncate_of_a_missing_file_is_enoent(pve: Daemon) -> None:
    expect_errno(errno.ENOENT, os.truncate, pve.path("missing"), 0)


# ----- utimens ---------------------------------------------------------------------------


def test_utime_sets_the_mtime_in_whole_seconds(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    os.utime(pve.path("f"), ns=(5_000_000_000, 1_700_000_000_987_654_321))
    st = os.stat(pve.path("f"))
    assert st.st_mtime_ns == 1_700_000_000_000_000_000
    # atime and ctime are the entry's mtime; the given atime is ignored
    assert st.st_atime_ns == st.st_mtime_ns == st.st_ctime_ns
    os.mkdir(pve.path("d"))
    os.utime(pve.path("d"), (1_600_000_000, 1_600_000_000))
    assert os.stat(pve.path("d")).st_mtime == 1_600_000_000


def test_utime_keeps_the_low_32_bits_of_the_seconds(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    os.utime(pve.path("f"), (0, 2**32 + 5))
    assert os.stat(pve.path("f")).st_mtime == 5
    os.utime(pve.path("f"), (0, 2**32 - 1))
    assert os.stat(pve.path("f")).st_mtime == 2**32 - 1


def test_parent_mtime_is_not_touched_by_changes_of_children(pve: Daemon) -> None:
    """Only a directory's own mkdir, rename or utime changes its mtime (1.2)."""
    os.mkdir(pve.path("d"))
    os.utime(pve.path("d"), (1_500_000_000, 1_500_000_000))
    pve.path("d/f").write_text("x")
    os.mkdir(pve.path("d/sub"))
    os.rename(pve.path("d/f"), pve.path("d/g"))
    os.rmdir(pve.path("d/sub"))
    os.unlink(pve.path("d/g"))
    stat_sync(pve.path("d"))
    assert os.stat(pve.path("d")).st_mtime == 1_500_000_000


def test_setting_only_one_of_atime_and_mtime_changes_nothing(pve: Daemon) -> None:
    """libfuse 2 calls utimens only when both times are set (no flag_utime_omit_ok)."""
    f = pve.path("f")
    f.write_text("x")
    os.utime(f, (1_400_000_000, 1_400_000_000))
    for flag in ("-m", "-a"):
        done = subprocess.run(["touch", flag, "-d", "@1500000000", str(f)], capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        stat_sync(f)
        assert os.stat(f).st_mtime == 1_400_000_000, flag
    subprocess.run(["touch", "-d", "@1500000000", str(f)], check=True)
    stat_sync(f)
    assert os.stat(f).st_mtime == 1_500_000_000


def test_utime_now_sets_the_current_time(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    os.utime(pve.path("f"), (1, 1))
    before = int(time.time())
    os.utime(pve.path("f"))
    assert before <= os.stat(pve.path("f")).st_mtime <= time.time() + 1


def test_utime_errors(pve: Daemon) -> None:
    expect_errno(errno.ENOENT, os.utime, pve.path("missing"), (1, 1))
    expect_errno(errno.EACCES, os.utime, pve.mount, (1, 1))


def test_utime_of_a_status_file_is_eacces(pve: Daemon) -> None:
    for name in STATUS_NAMES:
        expect_errno(errno.EACCES, os.utime, pve.path(name), (1, 1))
        assert os.stat(pve.path(name)).st_mtime == 0


def test_utime_of_a_link_is_eacces(pve: Daemon) -> None:
    for name in LINK_NAMES:
        expect_errno(errno.EACCES, os.utime, pve.path(name), (1, 1), follow_symlinks=False)


# ----- names -----------------------------------------------------------------------------


def test_utf8_names_and_odd_characters(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    names = ["café ü", "with space", "a\nb", "x" * 255, "-dash", "#hash"]
    for i, name in enumerate(names):
        pve.path(name).write_text(str(i))
    assert [pve.path(name).read_text() for name in names] == [str(i) for i in range(len(names))]
    before = snapshot_tree(pve.mount)
    assert pve.stop() == 0
    pve.start()
    assert snapshot_tree(pve.mount) == before


def test_any_byte_but_slash_and_nul_is_a_valid_name(make_daemon) -> None:  # type: ignore[no-untyped-def]
    pve = make_daemon().start()
    name = os.fsencode(pve.mount) + b"/caf\xe9"
    with open(name, "wb") as handle:
        handle.write(b"latin-1 name")
    assert b"caf\xe9" in os.listdir(os.fsencode(pve.mount))
    assert pve.stop() == 0
    pve.start()
    with open(name, "rb") as handle:
        assert handle.read() == b"latin-1 name"


def test_unlink_of_an_open_file(pve: Daemon) -> None:
    """libfuse hides an open file (a rename to .fuse_hidden*) and removes it on the last close."""
    fd = os.open(pve.path("f"), os.O_CREAT | os.O_RDWR)
    try:
        os.write(fd, b"abc")
        os.unlink(pve.path("f"))
        assert not pve.path("f").exists()
        assert os.pwrite(fd, b"def", 3) == 3
        assert os.pread(fd, 10, 0) == b"abcdef"
    finally:
        os.close(fd)
    names = [n for n in os.listdir(pve.mount) if n not in PLUGIN_NAMES]
    assert names == [] or all(n.startswith(".fuse_hidden") for n in names)
    # the hidden file goes with the release, which the kernel sends asynchronously
    wait_for(lambda: entry_count(pve.mount) == 1, 10, "the hidden file to be removed")


# ----- readlink and statfs ---------------------------------------------------------------


def test_readlink_of_a_file_is_einval(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    expect_errno(errno.EINVAL, os.readlink, pve.path("f"))
    expect_errno(errno.EINVAL, os.readlink, pve.path(".version"))
    expect_errno(errno.ENOENT, os.readlink, pve.path("missing"))


def test_statfs_on_a_fresh_database(pve: Daemon) -> None:
    info = os.statvfs(pve.mount)
    assert info.f_bsize == 4096
    assert info.f_blocks == 32768
    assert info.f_bfree == info.f_bavail == 32768
    assert info.f_files == 262144
    assert info.f_files - info.f_ffree == 1
    assert info.f_namemax == 256


def test_statfs_counts_entries_and_blocks(pve: Daemon) -> None:
    os.makedirs(pve.path("a/b"))
    pve.path("a/f").write_bytes(b"x" * 5000)
    pve.path("g").write_bytes(b"y")
    info = os.statvfs(pve.mount)
    assert info.f_files - info.f_ffree == 5
    # ceil of the *total* size (5001 bytes) in 4 KiB blocks, not a per-file sum
    assert info.f_bfree == info.f_bavail == 32768 - 2
    assert os.statvfs(pve.path("a/b")) == info  # the same whatever the path
    os.unlink(pve.path("a/f"))
    info = os.statvfs(pve.mount)
    assert info.f_files - info.f_ffree == 4
    assert info.f_bfree == 32768 - 1


# ----- chmod and chown -------------------------------------------------------------------


CHMOD_CASES = [
    ("f", False, 0o640, True),
    ("f", False, 0o644, False),
    ("f", False, 0o600, False),
    ("f", False, 0o755, False),
    ("d", True, 0o640, True),  # dirs too: 0640 is the one supported mode
    ("d", True, 0o755, False),
    ("priv/f", False, 0o600, True),
    ("priv/f", False, 0o640, False),
    ("priv", True, 0o600, True),
    ("priv", True, 0o700, False),
    ("nodes/node1/priv/f", False, 0o600, True),
    ("nodes/node1/priv/f", False, 0o640, False),
]


def test_chmod_accepts_only_the_supported_mode_and_changes_nothing(pve: Daemon) -> None:
    for rel, is_dir, _, _ in CHMOD_CASES:
        path = pve.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            path.mkdir(exist_ok=True)
        else:
            path.write_text("x")
    for rel, _, mode, ok in CHMOD_CASES:
        path = pve.path(rel)
        before = os.stat(path).st_mode
        if ok:
            os.chmod(path, mode)
        else:
            expect_errno(errno.EPERM, os.chmod, path, mode)
        assert os.stat(path).st_mode == before, (rel, oct(mode))


def test_chmod_of_a_status_file(pve: Daemon) -> None:
    os.chmod(pve.path(".version"), 0o640)
    expect_errno(errno.EPERM, os.chmod, pve.path(".version"), 0o440)
    assert stat.S_IMODE(os.stat(pve.path(".version")).st_mode) == 0o440


CHOWN_CASES = [
    (0, 33, True),
    (-1, 33, True),
    (0, -1, True),
    (-1, -1, True),
    (0, 0, False),
    (33, 33, False),
    (1000, -1, False),
    (-1, 1000, False),
]


def test_chown_accepts_only_root_and_www_data(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    for uid, gid, ok in CHOWN_CASES:
        if ok:
            os.chown(pve.path("f"), uid, gid)
        else:
            expect_errno(errno.EPERM, os.chown, pve.path("f"), uid, gid)
        st = os.stat(pve.path("f"))
        assert (st.st_uid, st.st_gid) == (0, 33), (uid, gid)


# ----- operations the original does not implement ----------------------------------------


def test_symlink_is_enosys(pve: Daemon) -> None:
    expect_errno(errno.ENOSYS, os.symlink, "target", pve.path("l"))
    assert entry_count(pve.mount) == 1


def test_link_is_not_implemented(pve: Daemon) -> None:
    """libfuse answers ENOSYS; Linux >= 6.9 reports a FUSE link ENOSYS as EPERM."""
    pve.path("f").write_text("x")
    expect_errno((errno.ENOSYS, errno.EPERM), os.link, pve.path("f"), pve.path("hard"))
    assert not pve.path("hard").exists()


def test_mkfifo_is_enosys(pve: Daemon) -> None:
    expect_errno(errno.ENOSYS, os.mkfifo, pve.path("fifo"))
    assert entry_count(pve.mount) == 1


def test_xattrs_are_not_supported(pve: Daemon) -> None:
    pve.path("f").write_text("x")
    expect_errno(errno.EOPNOTSUPP, os.setxattr, pve.path("f"), "user.a", b"1")
    expect_errno(errno.EOPNOTSUPP, os.getxattr, pve.path("f"), "user.a")
    expect_errno(errno.EOPNOTSUPP, os.listxattr, pve.path("f"))
    expect_errno(errno.EOPNOTSUPP, os.removexattr, pve.path("f"), "user.a")


def test_fsync_and_flock_succeed(pve: Daemon) -> None:
    """flush/fsync are not implemented (the kernel treats that as success); locks are local."""
    fd = os.open(pve.path("f"), os.O_CREAT | os.O_RDWR)
    try:
        os.write(fd, b"data")
        os.fsync(fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    assert pve.path("f").read_bytes() == b"data"
