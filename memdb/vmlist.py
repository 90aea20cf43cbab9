"""The vmlist: which node owns which guest, with the versions clients cache by."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from memdb.paths import VM_TYPE_FOR_DIR, is_valid_nodename, parse_vmid_filename
from memdb.records import VmInfo, VmListSnapshot

if TYPE_CHECKING:
    from memdb.entry import Entry

log = logging.getLogger(__name__)

_DIR_FOR_TYPE = {vmtype: folder for folder, vmtype in VM_TYPE_FOR_DIR.items()}


class VmList:
    """Map vmid -> (node, type, version), plus the list-wide version counter.

    ``version`` goes up on every register, remove and full rebuild. Each (re)insert takes
    the next value of one process-wide counter, so per-guest versions never repeat.
    """

    def __init__(self) -> None:
        self.version = 0
        self._counter = 0
        self._vms: dict[int, VmInfo] = {}

    def get(self, vmid: int) -> VmInfo | None:
        """The guest with this vmid, if any."""
        return self._vms.get(vmid)

    def conflicts(self, vmid: int, node: str, vmtype: str) -> bool:
        """True if vmid belongs to another node or another guest type."""
        vm = self._vms.get(vmid)
        return vm is not None and (vm.node != node or vm.vmtype != vmtype)

    def register(self, vmid: int, node: str, vmtype: str) -> None:
        """Insert or replace a guest, giving it a new per-guest version."""
        self._insert(vmid, node, vmtype)
        self.version += 1

    def remove(self, vmid: int) -> None:
        """Drop a guest by vmid, whichever node it points to."""
        self._vms.pop(vmid, None)
        self.version += 1

    def rebuild(self, root: Entry) -> bool:
        """Recreate the list from nodes/*/{qemu-server,lxc,openvz}/<vmid>.conf.

        Returns False on a duplicate VMID or a guest folder that is not a directory (each
        logged); the list is replaced anyway (the first guest found wins).
        """
        problems = self.rebuild_report(root)
        for path, reason in problems:
            log.critical("%s: %s", path, reason)
        return not problems

    def rebuild_report(self, root: Entry) -> list[tuple[str, str]]:
        """``rebuild`` without logging: the (path, reason) of each problem found."""
        nodes = root.child("nodes")
        if nodes is None or not nodes.is_dir:
            return []
        self._vms = {}
        problems: list[tuple[str, str]] = []
        for node in nodes.children_view():
            if not node.is_dir or not is_valid_nodename(node.name):
                continue
            for folder, vmtype in VM_TYPE_FOR_DIR.items():
                self._scan_folder(node, folder, vmtype, problems)
        self.version += 1
        return problems

    def _scan_folder(self, node: Entry, folder: str, vmtype: str, problems: list[tuple[str, str]]) -> None:
        guests = node.child(folder)
        if guests is None:
            return
        if not guests.is_dir:
            problems.append((f"nodes/{node.name}/{folder}", "guest folder is not a directory"))
            return
        for entry in guests.children_view():
            vmid = parse_vmid_filename(entry.name)
            if entry.is_dir or vmid is None:
                continue
            first = self._vms.get(vmid)
            if first is not None:
                where = f"nodes/{first.node}/{_DIR_FOR_TYPE[first.vmtype]}/{entry.name}"
                reason = f"detected duplicate VMID {vmid} (also {where})"
                problems.append((f"nodes/{node.name}/{folder}/{entry.name}", reason))
                continue
            self._insert(vmid, node.name, vmtype)

    def _insert(self, vmid: int, node: str, vmtype: str) -> None:
        self._counter += 1
        self._vms[vmid] = VmInfo(vmid=vmid, node=node, vmtype=vmtype, version=self._counter)

    def snapshot(self) -> VmListSnapshot:
        """An immutable copy for the status files."""
        return VmListSnapshot(version=self.version, vms=tuple(self._vms.values()))
