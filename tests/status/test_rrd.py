"""The RRD writer (reference 3.6, 7.3): real librrd files, and a real rrdcached for the daemon path."""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import stat
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rrdtool  # type: ignore[import-not-found]

from lab.probes import wait_until
from status.rrd import RrdWriter, local_midnight
from tests.require import require

START = 1_699_999_200
"""The 'midnight' the writer gets: every new file starts here."""
T1 = START + 600
T2 = T1 + 60

NODE_DS = [
    ("loadavg", "GAUGE"),
    ("maxcpu", "GAUGE"),
    ("cpu", "GAUGE"),
    ("iowait", "GAUGE"),
    ("memtotal", "GAUGE"),
    ("memused", "GAUGE"),
    ("swaptotal", "GAUGE"),
    ("swapused", "GAUGE"),
    ("roottotal", "GAUGE"),
    ("rootused", "GAUGE"),
    ("netin", "DERIVE"),
    ("netout", "DERIVE"),
    ("memavailable", "GAUGE"),
    ("arcsize", "GAUGE"),
    ("pressurecpusome", "GAUGE"),
    ("pressureiosome", "GAUGE"),
    ("pressureiofull", "GAUGE"),
    ("pressurememorysome", "GAUGE"),
    ("pressurememoryfull", "GAUGE"),
]
VM_DS = [
    ("maxcpu", "GAUGE"),
    ("cpu", "GAUGE"),
    ("maxmem", "GAUGE"),
    ("mem", "GAUGE"),
    ("maxdisk", "GAUGE"),
    ("disk", "GAUGE"),
    ("netin", "DERIVE"),
    ("netout", "DERIVE"),
    ("diskread", "DERIVE"),
    ("diskwrite", "DERIVE"),
    ("memhost", "GAUGE"),
    ("pressurecpusome", "GAUGE"),
    ("pressurecpufull", "GAUGE"),
    ("pressureiosome", "GAUGE"),
    ("pressureiofull", "GAUGE"),
    ("pressurememorysome", "GAUGE"),
    ("pressurememoryfull", "GAUGE"),
]
STORAGE_DS = [("total", "GAUGE"), ("used", "GAUGE")]
RRAS = [
    (cf, steps, rows)
    for cf in ("AVERAGE", "MAX")
    for steps, rows in ((1, 1440), (30, 1440), (360, 1440), (10080, 570))
]

NODE_VALUES = [float(v) for v in range(1, 20)]  # 19 distinct values; all integers, so DERIVE takes them
VM_VALUES = [float(v) for v in range(101, 118)]  # 17
STORAGE_VALUES = [1000.0, 250.0]


def nul(text: str) -> bytes:
    return text.encode() + b"\0"


def fields(values: list[float]) -> str:
    return ":".join(str(int(v)) for v in values)


def node_data(ts: int, values: list[float]) -> bytes:
    return nul(f"3600:0:{ts}:{fields(values)}")  # uptime, sublevel are skipped


def vm_data(ts: int, values: list[float]) -> bytes:
    return nul(f"3600:vm100:running:0:{ts}:{fields(values)}")  # uptime, name, status, template


def storage_data(ts: int, values: list[float]) -> bytes:
    return nul(f"{ts}:{fields(values)}")


def last_values(path: Path) -> dict[str, float | None]:
    values: dict[str, float | None] = rrdtool.lastupdate(str(path))["ds"]
    return values


def last_update(path: Path) -> int:
    update: int = rrdtool.info(str(path))["last_update"]
    return update


def dump_xml(path: Path, tmp_path: Path) -> ET.Element:
    """The RRD file as rrdtool's XML dump."""
    out = tmp_path / (path.name + ".xml")
    rrdtool.dump(str(path), str(out))
    return ET.parse(out).getroot()


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(autouse=True)
def _no_env_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """librrd sends even plain calls to $RRDCACHED_ADDRESS: keep "direct" direct."""
    monkeypatch.delenv("RRDCACHED_ADDRESS", raising=False)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "db"
    path.mkdir()
    return path


