"""readdir (plugins first at the root, shadowed tree names hidden) and statfs (3.3, 3.4)."""

from __future__ import annotations

from actors.messages import CreateFile, MakeDir
from tests.expected import PLUGIN_NAMES
from tests.fusefs.pve import FileInfo, Pve


def test_root_listing_of_a_fresh_db(pve: Pve) -> None:
    names = pve.ops.readdir("/", 0)
    assert names[:2] == [".", ".."]
    assert sorted(names[2:]) == sorted(PLUGIN_NAMES)
    assert len(names) == 12


def test_root_listing_plugins_then_tree_entries(pve: Pve) -> None:
    pve.mkdir("/nodes")
    pve.create("/storage.cfg")
    pve.mkdir("/priv")
    names = pve.ops.readdir("/", 0)
    assert names[:2] == [".", ".."]
    assert sorted(names[2:12]) == sorted(PLUGIN_NAMES)
    assert sorted(names[12:]) == ["nodes", "priv", "storage.cfg"]


def test_a_tree_entry_named_like_a_plugin_is_hidden(pve: Pve) -> None:
    # Only another node (or an old DB) can put such names into the tree; FUSE refuses them.
    pve.ask(CreateFile(path=".version"))
    pve.ask(MakeDir(path="local"))
    pve.ask(CreateFile(path="qemu-server"))
    pve.create("/real")
    names = pve.ops.readdir("/", 0)
    assert len(names) == len(set(names)) == 13
    assert names[12:] == ["real"]
    # the plugin wins at the root for getattr and reads too
    assert pve.ops.readlink("/local") == "nodes/node1"
    assert pve.ops.getattr("/.version")["st_mode"] & 0o777 == 0o440


def test_plugin_names_below_the_root_are_plain_entries(pve: Pve) -> None:
    pve.mkdir("/nodes")
    pve.create("/nodes/.version")
    pve.mkdir("/nodes/local")
    assert sorted(pve.ops.readdir("/nodes", 0)) == sorted([".", "..", ".version", "local"])
    assert pve.ops.readdir("/nodes", 0)[:2] == [".", ".."]


def test_listing_elsewhere(pve: Pve) -> None:
    pve.mkdir("/d")
    pve.create("/d/a")
    pve.mkdir("/d/b")
    pve.create("/f")
    assert pve.ops.readdir("/d", 0)[:2] == [".", ".."]
    assert sorted(pve.ops.readdir("/d", 0)[2:]) == ["a", "b"]
    assert pve.ops.readdir("/d/b", 0) == [".", ".."]
    # never fails for memdb paths: a file or a missing path lists just . and ..
    assert pve.ops.readdir("/f", 0) == [".", ".."]
    assert pve.ops.readdir("/missing", 0) == [".", ".."]
    assert pve.ops.readdir("/missing/deeper", 0) == [".", ".."]


def test_statfs_of_a_fresh_db(pve: Pve) -> None:
    expected = {
        "f_bsize": 4096,
        "f_blocks": 32768,
        "f_bfree": 32768,
        "f_bavail": 32768,
        "f_files": 262144,
        "f_ffree": 262143,
        "f_namemax": 256,
    }
    st = pve.ops.statfs("/")
    assert {k: st[k] for k in expected} == expected
    # the other fields are 0 (fusepy leaves missing keys at 0)
    assert all(v == 0 for k, v in st.items() if k not in expected)
    assert st["f_files"] - st["f_ffree"] == 1


def test_statfs_counts_entries_and_bytes_whatever_the_path(pve: Pve) -> None:
    pve.mkdir("/d")
    pve.write_file("/d/a", b"x" * 5000)
    pve.write_file("/b", b"y" * 100)
    for path in ("/", "/d", "/d/a", "/.version", "/local", "/missing"):
        st = pve.ops.statfs(path)
        assert st["f_ffree"] == 262144 - 4
        assert st["f_bfree"] == st["f_bavail"] == 32768 - 2  # ceil(5100 / 4096)


def test_status_files_open_and_read_in_chunks(pve: Pve) -> None:
    fi = FileInfo()
    size = pve.ops.getattr("/.version")["st_size"]
    pve.ops.open("/.version", fi)
    chunks = [pve.ops.read("/.version", 64, off, fi) for off in range(0, size, 64)]
    assert b"".join(chunks).decode().endswith('"kvstore": {\n"node1": {\n}\n}\n}\n')
