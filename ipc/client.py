"""A client for the "pve2" IPC service, packing requests as the Perl tools do (PVE::Cluster).

Use it from Python (``with PveIpcClient() as c: c.get_config("datacenter.cfg")``) or from
the shell to query a running daemon::

    python -m ipc.client get-fs-version
    python -m ipc.client get-config nodes/node1/qemu-server/100.conf
    python -m ipc.client get-guest-config-properties 0 name memory
    python -m ipc.client --name pve2-test set-status kv/test '{"a":1}'

Data goes to stdout as the daemon sent it; an error response exits 1 with the errno on stderr.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence

from bindings.qb_ipc import IpcClient
from ipc import codec
from ipc.codec import Op, Response

MAX_MSG_SIZE = 1024 * 1024
"""What IPCC.xs asks for (8192 * 128)."""
DEFAULT_NAME = "pve2"


class IpcError(OSError):
    """The daemon answered a request with an error (``errno`` is the positive errno)."""

    def __init__(self, op: int, error: int) -> None:
        code = -error
        name = Op(op).name if op in Op._value2member_map_ else f"op {op}"
        super().__init__(code, f"{name}: {os.strerror(code)}")
        self.op = op


class PveIpcClient:
    """One connection to the daemon; not thread-safe (one per thread)."""

    def __init__(
        self, name: str = DEFAULT_NAME, *, timeout_ms: int = -1, max_msg_size: int = MAX_MSG_SIZE
    ) -> None:
        """Connect to the service ``name``; ``timeout_ms`` -1 waits for answers forever (as Perl).

        Raises:
            OSError: not running (ECONNREFUSED) or refused (EACCES).
        """
        self._conn = IpcClient(name, max_msg_size)
        self._timeout_ms = timeout_ms

    def close(self) -> None:
        """Disconnect."""
        self._conn.close()

    def __enter__(self) -> PveIpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- raw access ------------------------------------------------------------------

    def raw(self, request: bytes) -> Response:
        """Send request bytes as they are (header included) and decode the answer."""
        return codec.decode_response(self._conn.sendv_recv(request, self._timeout_ms))

    def send_only(self, request: bytes) -> None:
        """Send request bytes without waiting for the answer (a client that leaves early)."""
        self._conn.send(request)

    def request(self, op: int, payload: bytes = b"") -> bytes:
        """Send one request; the response's data.

        Raises:
            IpcError: the daemon answered with an error.
            OSError: the connection failed.
        """
        response = self.raw(codec.encode_request(op, payload))
        if response.error:
            raise IpcError(op, response.error)
        return response.data

    # ----- the operations ----------------------------------------------------------------

    def get_fs_version(self) -> bytes:
        """GET_FS_VERSION: the ``.version`` text."""
        return self.request(Op.GET_FS_VERSION)

    def get_cluster_info(self) -> bytes:
        """GET_CLUSTER_INFO: the ``.members`` text."""
        return self.request(Op.GET_CLUSTER_INFO)

    def get_guest_list(self) -> bytes:
        """GET_GUEST_LIST: the ``.vmlist`` text."""
        return self.request(Op.GET_GUEST_LIST)

    def set_status(self, key: str, value: bytes | None) -> None:
        """SET_STATUS: the value as given (Perl appends a NUL); None deletes a kv key."""
        self.request(Op.SET_STATUS, codec.set_status_payload(key.encode(), value))

    def get_status(self, key: str, nodename: str = "") -> bytes:
        """GET_STATUS: the raw value of a node's key (empty nodename: this node)."""
        return self.request(Op.GET_STATUS, codec.get_status_payload(key.encode(), nodename.encode()))

    def get_config(self, path: str) -> bytes:
        """GET_CONFIG: a file of the tree."""
        return self.request(Op.GET_CONFIG, codec.string_payload(path.encode()))

    def log_cluster_msg(self, priority: int, ident: str, tag: str, msg: str) -> None:
        """LOG_CLUSTER_MSG: a cluster log entry of this node."""
        payload = codec.log_payload(priority, ident.encode(), tag.encode(), msg.encode())
        self.request(Op.LOG_CLUSTER_MSG, payload)

    def get_cluster_log(self, max_entries: int = 0, user: str = "") -> bytes:
        """GET_CLUSTER_LOG: the log as JSON (max 0 means 50; user filters, empty: all)."""
        return self.request(Op.GET_CLUSTER_LOG, codec.cluster_log_payload(max_entries, user.encode()))

    def get_rrd_dump(self) -> bytes:
        """GET_RRD_DUMP: the RRD dump text."""
        return self.request(Op.GET_RRD_DUMP)

    def get_health(self) -> bytes:
        """GET_HEALTH (ours, root:root only): the health report, private paths whole."""
        return self.request(Op.GET_HEALTH)

    def get_guest_config_property(self, vmid: int, prop: str) -> bytes:
        """GET_GUEST_CONFIG_PROPERTY: JSON of one property (vmid 0: every guest)."""
        payload = codec.guest_property_payload(vmid, prop.encode())
        return self.request(Op.GET_GUEST_CONFIG_PROPERTY, payload)

    def get_guest_config_properties(self, vmid: int, props: Sequence[str]) -> bytes:
        """GET_GUEST_CONFIG_PROPERTIES: JSON of several properties (at most 255)."""
        payload = codec.guest_properties_payload(vmid, tuple(p.encode() for p in props))
        return self.request(Op.GET_GUEST_CONFIG_PROPERTIES, payload)

    def verify_token(self, token: str) -> bool:
        """VERIFY_TOKEN: is ``"<userid> <secret>"`` a line of priv/token.cfg?"""
        try:
            self.request(Op.VERIFY_TOKEN, codec.string_payload(token.encode()))
        except IpcError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True


