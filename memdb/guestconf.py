r"""Guest config property lookup for the IPC requests 11 and 13 (pure; bytes in, bytes out).

Follows pve-cluster ``status.c`` (``cfs_create_guest_conf_properties_msg`` and its helpers),
quirks included, because the Perl tools parse the result:

* Only the main section counts: the scan ends at the first line starting with ``[``.
* A property line is ``<prop>:<value>`` from column 0; the value is trimmed of ASCII white
  space on both sides, and a value that is only white space keeps its last character.
* Scanning also ends once the properties found a second time are as many as the requested
  properties (C counts repeats, not first finds): with one property its second occurrence
  wins and later ones are not seen; a repeat otherwise overrides the earlier value.
* Values escape only ``\`` and ``"``; property names are printed as given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from errors import GuestConfigUnreadable, InvalidArgument, NotFound
from memdb.paths import VM_TYPE_FOR_DIR

if TYPE_CHECKING:
    from memdb.records import VmInfo, VmListSnapshot

DIR_FOR_TYPE = {vmtype: folder for folder, vmtype in VM_TYPE_FOR_DIR.items()}
"""Guest type -> its config folder below nodes/<node>/ (C: ``vminfo_to_path``)."""

_SPACE = frozenset(b" \t\n\v\f\r")
"""C ``isspace`` in the C locale."""


def config_path(vm: VmInfo) -> str:
    """nodes/<node>/<qemu-server|lxc|openvz>/<vmid>.conf."""
    return f"nodes/{vm.node}/{DIR_FOR_TYPE[vm.vmtype]}/{vm.vmid}.conf"


def property_value(line: bytes, prop: bytes) -> bytes | None:
    """The value if ``line`` (without its newline) sets ``prop``, else None."""
    start = len(prop) + 1
    if len(line) <= start or line[len(prop)] != ord(":") or not line.startswith(prop):
        return None
    end = len(line) - 1  # the last character, inclusive
    while start < end and line[start] and line[start] in _SPACE:
        start += 1
    if not line[start]:
        return None
    while end > start and line[end] in _SPACE:
        end -= 1
    return line[start : end + 1].split(b"\0", 1)[0]  # C prints up to the first NUL


def find_properties(conf: bytes, props: Sequence[bytes]) -> list[bytes | None]:
    """The value of each property in the main section of ``conf`` (None: not found).

    Only newline-terminated lines are looked at (the caller appends a missing newline).
    """
    found: list[bytes | None] = [None] * len(props)
    repeats = 0
    start = 0
    while (end := conf.find(b"\n", start)) >= 0:
        line = conf[start:end]
        start = end + 1
        if not line or not line[0]:
            continue
        if line[0] == ord("["):
            break  # a snapshot or the pending section
        for i, prop in enumerate(props):
            value = property_value(line, prop)
            if value is not None:
                repeats += found[i] is not None
                found[i] = value
        if repeats == len(props):
            break
    return found


def _escape(value: bytes) -> bytes:
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


def render(results: Iterable[tuple[int, Sequence[bytes | None]]], props: Sequence[bytes]) -> bytes:
    r"""``{\n"<vmid>":{"<p>": "<v>",...},\n...\n}\n`` for the guests with any property found."""
    guests = []
    for vmid, values in results:
        pairs = [b'"%s": "%s"' % (p, _escape(v)) for p, v in zip(props, values, strict=True) if v is not None]
        if pairs:
            guests.append(b'"%d":{%s}' % (vmid, b",".join(pairs)))
    return b"{\n" + b",\n".join(guests) + b"\n}\n"


def _terminated(conf: bytes) -> bytes:
    return conf if conf.endswith(b"\n") else conf + b"\n"


def guest_properties(
    vmid: int,
    props: Sequence[bytes],
    vmlist: VmListSnapshot,
    read_config: Callable[[str], bytes | None],
) -> bytes:
    """The answer to GET_GUEST_CONFIG_PROPERTY/PROPERTIES for ``vmid`` (0: every guest).

    Guests come from ``vmlist``, in its order; ``read_config`` answers a config's bytes, or
    None when the file is missing. Empty configs count as unreadable, as in C.

    Raises:
        NotFound: ``vmid`` is not 0 and not in the vmlist (checked first, as C does).
        InvalidArgument: no properties (the request's list was malformed).
        GuestConfigUnreadable: the one requested guest's config is missing or empty.
    """
    vm = next((guest for guest in vmlist.vms if guest.vmid == vmid), None) if vmid else None
    if vmid and vm is None:
        raise NotFound(str(vmid), "no such guest in the vmlist")
    if not props:
        raise InvalidArgument("properties", "none given, or a malformed list")
    if vm is not None:
        conf = read_config(config_path(vm))
        if not conf:
            raise GuestConfigUnreadable(config_path(vm), "missing or empty")
        return render([(vmid, find_properties(_terminated(conf), props))], props)
    results = []
    for guest in vmlist.vms:
        conf = read_config(config_path(guest))
        if conf:  # unreadable configs are skipped when listing every guest
            results.append((guest.vmid, find_properties(_terminated(conf), props)))
    return render(results, props)
