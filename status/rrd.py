"""RRD files for the ``rrd/<key>`` status updates (status.c update_rrd_data, reference 3.6, 7.3).

Every node writes the files for every node's data it receives: one file per node, guest and
storage under ``/var/lib/rrdcached/db``, through rrdcached when it answers, else with librrd.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import rrdtool  # type: ignore[import-not-found]  # the binding ships no stubs; only _call uses it

log = logging.getLogger(__name__)

RRD_BASE_DIR = "/var/lib/rrdcached/db"
"""RRDDIR: the files live here, where rrdcached expects them."""
RRDCACHED_ADDRESS = "unix:/var/run/rrdcached.sock"
"""The rrdcached socket the original tries on every update."""
MAX_DATA_SIZE = 4096
"""An rrd value is shorter than this, its NUL included (status.c)."""
CURRENT_VERSION = "9.0"
"""Keys ``pve-<type>-9.0/`` carry exactly the columns of the files written here."""
STEP_S = 60
HEARTBEAT_S = 120
BASE_DIR_MODE = 0o755
"""A missing base directory is made with this mode."""
DIR_MODE = 0o750
_RRAS = tuple(
    f"RRA:{cf}:0.5:{steps}:{rows}"
    for cf in ("AVERAGE", "MAX")
    for steps, rows in ((1, 1440), (30, 1440), (360, 1440), (10080, 570))
)
_PROBE_TIMEOUT_S = 1.0

_binding_lock = threading.Lock()
"""The binding keeps each call's argument vector in a global while librrd runs without the GIL,
so two threads calling it at once corrupt each other: every call here holds this lock."""


def _sources(ds_type: str, names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, ds_type) for name in names.split())


@dataclass(frozen=True, slots=True)
class RrdKind:
    """One kind of RRD data: its key prefixes, leading fields and file layout."""

    name: str
    """``node``, ``vm`` or ``storage``: the ``<type>`` of ``pve-<type>-<version>/`` keys."""
    legacy_prefix: str
    """The key prefix of the PVE 8 format (``pve2-node/``)."""
    skip: int
    """Leading live fields (uptime, status, ...) that are not archived."""
    legacy_pad: int
    """``U`` columns appended to legacy data: the columns PVE 9 added."""
    id_parts: int
    """Non-empty parts of the id after the first ``/``: 2 for ``<node>/<storage>``."""
    sources: tuple[tuple[str, str], ...]
    """(name, GAUGE or DERIVE) of every data source, in column order."""

    @property
    def prefix(self) -> str:
        """The prefix of every ``pve-<type>-<version>/`` key."""
        return f"pve-{self.name}-"

    @property
    def directory(self) -> str:
        """The directory of the files, under the base directory."""
        return f"pve-{self.name}-{CURRENT_VERSION}"

    def definition(self) -> tuple[str, ...]:
        """The DS and RRA arguments of ``rrdtool create``."""
        sources = tuple(f"DS:{name}:{ds_type}:{HEARTBEAT_S}:0:U" for name, ds_type in self.sources)
        return sources + _RRAS


_NODE_SOURCES = (
    _sources("GAUGE", "loadavg maxcpu cpu iowait memtotal memused swaptotal swapused roottotal rootused")
    + _sources("DERIVE", "netin netout")
    + _sources("GAUGE", "memavailable arcsize pressurecpusome pressureiosome pressureiofull")
    + _sources("GAUGE", "pressurememorysome pressurememoryfull")
)
_VM_SOURCES = (
    _sources("GAUGE", "maxcpu cpu maxmem mem maxdisk disk")
    + _sources("DERIVE", "netin netout diskread diskwrite")
    + _sources("GAUGE", "memhost pressurecpusome pressurecpufull pressureiosome pressureiofull")
    + _sources("GAUGE", "pressurememorysome pressurememoryfull")
)
NODE = RrdKind("node", "pve2-node/", skip=2, legacy_pad=7, id_parts=1, sources=_NODE_SOURCES)
VM = RrdKind("vm", "pve2.3-vm/", skip=4, legacy_pad=7, id_parts=1, sources=_VM_SOURCES)
STORAGE = RrdKind(
    "storage", "pve2-storage/", skip=0, legacy_pad=0, id_parts=2, sources=_sources("GAUGE", "total used")
)
KINDS = (NODE, VM, STORAGE)


class Form(enum.Enum):
    """Which generation of columns a key announces."""

    LEGACY = enum.auto()
    """``pve2-node/``, ``pve2.3-vm/``, ``pve2-storage/``: padded with ``U``."""
    CURRENT = enum.auto()
    """``pve-<type>-9.0/``: used as it is."""
    NEWER = enum.auto()
    """Any other ``pve-<type>-<version>/``: newer versions only append columns, so cut them off."""


@dataclass(frozen=True, slots=True)
class RrdTarget:
    """Where and how one key's data is written."""

    kind: RrdKind
    form: Form
    parts: tuple[str, ...]
    """The file's path under the base directory, one component each (directories first)."""

    def update_string(self, text: str) -> str:
        """``<ctime>:<values...>`` from the received fields: skip, then pad or cut the columns.

        For a newer format the original cuts the text after the expected number of colons and,
        when there are no extra columns, cuts the last character instead (QUIRK, reference
        3.6): "...:123" would be stored as "...:12". We do not copy that: we keep the first
        fields by count, so a newer key with exactly the expected columns is stored unchanged.
        """
        fields = text.split(":")[self.kind.skip :]
        if self.form is Form.LEGACY:
            fields += ["U"] * self.kind.legacy_pad
        elif self.form is Form.NEWER:
            fields = fields[: 1 + len(self.kind.sources)]
        return ":".join(fields)


