"""export -> import: the new database has the same index checksum and the same rows."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from db.store import Store
from memdb.records import DT_REG, Row, version_row
from tests.db.vectors import VECTOR_DB
from tests.tools.helpers import index_of, run, sha256, side_files, write_db
from tools.dbfile import read_rows

FORMATS = ["out", "out.tar", "out.tar.gz", "out.tgz", "out.tar.xz"]


def _round_trip(capsys: pytest.CaptureFixture[str], db: Path, dest: Path) -> Path:
    before = sha256(db)
    exported = run(capsys, "export", db, dest)
    assert exported.code == 0, exported.err
    assert sha256(db) == before, "export changed the source"
    new = dest.parent / "new.db"
    imported = run(capsys, "import", dest, new)
    assert imported.code == 0, imported.err
    assert imported.out == exported.out.replace(str(dest), str(new), 1)
    return new


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_is_identical(capsys: pytest.CaptureFixture[str], sample_db: Path, name: str) -> None:
    new = _round_trip(capsys, sample_db, sample_db.parent / name)
    assert index_of(new) == index_of(sample_db)
    assert sorted(read_rows(str(new)), key=lambda r: r.inode) == sorted(
        read_rows(str(sample_db)), key=lambda r: r.inode
    )
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert side_files(new) == []
    assert run(capsys, "check", new).code == 0


@pytest.mark.parametrize("name", ["out", "out.tar.gz"])
def test_round_trip_of_the_c_written_vector(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    db = tmp_path / "config.db"
    shutil.copyfile(VECTOR_DB, db)
    new = _round_trip(capsys, db, tmp_path / name)
    assert index_of(new) == index_of(db)
    assert len(read_rows(str(new))) == 31


def test_export_prints_the_index_checksum(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    result = run(capsys, "export", sample_db, sample_db.parent / "out")
    expected = hashlib.sha256(index_of(sample_db)).hexdigest()
    assert result.out == f"{sample_db.parent / 'out'}: 15 entries, version 23, index {expected}\n"
    manifest = json.loads((sample_db.parent / "out" / "manifest.json").read_text())
    assert manifest["index_sha256"] == expected
    assert manifest["root"] == {"version": 23, "writer": 1, "mtime": 1_700_000_900}


def test_directory_export_layout_and_modes(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = sample_db.parent / "out"
    assert run(capsys, "export", sample_db, out).code == 0
    tree = out / "tree"

    def mode(rel: str) -> int:
        return stat.S_IMODE((out / rel).stat().st_mode)

    assert mode(".") == 0o700
    assert mode("manifest.json") == 0o600
    assert (tree / "z" / "f").read_bytes() == b"moved file\n"
    assert (tree / "empty").read_bytes() == b""
    assert os.path.exists(os.fsencode(tree) + b"/caf\xe9.cfg")
    assert (tree / "big.bin").read_bytes() == bytes(range(256)) * 160
    assert (mode("tree/priv"), mode("tree/priv/authkey.key"), mode("tree/priv/lock/backup")) == (
        0o700,
        0o600,
        0o700,
    )
    assert (mode("tree/nodes/n1/priv"), mode("tree/nodes/n1/priv/key.pem")) == (0o700, 0o600)
    assert (mode("tree/nodes"), mode("tree/nodes/n1/qemu-server/100.conf")) == (0o755, 0o640)
    assert (tree / "priv" / "lock" / "backup").stat().st_mtime == 1_700_000_900
    assert (tree / "z" / "f").stat().st_mtime == 1_700_000_301


def test_tar_export_members(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = sample_db.parent / "out.tar"
    assert run(capsys, "export", sample_db, out).code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members)[:2] == ["manifest.json", "tree"]
    assert members["tree/priv/authkey.key"].mode == 0o600
    assert members["tree/z/f"].mtime == 1_700_000_301
    assert "tree/caf\udce9.cfg" in members
    assert len(members) == 2 + 15


def test_export_of_a_live_database_includes_its_wal(
    capsys: pytest.CaptureFixture[str], sample_db: Path
) -> None:
    writer = Store(str(sample_db))
    writer.open()
    writer.prepare()
    writer.replace_rows((), (Row(30, 0, 30, 5, 77, DT_REG, "late", b"in the wal"), version_row(30, 5, 77)))
    try:
        new = _round_trip(capsys, sample_db, sample_db.parent / "out")
        assert index_of(new) == index_of(sample_db)
        assert any(r.name == "late" for r in read_rows(str(new)))
    finally:
        writer.close()


def test_export_refuses_an_existing_destination(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    (sample_db.parent / "out").mkdir()
    result = run(capsys, "export", sample_db, sample_db.parent / "out")
    assert result.code == 255
    assert result.err == f"pmxcfs-tool export: {sample_db.parent / 'out'}: exists already; give a new path\n"
    assert list((sample_db.parent / "out").iterdir()) == []


def test_export_refuses_a_broken_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = write_db(tmp_path / "bad.db", [version_row(9, 0, 1), Row(3, 7, 3, 0, 1, DT_REG, "orphan", b"x")])
    result = run(capsys, "export", db, tmp_path / "out.tar")
    assert result.code == 255
    assert result.err == "pmxcfs-tool export: 7: missing directory inode (parent of inodes 3)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]


def test_import_refuses_an_existing_database(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = sample_db.parent / "out.tar"
    assert run(capsys, "export", sample_db, out).code == 0
    before = sha256(sample_db)
    result = run(capsys, "import", out, sample_db)
    assert result.code == 255
    assert result.err == f"pmxcfs-tool import: {sample_db}: exists already; give a new path\n"
    assert sha256(sample_db) == before


def _exported(capsys: pytest.CaptureFixture[str], sample_db: Path, name: str) -> Path:
    out = sample_db.parent / name
    assert run(capsys, "export", sample_db, out).code == 0
    return out


def _refused(capsys: pytest.CaptureFixture[str], src: Path, reason: str) -> None:
    new = src.parent / "new.db"
    result = run(capsys, "import", src, new)
    assert result.code == 255
    assert reason in result.err
    assert not new.exists()
    assert [p.name for p in src.parent.iterdir() if p.name.startswith(".new.db")] == []


def test_import_refuses_changed_content(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = _exported(capsys, sample_db, "out")
    (out / "tree" / "z" / "f").write_bytes(b"edited\n")
    _refused(capsys, out, "tree/z/f: content differs from the manifest (size or SHA-256)")


def test_import_refuses_an_extra_file(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = _exported(capsys, sample_db, "out")
    (out / "tree" / "nodes" / "new.cfg").write_bytes(b"x")
    _refused(capsys, out, "tree/nodes/new.cfg: not in the manifest")


def test_import_refuses_a_missing_file(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = _exported(capsys, sample_db, "out")
    (out / "tree" / "empty").unlink()
    _refused(capsys, out, "tree/empty: file of the manifest is missing")


def test_import_refuses_a_symlink_in_the_tree(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = _exported(capsys, sample_db, "out")
    (out / "tree" / "z" / "f").unlink()
    (out / "tree" / "z" / "f").symlink_to("/etc/hostname")
    _refused(capsys, out, "neither a plain file nor a directory (links are refused)")


def test_import_refuses_a_changed_index(capsys: pytest.CaptureFixture[str], sample_db: Path) -> None:
    out = _exported(capsys, sample_db, "out")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["entries"][0]["mtime"] += 1  # the files still match: only the index can tell
    (out / "manifest.json").write_text(json.dumps(manifest))
    _refused(capsys, out, "is not the manifest's")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.update(format="other"), "not a pmxcfs-tree-export manifest"),
        (lambda m: m.update(format_version=2), "manifest format_version 2 is not 1"),
        (lambda m: m["entries"][0].update(inode=-1), "entry 0: inode must be an integer"),
        (lambda m: m["entries"][0].update(name="../x"), "name '../x' can't be exported as a file name"),
        (lambda m: m["entries"][1].update(parent=999), "its parent 999 is not in the manifest"),
        (lambda m: m["entries"][1].update(path="elsewhere"), "does not match its parents"),
    ],
    ids=["format", "version", "inode", "name", "parent", "path"],
)
def test_import_refuses_a_bad_manifest(
    capsys: pytest.CaptureFixture[str], sample_db: Path, change, reason
) -> None:
    out = _exported(capsys, sample_db, "out")
    manifest = json.loads((out / "manifest.json").read_text())
    change(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    _refused(capsys, out, reason)


def test_import_refuses_a_manifest_that_is_not_json(
    capsys: pytest.CaptureFixture[str], sample_db: Path
) -> None:
    out = _exported(capsys, sample_db, "out")
    (out / "manifest.json").write_text("{not json")
    _refused(capsys, out, "manifest is not valid JSON")


def _tar_with(src: Path, dest: Path, extra: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(src) as old, tarfile.open(dest, "w") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isreg() else None)
        new.addfile(extra, io.BytesIO(data) if extra.isreg() else None)
    return dest


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("tree/../../evil", size=1), "tree/../../evil: member path leaves the archive"),
        (_member("/etc/evil", size=1), "/etc/evil: member path leaves the archive"),
        (
            _member("tree/link", tarfile.SYMTYPE, link="/etc/shadow"),
            "tree/link: member is a link or special file",
        ),
        (
            _member("tree/hard", tarfile.LNKTYPE, link="manifest.json"),
            "tree/hard: member is a link or special file",
        ),
        (_member("tree/dev", tarfile.CHRTYPE), "tree/dev: member is a link or special file"),
        (_member("tree/extra.cfg", size=1), "tree/extra.cfg: not in the manifest"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device", "extra"],
)
def test_import_refuses_bad_tar_members(
    capsys: pytest.CaptureFixture[str], sample_db: Path, member: tarfile.TarInfo, reason: str
) -> None:
    out = _exported(capsys, sample_db, "out.tar")
    bad = _tar_with(out, sample_db.parent / "bad.tar", member, b"x" * member.size)
    _refused(capsys, bad, reason)
    assert not (sample_db.parent.parent / "evil").exists()


def test_import_of_something_else(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"PK")
    _refused(capsys, tmp_path / "x.zip", "neither an export directory nor a .tar/.tar.gz/.tgz/.tar.xz file")
    (tmp_path / "x.tar").write_bytes(b"not a tar" * 100)
    _refused(capsys, tmp_path / "x.tar", "unreadable tar file")
