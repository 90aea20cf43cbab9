"""Who this node is: its name from the command line, corosync's nodelist, or the host name."""

from __future__ import annotations

import logging
import socket

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


def resolve_node_ip(nodename: str) -> str | None:
    """The first address of ``nodename`` that is not loopback (127.* or ::1), as the original.

    None when the name does not resolve to such an address: the original refuses to start
    then; this daemon logs it and, in cluster mode, announces its corosync ring0_addr instead.
    """
    try:
        infos = socket.getaddrinfo(nodename, None, flags=socket.AI_V4MAPPED | socket.AI_ALL)
    except (OSError, UnicodeError) as exc:
        log.warning("unable to resolve node name '%s': %s", nodename, exc)
        return None
    for family, _, _, _, sockaddr in infos:
        address = str(sockaddr[0])
        if (family == socket.AF_INET and not address.startswith("127.")) or (
            family == socket.AF_INET6 and address != "::1"
        ):
            log.info("resolved node name '%s' to '%s' for default node IP address", nodename, address)
            return address
    log.warning(
        "Unable to resolve node name '%s' to a non-loopback IP address"
        " - missing entry in '/etc/hosts' or DNS?",
        nodename,
    )
    return None