def resolve_key(key: str) -> RrdTarget | None:
    """The target of an rrd key (without ``rrd/``), or None for an unknown or wrong key.

    Beyond the original's checks (a known prefix, the right number of non-empty id parts) an id
    part must not be ``.`` or ``..`` and must be printable without whitespace: no file may land
    outside its directory, and the rrdcached protocol is split on spaces and lines.
    """
    for kind in KINDS:
        if key.startswith(kind.legacy_prefix):
            form = Form.LEGACY
        elif key.startswith(f"{kind.prefix}{CURRENT_VERSION}/"):
            form = Form.CURRENT
        elif key.startswith(kind.prefix):
            form = Form.NEWER
        else:
            continue
        _, slash, ident = key.partition("/")
        parts = ident.split("/")
        if not slash or len(parts) != kind.id_parts or not all(_valid_part(p) for p in parts):
            return None
        return RrdTarget(kind, form, (kind.directory, *parts))
    return None


def _valid_part(part: str) -> bool:
    return part not in ("", ".", "..") and part.isprintable() and not any(c.isspace() for c in part)


def _check_update(update: str, kind: RrdKind) -> str | None:
    """Why librrd or rrdcached would refuse this update string, or None if it may go out.

    rrdcached takes a wrong column count into its cache and drops it only when it writes the
    file, so the count is checked here, with librrd's rule; the values are left to librrd.
    """
    if not all("!" <= c <= "~" for c in update):
        return "not printable ASCII"
    got = update.count(":")
    if got != len(kind.sources):
        return f"expected {len(kind.sources)} data source readings (got {got})"
    return None


def local_midnight() -> int:
    """Today's local midnight as a Unix time: the start of a new file."""
    now = time.localtime()
    return int(time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1)))


def _call(function: Callable[..., object], *args: str) -> None:
    """Call one binding function under the lock; it raises rrdtool.OperationalError.

    The binding crashes the process on a string that UTF-8 can't encode, and C would cut one
    at a NUL: the callers' checks keep both out, this one makes sure.
    """
    for arg in args:
        if "\0" in arg or not _utf8(arg):
            raise ValueError(f"not passed to librrd: {arg!r}")
    with _binding_lock:
        function(*args)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(key: str) -> str:
    return key if key.isprintable() else ascii(key)