# ----- the shell entry ---------------------------------------------------------------

Command = Callable[[PveIpcClient, argparse.Namespace], bytes]


def _commands() -> dict[str, tuple[str, Sequence[tuple[str, dict[str, object]]], Command]]:
    """Each shell command: its name, help text, arguments and call."""
    return {
        "get-fs-version": ("the .version text", (), lambda c, a: c.get_fs_version()),
        "get-cluster-info": ("the .members text", (), lambda c, a: c.get_cluster_info()),
        "get-guest-list": ("the .vmlist text", (), lambda c, a: c.get_guest_list()),
        "set-status": (
            "set a status key of this node (the value is sent with a trailing NUL, as Perl does; "
            "no value deletes the key)",
            (("key", {}), ("value", {"nargs": "?"})),
            lambda c, a: _set_status(c, a.key, a.value),
        ),
        "get-status": (
            "a status value of a node (default: this node)",
            (("key", {}), ("nodename", {"nargs": "?", "default": ""})),
            lambda c, a: c.get_status(a.key, a.nodename),
        ),
        "get-config": ("a file of the tree", (("path", {}),), lambda c, a: c.get_config(a.path)),
        "log-cluster-msg": (
            "add a cluster log entry",
            (("priority", {"type": int}), ("ident", {}), ("tag", {}), ("msg", {})),
            lambda c, a: _log(c, a),
        ),
        "get-cluster-log": (
            "the cluster log as JSON",
            (("--max", {"type": int, "default": 0}), ("--user", {"default": ""})),
            lambda c, a: c.get_cluster_log(a.max, a.user),
        ),
        "get-rrd-dump": ("the RRD dump", (), lambda c, a: c.get_rrd_dump()),
        "get-health": ("the health report (ours; root only)", (), lambda c, a: c.get_health()),
        "get-guest-config-property": (
            "one property of guest configs as JSON (vmid 0: every guest)",
            (("vmid", {"type": int}), ("property", {})),
            lambda c, a: c.get_guest_config_property(a.vmid, a.property),
        ),
        "get-guest-config-properties": (
            "several properties of guest configs as JSON (vmid 0: every guest)",
            (("vmid", {"type": int}), ("properties", {"nargs": "+"})),
            lambda c, a: c.get_guest_config_properties(a.vmid, a.properties),
        ),
        "verify-token": (
            "exit 0 if '<userid> <secret>' is a line of priv/token.cfg, else 1",
            (("token", {}),),
            lambda c, a: _verify(c, a.token),
        ),
    }


def _set_status(client: PveIpcClient, key: str, value: str | None) -> bytes:
    client.set_status(key, None if value is None else value.encode() + b"\0")
    return b""


def _log(client: PveIpcClient, args: argparse.Namespace) -> bytes:
    client.log_cluster_msg(args.priority, args.ident, args.tag, args.msg)
    return b""


class _NoToken(Exception):
    pass


def _verify(client: PveIpcClient, token: str) -> bytes:
    if not client.verify_token(token):
        raise _NoToken
    return b""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ipc.client", description="Query pmxcfs over IPC.")
    parser.add_argument("--name", default=DEFAULT_NAME, help="IPC service name (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    ops = parser.add_subparsers(dest="op", required=True, metavar="OP")
    for name, (help_text, arguments, call) in _commands().items():
        aliases = [name.replace("-", "_").upper()]
        sub = ops.add_parser(name, aliases=aliases, help=help_text)
        for flag, options in arguments:
            sub.add_argument(flag, **options)  # type: ignore[arg-type]
        sub.set_defaults(call=call)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operation; 0 on success, 1 on an error (printed to stderr)."""
    args = _parser().parse_args(argv)
    try:
        with PveIpcClient(args.name, timeout_ms=int(args.timeout * 1000)) as client:
            data = args.call(client, args)
    except _NoToken:
        print("no such token", file=sys.stderr)
        return 1
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "?")
        print(f"{args.name}: {exc.strerror} ({code})", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
