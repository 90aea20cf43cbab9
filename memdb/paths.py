"""Path rules of the tree: splitting, reserved names, private paths, locks, guest configs.

Every path here is a *memdb path*: relative, without the leading slash the kernel gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOCK_DIR = "priv/lock"
"""Directories directly below this one are cluster-wide locks."""

VM_TYPE_FOR_DIR: dict[str, str] = {"qemu-server": "qemu", "lxc": "lxc", "openvz": "openvz"}
"""Guest config folders below nodes/<node>/ and the guest type each one holds."""

_LDH = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
_VMID = re.compile(r"([1-9][0-9]*)\.conf\Z")
_MAX_VMID = 0xFFFFFFFF


def components(path: str) -> list[str]:
    """Split a path on '/', dropping empty parts (so 'a//b' and '/a/b' are 'a/b').

    The whole path '.' is the root; inside a longer path '.' and '..' are literal names.
    """
    if path.strip("/") == ".":
        return []
    return [part for part in path.split("/") if part]


def split_parent(path: str) -> tuple[str, str]:
    """Split into (dirname, basename) the way glib does, after stripping slashes.

    The dirname of 'x' is '.', and both halves of '' are '.'.
    """
    stripped = path.strip("/")
    if not stripped:
        return ".", "."
    head, sep, tail = stripped.rpartition("/")
    if not sep:
        return ".", tail
    return head.rstrip("/"), tail


def is_reserved_name(name: str) -> bool:
    """True for basenames that can never be created: '', '.' and '..'."""
    return name in ("", ".", "..")


def is_private(path: str) -> bool:
    """True for priv, priv/..., nodes/<any>/priv and nodes/<any>/priv/... ."""
    rel = path.lstrip("/")
    if rel == "priv" or rel.startswith("priv/"):
        return True
    if not rel.startswith("nodes/"):
        return False
    rest = rel[len("nodes/") :]
    _, sep, tail = rest.partition("/")
    return bool(sep) and (tail == "priv" or tail.startswith("priv/"))


def is_lockdir_path(path: str) -> bool:
    """path_is_lockdir: below priv/lock/ at any depth, with at least one more character."""
    rel = path.lstrip("/")
    return rel.startswith(LOCK_DIR + "/") and len(rel) > len(LOCK_DIR) + 1


def is_valid_nodename(name: str) -> bool:
    """The LDH rule for node names in guest config paths (no dots)."""
    return bool(_LDH.match(name))


@dataclass(frozen=True, slots=True)
class VmConfigPath:
    """A path of the form nodes/<node>/<qemu-server|lxc|openvz>/<vmid>.conf."""

    node: str
    vmtype: str
    vmid: int


def parse_vmid_filename(name: str) -> int | None:
    """The VMID of '<vmid>.conf' (no leading zero, fits in u32), else None."""
    match = _VMID.match(name)
    if not match:
        return None
    vmid = int(match.group(1))
    return vmid if vmid <= _MAX_VMID else None


def parse_vm_config_path(path: str) -> VmConfigPath | None:
    """Recognise a guest config path; anything else (deeper, other names) gives None."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "nodes":
        return None
    _, node, folder, filename = parts
    vmtype = VM_TYPE_FOR_DIR.get(folder)
    if vmtype is None or not is_valid_nodename(node):
        return None
    vmid = parse_vmid_filename(filename)
    if vmid is None:
        return None
    return VmConfigPath(node=node, vmtype=vmtype, vmid=vmid)


_OPENVZ_SCRIPT = re.compile(r"(?:vps|[1-9][0-9]*)\.(?:mount|umount|start|stop|premount|postumount)\Z")


def is_openvz_script(name: str) -> bool:
    """OpenVZ action scripts get the owner execute bit."""
    return bool(_OPENVZ_SCRIPT.match(name))