@pytest.fixture
def writer(base: Path) -> RrdWriter:
    return RrdWriter(str(base), None, midnight=lambda: START)


# ----- file layout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "data", "relpath", "sources"),
    [
        ("pve2-node/n1", node_data(T1, NODE_VALUES[:12]), "pve-node-9.0/n1", NODE_DS),
        ("pve2.3-vm/100", vm_data(T1, VM_VALUES[:10]), "pve-vm-9.0/100", VM_DS),
        ("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES), "pve-storage-9.0/n1/local", STORAGE_DS),
    ],
)
def test_creates_the_file_with_its_layout(
    writer: RrdWriter,
    base: Path,
    tmp_path: Path,
    key: str,
    data: bytes,
    relpath: str,
    sources: list[tuple[str, str]],
) -> None:
    assert writer.update(key, data)
    assert all_files(base) == sorted([relpath, *(str(p) for p in Path(relpath).parents if str(p) != ".")])
    info = rrdtool.info(str(base / relpath))
    assert info["step"] == 60
    names = sorted((info[f"ds[{name}].index"], name) for name, _ in sources)
    assert [name for _, name in names] == [name for name, _ in sources]  # column order
    for name, ds_type in sources:
        assert info[f"ds[{name}].type"] == ds_type
        assert info[f"ds[{name}].minimal_heartbeat"] == 120
    assert {k[3:-7] for k in info if k.startswith("ds[") and k.endswith("].index")} == dict(sources).keys()
    rras = [
        (info[f"rra[{i}].cf"], info[f"rra[{i}].pdp_per_row"], info[f"rra[{i}].rows"])
        for i in range(len(RRAS))
    ]
    assert rras == RRAS
    assert f"rra[{len(RRAS)}].cf" not in info
    # The limits and xff from the dump: Debian 12's python3-rrdtool (binding 0.1.10) leaves every
    # number that is not NaN out of info()'s doubles.
    dumped = dump_xml(base / relpath, tmp_path)
    assert [
        (ds.findtext("name", "").strip(), ds.findtext("min"), ds.findtext("max"))
        for ds in dumped.iter("ds")
        if ds.find("name") is not None
    ] == [(name, "0.0000000000e+00", "NaN") for name, _ in sources]
    assert {rra.findtext("params/xff") for rra in dumped.iter("rra")} == {"5.0000000000e-01"}


def test_directories_are_0750(writer: RrdWriter, base: Path) -> None:
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    old = os.umask(0)
    os.umask(old)
    for directory in (base / "pve-storage-9.0", base / "pve-storage-9.0" / "n1"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o750 & ~old


def test_a_new_file_starts_at_midnight(writer: RrdWriter, base: Path) -> None:
    # an update at the start time itself is refused by librrd, so the file's last update stays there
    assert not writer.update("pve2-storage/n1/local", storage_data(START, STORAGE_VALUES))
    assert last_update(base / "pve-storage-9.0/n1/local") == START
    assert writer.update("pve2-storage/n1/local", storage_data(START + 1, STORAGE_VALUES))


def test_an_existing_file_is_kept(writer: RrdWriter, base: Path) -> None:
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    later = RrdWriter(str(base), None, midnight=lambda: T2 + 3600)  # would refuse T2 if it re-created
    assert later.update("pve2-storage/n1/local", storage_data(T2, [2000.0, 500.0]))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 2000.0, "used": 500.0}


def test_local_midnight_is_today_at_0000() -> None:
    now = time.time()
    midnight = local_midnight()
    local = time.localtime(midnight)
    assert (local.tm_hour, local.tm_min, local.tm_sec) == (0, 0, 0)
    assert midnight <= now < midnight + 25 * 3600  # 25: a day with a DST change


# ----- columns ------------------------------------------------------------------------------


