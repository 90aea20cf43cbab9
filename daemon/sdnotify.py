"""sd_notify: tell systemd that the service is ready or stopping (a unit with Type=notify).

The protocol is one datagram of newline-separated ``KEY=VALUE`` lines to the unix socket named
by ``$NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace (sd_notify(3)).
Without ``$NOTIFY_SOCKET`` (not started by systemd, or Type=forking) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

ENV = "NOTIFY_SOCKET"


def socket_address() -> str | None:
    """The socket systemd listens on, in the form ``connect`` takes; None if there is none."""
    name = os.environ.get(ENV, "")
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    if name:
        log.warning("unsupported %s address %r: no notifications sent", ENV, name)
    return None


def notify(*states: str) -> bool:
    """Send ``states`` (e.g. "READY=1") in one datagram; True if it was sent.

    A failure is logged, never raised: systemd then sees no readiness and handles the
    timeout itself.
    """
    address = socket_address()
    if address is None:
        return False
    payload = "\n".join(states).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload)
    except OSError as exc:
        log.warning("sd_notify %s failed: %s", " ".join(states), exc)
        return False
    log.debug("sd_notify: %s", " ".join(states))
    return True
