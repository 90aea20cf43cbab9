"""``health``: the running daemon's health report, fetched over its IPC service.

The same JSON as ``/etc/pve/.health``, with the path of the last refused change whole even
below ``priv/`` (the file, readable by www-data, hides those names). The daemon answers only
root:root clients (our request GET_HEALTH), so this is root's command. It is the only way to
read the report when the tree itself holds an entry ``/.health`` (written by a C pmxcfs).
"""

from __future__ import annotations

DEFAULT_IPC_NAME = "pve2"
TIMEOUT_S = 30.0


def fetch_health(ipc_name: str = DEFAULT_IPC_NAME, timeout_s: float = TIMEOUT_S) -> str:
    """The report of the daemon serving ``ipc_name``.

    Raises:
        OSError: no daemon serves the name (ECONNREFUSED), the connection was refused
            (EACCES), or the daemon refused the request (``IpcError``: EPERM if not root:root).
    """
    from ipc.client import PveIpcClient  # loads libqb: only this command needs it

    with PveIpcClient(ipc_name, timeout_ms=int(timeout_s * 1000)) as client:
        return client.get_health().decode("utf-8", "surrogateescape")
