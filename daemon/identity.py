"""Who this node is: its name from the command line, corosync's nodelist, or the host name."""

from __future__ import annotations

import logging

from bindings.libcmap import CmapHandle
from daemon.options import default_nodename
from errors import CsError

log = logging.getLogger(__name__)


def nodename_from_corosync() -> str | None:
    """The nodelist name of corosync's local node id, if corosync runs and knows it."""
    cmap = CmapHandle()
    try:
        cmap.initialize()
    except (CsError, ImportError):  # corosync not running, or not even installed
        return None
    try:
        local = cmap.get_uint32("runtime.votequorum.this_node_id")
        names = {node.nodeid: node.name for node in cmap.nodelist()}
    except CsError as exc:
        log.debug("no node name from corosync: %s", exc)
        return None
    finally:
        cmap.finalize()
    return names.get(local)


def resolve_nodename(explicit: str | None, *, local_mode: bool) -> str:
    """--nodename, else (unless -l) the nodelist entry of the local node id, else the host name."""
    if explicit:
        return explicit
    if not local_mode:
        name = nodename_from_corosync()
        if name:
            return name
    return default_nodename()