def test_current_formats_are_stored_as_they_are(writer: RrdWriter, base: Path) -> None:
    assert writer.update("pve-node-9.0/n1", node_data(T1, NODE_VALUES))
    assert writer.update("pve-vm-9.0/100", vm_data(T1, VM_VALUES))
    assert writer.update("pve-storage-9.0/n1/local", storage_data(T1, STORAGE_VALUES))
    assert last_values(base / "pve-node-9.0/n1") == dict(
        zip([n for n, _ in NODE_DS], NODE_VALUES, strict=True)
    )
    assert last_values(base / "pve-vm-9.0/100") == dict(zip([n for n, _ in VM_DS], VM_VALUES, strict=True))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}
    assert last_update(base / "pve-node-9.0/n1") == T1


@pytest.mark.parametrize(
    ("key", "data", "relpath", "sources", "values"),
    [
        ("pve2-node/n1", node_data(T1, NODE_VALUES[:12]), "pve-node-9.0/n1", NODE_DS, NODE_VALUES[:12]),
        ("pve2.3-vm/100", vm_data(T1, VM_VALUES[:10]), "pve-vm-9.0/100", VM_DS, VM_VALUES[:10]),
    ],
)
def test_old_formats_are_padded_with_unknown(
    writer: RrdWriter,
    base: Path,
    key: str,
    data: bytes,
    relpath: str,
    sources: list[tuple[str, str]],
    values: list[float],
) -> None:
    assert writer.update(key, data)
    padded: list[float | None] = [*values, *[None] * 7]
    assert last_values(base / relpath) == dict(zip([n for n, _ in sources], padded, strict=True))


def test_old_storage_format_is_unchanged(writer: RrdWriter, base: Path) -> None:
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}


def test_stopped_guest_with_unknown_values(writer: RrdWriter, base: Path) -> None:
    assert writer.update("pve2.3-vm/100", nul(f"0:vm100:stopped:0:{T1}:2:U:4096:U:8192:0:U:U:U:U"))
    values = last_values(base / "pve-vm-9.0/100")
    assert (values["maxcpu"], values["cpu"], values["maxmem"], values["disk"]) == (2.0, None, 4096.0, 0.0)


@pytest.mark.parametrize(
    ("key", "data", "relpath", "values"),
    [
        ("pve-node-9.4/n1", node_data(T1, [*NODE_VALUES, 77, 88]), "pve-node-9.0/n1", NODE_VALUES),
        ("pve-vm-10.0/100", vm_data(T1, [*VM_VALUES, 77]), "pve-vm-9.0/100", VM_VALUES),
        ("pve-storage-9.1/n1/local", storage_data(T1, [*STORAGE_VALUES, 77, 88]), "pve-storage-9.0/n1/local",
         STORAGE_VALUES),
    ],
)  # fmt: skip
def test_newer_formats_are_cut_to_the_known_columns(
    writer: RrdWriter, base: Path, key: str, data: bytes, relpath: str, values: list[float]
) -> None:
    assert writer.update(key, data)
    assert list(last_values(base / relpath).values()) == values
    assert last_update(base / relpath) == T1


def test_newer_format_without_extra_columns_keeps_its_last_character(writer: RrdWriter, base: Path) -> None:
    """Deliberately unlike the original, which would store 250 as 25 here."""
    assert writer.update("pve-storage-9.1/n1/local", storage_data(T1, STORAGE_VALUES))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}


def test_text_after_the_first_nul_is_ignored(writer: RrdWriter, base: Path) -> None:
    assert writer.update("pve2-storage/n1/local", nul(f"{T1}:1000:250") + b"junk\0")
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}


# ----- rejected keys and data ---------------------------------------------------------------