class RrdWriter:
    """Writes the RRD file of each ``rrd/<key>`` update; pure of actors, one thread at a time.

    Files are created directly with librrd, as the original does, even when rrdcached runs: a
    missing file has nothing cached, rrdcached refuses updates of files that don't exist, and
    creating directly also works while the daemon is down.
    """

    def __init__(
        self,
        base_dir: str = RRD_BASE_DIR,
        daemon_address: str | None = RRDCACHED_ADDRESS,
        *,
        midnight: Callable[[], int] = local_midnight,
    ) -> None:
        """Set up a writer.

        Args:
            base_dir: the directory of the ``pve-<type>-9.0`` directories (made when missing).
            daemon_address: rrdcached's ``unix:<path>``, or None to write with librrd only.
            midnight: the start time of new files.

        Raises:
            ValueError: the address is not ``unix:<path>``, or a path is not valid UTF-8.
        """
        if daemon_address is not None and not (daemon_address.startswith("unix:/") and _utf8(daemon_address)):
            raise ValueError(f"rrdcached address must be unix:<absolute path>: {daemon_address!r}")
        if not _utf8(base_dir) or "\0" in base_dir:
            raise ValueError(f"base directory must be valid UTF-8 without NUL: {base_dir!r}")
        self._base_dir = os.path.abspath(base_dir)
        self._daemon = daemon_address
        self._midnight = midnight

    def update(self, key: str, data: bytes) -> bool:
        """Write one update of ``key`` (without ``rrd/``); True once librrd or rrdcached took it.

        ``data`` is the value as received: colon-separated fields ending with a NUL, shorter
        than 4096 bytes. Never raises: an unknown or wrong key or invalid data is logged as
        critical, a refused write as a warning (the original: notice), and False returned.
        """
        try:
            return self._update(key, data)
        except Exception:  # a bug here must not stop the status actor (a tell handler)
            log.exception("RRD update error: %s", _printable(key))
            return False

    def _update(self, key: str, data: bytes) -> bool:
        if not 0 < len(data) < MAX_DATA_SIZE or data[-1] != 0:
            log.critical("RRD update error: invalid data for %s (%d bytes)", _printable(key), len(data))
            return False
        target = resolve_key(key)
        if target is None:
            log.critical("RRD update error: unknown/wrong key %s", _printable(key))
            return False
        path = os.path.join(self._base_dir, *target.parts)
        text = data[: data.index(0)].decode("ascii", "surrogateescape")
        update = target.update_string(text)
        problem = _check_update(update, target.kind)
        if problem is not None:
            log.warning("RRD update error %s: %s", path, problem)
            return False
        if not os.path.exists(path) and not self._create(path, target):
            return False
        return self._write(path, update)

    def _create(self, path: str, target: RrdTarget) -> bool:
        """Make the missing directories (0750) and the file, starting at midnight; never overwrite.

        A missing base directory is made too (0755, as the rrdcached package ships it), so that a
        node without rrdcached installed still keeps its RRD files.
        """
        try:
            os.makedirs(self._base_dir, BASE_DIR_MODE, exist_ok=True)
            directory = self._base_dir
            for part in target.parts[:-1]:
                directory = os.path.join(directory, part)
                if not os.path.isdir(directory):
                    os.mkdir(directory, DIR_MODE)
            start = str(self._midnight())
            definition = target.kind.definition()
            _call(
                rrdtool.create, path, "--start", start, "--step", str(STEP_S), "--no-overwrite", *definition
            )
        except (OSError, rrdtool.OperationalError) as exc:
            log.warning("RRD create error %s: %s", path, exc)
            return False
        return True

    def _write(self, path: str, update: str) -> bool:
        """Through rrdcached if it answers; on its refusal, or without it, with librrd directly.

        The binding reports success when librrd can't even connect to rrdcached (a positive
        status), so the socket is probed first, as the original's rrdc_connect does. Should the
        daemon die between the probe and the update, that one update is lost unnoticed.
        """
        if self._daemon is not None and _daemon_answers(self._daemon):
            try:
                _call(rrdtool.update, path, "--daemon", self._daemon, "--", update)
            except rrdtool.OperationalError as exc:
                log.warning("RRDC update error %s: %s", path, exc)
            else:
                return True
        try:
            _call(rrdtool.update, path, "--", update)  # "--": data is never an option
        except rrdtool.OperationalError as exc:
            log.warning("RRD update error %s: %s", path, exc)
            return False
        return True


def _daemon_answers(address: str) -> bool:
    """Whether rrdcached accepts a connection on ``unix:<path>``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_PROBE_TIMEOUT_S)
        try:
            probe.connect(address.removeprefix("unix:"))
        except OSError:
            return False
    return True
