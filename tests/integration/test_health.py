""".health (ours) on a real mount: refused as the original's status files are, served from the
tree when a tree written by the C pmxcfs holds /.health, and private names hidden from its
readers; the full report comes from the daemon over IPC (``python -m tools health``)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.daemon import REPO, Daemon
from tests.integration.helpers import WWW_DATA, read_json, run_as
from tests.integration.mounts import public_daemon, require_fuse
from tools.create import create_db
from tools.health import fetch_health
from tools.progress import Progress

pytestmark = pytest.mark.fuse

MIB = 1024 * 1024


def _ipc_daemon(base: Path, **kwargs: object) -> Daemon:
    """A daemon with an IPC service name of its own (no other test's "pve2")."""
    name = f"pve2-health-{uuid.uuid4().hex[:12]}"
    daemon = Daemon(base, extra_args=("--ipc-name", name), **kwargs)  # type: ignore[arg-type]
    daemon.ipc_name = name  # type: ignore[attr-defined]
    return daemon


def _ipc_name(daemon: Daemon) -> str:
    return daemon.ipc_name  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(scope="module")
def public() -> Iterator[Daemon]:
    """One local-mode daemon for the module, in a 0755 folder (www-data reaches the mount)."""
    with public_daemon(_ipc_daemon, "pmxcfs-health-") as daemon:
        yield daemon


# ----- 1. .health answers every change as .version does ----------------------------------


def _open(flags: int) -> Callable[[Path], object]:
    return lambda path: os.close(os.open(path, flags, 0o640))


def _write(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, b"1\n")
    finally:
        os.close(fd)


OPS: dict[str, tuple[Callable[[Path], object], int]] = {
    # O_CREAT on an existing name is a plain open, which a status file allows
    "create": (_open(os.O_WRONLY | os.O_CREAT), 0),
    "create excl": (_open(os.O_WRONLY | os.O_CREAT | os.O_EXCL), errno.EEXIST),
    "create trunc": (_open(os.O_WRONLY | os.O_CREAT | os.O_TRUNC), errno.EIO),  # the truncate fails
    "open trunc": (_open(os.O_WRONLY | os.O_TRUNC), errno.EIO),
    "mkdir": (os.mkdir, errno.EEXIST),
    "rmdir": (os.rmdir, errno.ENOTDIR),
    "unlink": (os.unlink, errno.EACCES),
    "rename from": (lambda path: os.rename(path, path.parent / "renamed"), errno.EACCES),
    "rename to": (lambda path: os.rename(path.parent / "plain.cfg", path), errno.EACCES),
    "truncate": (lambda path: os.truncate(path, 0), errno.EIO),
    "write": (_write, errno.EIO),
    "utimens": (lambda path: os.utime(path, (1, 1)), errno.EACCES),
    "utimens now": (os.utime, errno.EACCES),
    "symlink": (lambda path: os.symlink("plain.cfg", path), errno.EEXIST),
}
"""Each change through the mount and what .version answers to it (0: success)."""


def _outcome(op: Callable[[Path], object], path: Path) -> int:
    try:
        op(path)
    except OSError as exc:
        return exc.errno or -1
    return 0


@pytest.mark.parametrize("name", [".version", ".health"])
@pytest.mark.parametrize("op", OPS)
def test_health_answers_changes_as_version_does(public: Daemon, op: str, name: str) -> None:
    public.path("plain.cfg").write_text("x")
    call, expected = OPS[op]
    got = _outcome(call, public.path(name))
    assert errno.errorcode.get(got, got) == errno.errorcode.get(expected, expected)
    assert ".health" not in os.listdir(public.mount)
    assert not public.path("renamed").exists()
    assert public.path("plain.cfg").read_text() == "x"


def test_health_and_version_answer_www_data_alike(public: Daemon) -> None:
    def ops(path: Path) -> list[tuple[str, Path] | tuple[str, Path, str]]:
        return [
            ("create", path),
            ("write", path),
            ("truncate", path),
            ("mkdir", path),
            ("unlink", path),
            ("rename", path, str(public.path("renamed"))),
            ("stat", path),
            ("size", path),
        ]

    version = run_as(WWW_DATA, WWW_DATA, ops(public.path(".version")))
    health = run_as(WWW_DATA, WWW_DATA, ops(public.path(".health")))
    assert [kind for kind, _ in health] == [kind for kind, _ in version]
    assert [value for kind, value in health if kind == "errno"] == [
        value for kind, value in version if kind == "errno"
    ]
    assert health[-2] == version[-2]  # the same mode: 0440, group www-data


# ----- 3. a refused change's private path: hidden in the file, whole for root --------------


def test_health_hides_private_names_from_its_readers(public: Daemon) -> None:
    os.makedirs(public.path("priv/secret-dir"), exist_ok=True)
    os.makedirs(public.path("nodes/node1/priv"), exist_ok=True)
    public.path("priv/secret-dir/child").write_text("x")
    secret = public.path("priv/secret-name.cfg")
    secret.write_text("x")
    with pytest.raises(OSError, match="File too large"):
        os.truncate(secret, MIB + 1)
    public.wait_for_line(lambda line: "refused truncate priv/secret-name.cfg" in line)
    health = read_json(
        public, ".health", lambda h: h["last_refusal"] and h["last_refusal"]["op"] == "truncate"
    )
    assert health["last_refusal"]["path"] == "priv/…"
    report = json.loads(fetch_health(_ipc_name(public)))
    assert report["last_refusal"]["path"] == "priv/secret-name.cfg"

    # a rename refused by the tree (a folder with children can't move), both sides private
    with pytest.raises(OSError, match="not empty"):
        os.rename(public.path("priv/secret-dir"), public.path("nodes/node1/priv/other-secret"))
    public.wait_for_line(
        lambda line: "refused rename priv/secret-dir -> nodes/node1/priv/other-secret" in line
    )
    as_root = read_json(public, ".health", lambda h: h["last_refusal"]["op"] == "rename")
    assert as_root["last_refusal"]["path"] == "priv/… -> nodes/node1/priv/…"
    ((kind, text),) = run_as(WWW_DATA, WWW_DATA, [("read", public.path(".health"))])
    assert kind == "ok"
    assert json.loads(text)["last_refusal"] == as_root["last_refusal"]
    for name in ("secret", "other-secret", "secret-dir"):
        assert name not in text
    report = json.loads(fetch_health(_ipc_name(public)))
    assert report["last_refusal"]["path"] == "priv/secret-dir -> nodes/node1/priv/other-secret"
    assert report["refused_changes"] == as_root["refused_changes"]


# ----- 2. a tree that holds /.health ------------------------------------------------------


def test_a_tree_holding_health_serves_it_and_the_report_comes_over_ipc(tmp_path: Path) -> None:
    require_fuse()
    src = tmp_path / "files"
    src.mkdir()
    (src / ".health").write_text("written on a C node\n")
    (src / "datacenter.cfg").write_text("keyboard: en-us\n")
    daemon = _ipc_daemon(tmp_path / "d")
    daemon.db.parent.mkdir(parents=True)
    create_db(str(src), str(daemon.db), Progress(enabled=False))
    try:
        daemon.start()
        daemon.wait_for_line(lambda line: "the tree holds /.health" in line)
        health = daemon.path(".health")
        assert health.read_text() == "written on a C node\n"
        assert ".health" in os.listdir(daemon.mount)
        assert oct(health.stat().st_mode & 0o777) == oct(0o640)  # a tree file's mode, not 0440
        health.write_text("rewritten\n")
        assert health.read_text() == "rewritten\n"

        report = json.loads(fetch_health(_ipc_name(daemon)))
        assert (report["nodename"], report["mode"], report["writable"]) == ("node1", "local", True)
        done = subprocess.run(
            [sys.executable, "-m", "tools", "health", "--ipc-name", _ipc_name(daemon)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert json.loads(done.stdout)["mode"] == "local"

        os.unlink(health)  # the name is the status file again
        assert ".health" not in os.listdir(daemon.mount)
        assert read_json(daemon, ".health")["mode"] == "local"
        assert sum("the tree holds /.health" in line for line in daemon.lines) == 1
    finally:
        daemon.cleanup()