REJECTED_KEYS = [
    "pve2-vm/100",  # plain pve2-vm is not accepted
    "pve2-node/",
    "pve2-node",
    "pve-node-9.0",
    "pve2-node/a/b",
    "pve2-node/..",
    "pve2-node/.",
    "pve-vm-9.0/..",
    "pve2.3-vm/",
    "pve2.3-vm/1/2",
    "pve2-storage/n1",
    "pve2-storage/n1/",
    "pve2-storage//local",
    "pve2-storage/n1/local/x",
    "pve2-storage/../local",
    "pve2-storage/n1/..",
    "pve-storage-9.0/n1/local/../../x",
    "pve2-node//etc/passwd",
    "pve2-node/a b",
    "pve2-node/a\nb",
    "pve2-node/a\0b",
    "pve2-node/\udcff",
    "rrd/pve2-node/n1",
    "pve3-node/n1",
    "pvenode-9.0/n1",
    "",
]


@pytest.mark.allow_error_logs
@pytest.mark.parametrize("key", REJECTED_KEYS)
def test_rejected_keys_write_nothing(
    writer: RrdWriter, base: Path, tmp_path: Path, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = storage_data(T1, STORAGE_VALUES) if "storage" in key else node_data(T1, NODE_VALUES[:12])
    assert writer.update(key, data) is False
    assert all_files(tmp_path) == ["db"]
    criticals = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(criticals) == 1
    assert criticals[0].startswith("RRD update error: unknown/wrong key ")


@pytest.mark.allow_error_logs
@pytest.mark.parametrize(
    "data",
    [b"", b"1700000000:1:2", nul("9" * 4095), b"1700000000:1:2\0x"],
    ids=["empty", "no-nul", "4096-bytes", "nul-not-last"],
)
def test_invalid_data_writes_nothing(
    writer: RrdWriter, tmp_path: Path, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert writer.update("pve2-storage/n1/local", data) is False
    assert all_files(tmp_path) == ["db"]
    assert [r.levelno for r in caplog.records] == [logging.CRITICAL]


def test_largest_valid_data_is_accepted(writer: RrdWriter, base: Path) -> None:
    tail = f":0:{T1}:{fields(NODE_VALUES)}"
    data = nul("9" * (4095 - 1 - len(tail)) + tail)  # a long uptime: skipped anyway
    assert len(data) == 4095
    assert writer.update("pve-node-9.0/n1", data)
    assert list(last_values(base / "pve-node-9.0/n1").values()) == NODE_VALUES


@pytest.mark.parametrize(
    "data",
    [
        b"\0",  # empty text
        nul(f"{T1}:1000"),  # too few
        nul(f"{T1}:1000:250:7"),  # too many for a 9.0 key
        nul(f"{T1}:1000:25\x010"),  # control character
        nul(f"{T1}:1000 :250"),  # space
        f"{T1}:1000:25ä".encode() + b"\0",  # not ASCII
        f"{T1}:1000:250".encode() + b"\xff\0",  # not UTF-8
    ],
    ids=["empty-text", "too-few", "too-many", "control", "space", "non-ascii", "non-utf8"],
)
def test_malformed_values_are_refused_before_the_file_is_made(
    writer: RrdWriter, tmp_path: Path, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert writer.update("pve-storage-9.0/n1/local", data) is False
    assert all_files(tmp_path) == ["db"]
    assert [(r.levelno, r.getMessage().startswith("RRD update error ")) for r in caplog.records] == [
        (logging.WARNING, True)
    ]


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("pve-storage-9.0/n1/local", storage_data(T1, STORAGE_VALUES), nul(f"{T2}:x:250")),
        ("pve-storage-9.0/n1/local", storage_data(T1, STORAGE_VALUES), nul(f"{T2}::250")),
        ("pve-storage-9.0/n1/local", storage_data(T1, STORAGE_VALUES), nul("soon:1000:250")),
        (
            "pve-vm-9.0/100",
            vm_data(T1, VM_VALUES),
            nul(f"1:vm:running:0:{T2}:1:2:3:4:5:6:1e3:{fields(VM_VALUES[7:])}"),
        ),
    ],
    ids=["letters", "empty-field", "bad-timestamp", "exponent-in-derive"],  # GAUGE takes 1e3, DERIVE doesn't
)
def test_values_librrd_refuses_are_logged_and_not_stored(
    writer: RrdWriter, base: Path, key: str, good: bytes, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """librrd reads a value only within the heartbeat (120 s) of the last update, hence T1, then T2."""
    assert writer.update(key, good)
    path = base / ("pve-storage-9.0/n1/local" if "storage" in key else "pve-vm-9.0/100")
    assert writer.update(key, bad) is False
    assert last_update(path) == T1  # (librrd may keep the raw readings it parsed before the bad one)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert messages[0].startswith(f"RRD update error {path}: ")


def test_values_reach_the_archives(writer: RrdWriter, base: Path) -> None:
    for ts in (T1, T2, T2 + 60, T2 + 120):
        assert writer.update("pve2-storage/n1/local", storage_data(ts, STORAGE_VALUES))
    (start, end, step), names, rows = rrdtool.fetch(
        str(base / "pve-storage-9.0/n1/local"), "AVERAGE", "-r", "60", "-s", str(T1), "-e", str(T2 + 120)
    )
    assert (step, names) == (60, ("total", "used"))
    by_time = dict(zip(range(start + step, end + step, step), rows, strict=True))
    assert [by_time[t] for t in (T2 + 60, T2 + 120)] == [(1000.0, 250.0), (1000.0, 250.0)]


def test_an_old_timestamp_is_refused(writer: RrdWriter, base: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert writer.update("pve2-storage/n1/local", storage_data(T2, STORAGE_VALUES))
    assert not writer.update("pve2-storage/n1/local", storage_data(T1, [1.0, 2.0]))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}
    assert "illegal attempt to update" in caplog.text


def test_a_missing_base_directory_is_made(tmp_path: Path) -> None:
    writer = RrdWriter(str(tmp_path / "missing" / "db"), None, midnight=lambda: START)
    assert writer.update("pve2-node/n1", node_data(T1, NODE_VALUES[:12]))
    assert all_files(tmp_path) == [
        "missing",
        "missing/db",
        "missing/db/pve-node-9.0",
        "missing/db/pve-node-9.0/n1",
    ]
    assert (tmp_path / "missing" / "db").stat().st_mode & 0o777 == 0o755


def test_a_base_that_cannot_be_made_is_a_create_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    writer = RrdWriter(str(tmp_path / "file" / "db"), None, midnight=lambda: START)
    assert not writer.update("pve2-node/n1", node_data(T1, NODE_VALUES[:12]))
    assert all_files(tmp_path) == ["file"]
    assert "RRD create error" in caplog.text


def test_a_directory_in_place_of_the_file_is_an_update_error(writer: RrdWriter, base: Path) -> None:
    (base / "pve-node-9.0" / "n1").mkdir(parents=True)
    assert not writer.update("pve2-node/n1", node_data(T1, NODE_VALUES[:12]))
    assert all_files(base) == ["pve-node-9.0", "pve-node-9.0/n1"]


@pytest.mark.allow_error_logs
def test_random_input_never_raises_nor_escapes(
    writer: RrdWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(20240601)
    alphabet = "pve2-nodestorage.3/9:0U\0\n .."
    written = set()
    for _ in range(300):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        assert writer.update(key, data) in (True, False)
        assert writer.update("pve2-storage/n1/local", data) in (True, False)
        key = rng.choice(["pve2-node/n", "pve-vm-9.0/", "pve2-storage/n/", "pve-storage-x/"]) + key
        assert writer.update(key, nul(f"{T1}:1:2")) in (True, False)
        written.update(all_files(tmp_path))
    assert all(name == "db" or name.startswith("db/") for name in written)
    assert any(name.startswith("db/pve-storage-9.0/") for name in written)  # some did pass
    assert not [r for r in caplog.records if r.levelno == logging.ERROR]  # no bug caught at the boundary


# ----- rrdcached ----------------------------------------------------------------------------


def _rrdcached_accepts(sock: Path, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"rrdcached exited with {proc.returncode}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(sock))
        except OSError:
            return False
    return True


@pytest.fixture
def rrdcached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], str]]:
    """Start an rrdcached serving files under a directory; returns its address.

    It keeps updates for an hour (-w 3600), so what reaches a file before a flush did not go
    through it. The socket lives in a short directory: a unix socket path has at most 107 bytes.
    """
    binary = shutil.which("rrdcached")
    require([] if binary else ["rrdcached"], "rrdcached tests")
    assert binary is not None
    procs: list[subprocess.Popen[bytes]] = []

    def start(served: Path) -> str:
        run = tmp_path_factory.mktemp("rrdc")
        sock = run / "sock"
        (run / "journal").mkdir()
        args = [binary, "-g", "-l", f"unix:{sock}", "-b", str(served), "-B", "-F", "-w", "3600", "-z", "0"]
        args += ["-j", str(run / "journal"), "-p", str(run / "pid")]
        with open(run / "log", "wb") as log_file:
            proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_until(lambda: _rrdcached_accepts(sock, proc), 10, lambda: (run / "log").read_text())
        return f"unix:{sock}"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def test_update_goes_through_rrdcached(base: Path, rrdcached: Callable[[Path], str]) -> None:
    address = rrdcached(base)
    writer = RrdWriter(str(base), address, midnight=lambda: START)
    path = base / "pve-storage-9.0/n1/local"
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    assert writer.update("pve2-storage/n1/local", storage_data(T2, [2000.0, 500.0]))
    assert last_update(path) == START  # created directly, the updates wait in the daemon
    rrdtool.flushcached("--daemon", address, str(path))
    assert last_update(path) == T2
    assert last_values(path) == {"total": 2000.0, "used": 500.0}


def test_a_wrong_column_count_never_reaches_rrdcached(base: Path, rrdcached: Callable[[Path], str]) -> None:
    address = rrdcached(base)
    writer = RrdWriter(str(base), address, midnight=lambda: START)
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    assert not writer.update("pve2-storage/n1/local", storage_data(T2, [1.0]))
    # had the daemon cached the bad update at T2, it would refuse this one as not newer
    assert writer.update("pve2-storage/n1/local", storage_data(T2, [2000.0, 500.0]))
    path = base / "pve-storage-9.0/n1/local"
    rrdtool.flushcached("--daemon", address, str(path))
    assert last_values(path) == {"total": 2000.0, "used": 500.0}


def test_a_dead_socket_falls_back_to_librrd(
    base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RrdWriter(str(base), f"unix:{tmp_path}/no-such.sock", midnight=lambda: START)
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}
    assert caplog.records == []  # no daemon is no error, as in the original


def test_a_refusing_rrdcached_falls_back_to_librrd(
    base: Path, tmp_path: Path, rrdcached: Callable[[Path], str], caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    address = rrdcached(other)  # -B: it refuses files outside its own directory
    writer = RrdWriter(str(base), address, midnight=lambda: START)
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    assert last_values(base / "pve-storage-9.0/n1/local") == {"total": 1000.0, "used": 250.0}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("RRDC update error ")
    assert "Permission denied" in warnings[0]


def test_rrdcached_gone_after_a_write_falls_back(base: Path, rrdcached: Callable[[Path], str]) -> None:
    address = rrdcached(base)
    writer = RrdWriter(str(base), address, midnight=lambda: START)
    assert writer.update("pve2-storage/n1/local", storage_data(T1, STORAGE_VALUES))
    sock = Path(address.removeprefix("unix:"))
    sock.unlink()  # the daemon no longer answers there; librrd's old connection is still open
    assert writer.update("pve2-storage/n1/local", storage_data(T2, [2000.0, 500.0]))
    assert last_update(base / "pve-storage-9.0/n1/local") == T2  # written directly


def test_only_unix_addresses() -> None:
    with pytest.raises(ValueError, match="unix"):
        RrdWriter("/tmp", "localhost:42217")
