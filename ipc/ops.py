"""One IPC request from bytes to response bytes: check, decode, read or ask, map errors.

Runs on the IPC server's thread. Reads come from the fs and status actors' published snapshots
(the tree, status texts, kv values, cluster log, RRD dump); changes (SET_STATUS,
LOG_CLUSTER_MSG) and our health report are asked of the status actor, always with a timeout.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import Any

import pykka

from actors import messages as m
from errno_map import errno_for
from errors import InvalidArgument, NotFound, NotPermitted, PmxcfsError
from ipc import codec
from memdb.guestconf import guest_properties
from memdb.paths import components, is_private
from memdb.snapshot import Published, TreeSnapshot
from status.published import StatusFiles

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 30.0
"""How long a request waits for an actor before it answers EIO (the FUSE layer's figure)."""
TOKEN_FILE = "priv/token.cfg"
"""VERIFY_TOKEN looks for a line equal to the token here."""


@dataclass(frozen=True, slots=True)
class Client:
    """What the server knows about a connection from its accept."""

    read_only: bool
    """A www-data client: no SET_STATUS, LOG_CLUSTER_MSG or private GET_CONFIG."""
    pid: int
    """The client's pid (its cluster log entries carry it)."""
    buffer_size: int
    """The largest request the connection can carry."""


def error_code(exc: BaseException) -> int:
    """The response's error field for ``exc``: a negative errno (EIO for the unexpected)."""
    return -(errno_for(exc) or errno.EIO)


def private(path: str) -> bool:
    """path_is_private, also on the normalised path.

    The C check looks at the path as given, but the tree ignores empty components, so
    ``nodes/n1//priv/x`` would slip past it; checking the normalised form closes that gap.
    """
    return is_private(path) or is_private("/".join(components(path)))


class IpcOps:
    """Answers requests from the published snapshots, or by asking the status actor."""

    def __init__(
        self,
        tree: Published[TreeSnapshot],
        status: pykka.ActorRef[Any],
        status_files: StatusFiles,
        *,
        timeout: float = ASK_TIMEOUT_S,
    ) -> None:
        self._tree = tree
        """The fs actor's latest tree snapshot: config reads take it, never ask."""
        self._status_files = status_files
        """Status files from the published snapshots (.version, .members, .vmlist): no ask."""
        self._status = status
        self._timeout = timeout

    def respond(self, request: bytes, size: int, client: Client) -> bytes:
        """The encoded response to ``request``, whose header claims ``size`` bytes.

        ``request`` holds ``size`` bytes if 16 <= size <= the buffer size, else as many as
        are safe to read (at least the 16-byte header). Never raises for bad input.
        """
        if len(request) < codec.REQUEST_HEADER.size:  # the binding never hands over less
            return codec.encode_response(0, error_code(InvalidArgument("request", "shorter than its header")))
        op_id = codec.request_header(request)[0]
        try:
            data = self._carry_out(op_id, request, size, client)
        except (PmxcfsError, pykka.Timeout, pykka.ActorDeadError) as exc:
            log.debug("request %d from pid %d refused: %s", op_id, client.pid, exc)
            return codec.encode_response(op_id, error_code(exc))
        except Exception:  # a bug must not take the server down: logged, answered EIO
            log.exception("request %d from pid %d failed", op_id, client.pid)
            return codec.encode_response(op_id, -errno.EIO)
        return codec.encode_response(op_id, 0, data)

    def _carry_out(self, op_id: int, request: bytes, size: int, client: Client) -> bytes:
        op = codec.operation(op_id)
        if op in codec.ROOT_ONLY_OPS and client.read_only:
            raise NotPermitted(op.name, "read-only client")
        if not codec.REQUEST_HEADER.size <= size <= min(len(request), client.buffer_size):
            raise InvalidArgument(op.name, f"request size {size} out of range")
        decoded = codec.decode_request(op, request[:size])
        log.debug("process %s from pid %d", op.name, client.pid)
        return self._dispatch(decoded, client)

    def _ask(self, ref: pykka.ActorRef[Any], message: m.Request[Any]) -> Any:
        return m.ask(ref, message, timeout=self._timeout)

    def _dispatch(self, request: codec.IpcRequest, client: Client) -> bytes:
        status = self._status
        match request:
            case codec.StatusText(name=name):
                text = self._status_files.text(name)
                return text if text is not None else bytes(self._ask(status, m.GetStatusText(name=name)))
            case codec.SetStatus(key=key, value=value):
                self._ask(status, m.SetStatus(key=key, value=value))
                return b""
            case codec.GetStatus(key=key, nodename=nodename):
                found = self._status_files.status_value(nodename, key)
                if found is not None:
                    return found
                return bytes(self._ask(status, m.GetStatus(key=key, nodename=nodename)))
            case codec.GetConfig(path=path):
                return self._get_config(path, client)
            case codec.LogMessage(priority=priority, ident=ident, tag=tag, msg=msg):
                entry = m.LogClusterMessage(priority=priority, ident=ident, tag=tag, msg=msg, pid=client.pid)
                self._ask(status, entry)
                return b""
            case codec.GetClusterLog(max_entries=max_entries, user=user):
                found = self._status_files.cluster_log(max_entries, user)
                if found is not None:
                    return found
                dump: str = self._ask(status, m.GetClusterLog(max_entries=max_entries, user=user))
                return dump.encode("utf-8", "surrogateescape")
            case codec.RrdDump():
                made = self._status_files.rrd_dump()
                if made is not None:
                    text, fresh = made
                    return text + b"\0" if fresh else text
                return bytes(self._ask(status, m.GetRrdDump()))
            case codec.HealthReport():
                return bytes(self._ask(status, m.GetHealthReport()))
            case codec.GuestProperties(vmid=vmid, properties=properties):
                snapshot = self._tree.value
                return guest_properties(vmid, properties, snapshot.vmlist, snapshot.read_all)
            case codec.VerifyToken(token=token):
                self._verify_token(token)
                return b""
        raise AssertionError(f"unhandled IPC request {request!r}")  # pragma: no cover

    def _get_config(self, path: str, client: Client) -> bytes:
        if client.read_only and private(path):
            raise NotPermitted(path, "private path, read-only client")
        return self._read(path)

    def _read(self, path: str) -> bytes:
        """A whole file from the latest snapshot."""
        data = self._tree.value.read_all(path)
        if data is None:
            raise NotFound(path, "no such file")
        return data

    def _verify_token(self, token: bytes) -> None:
        """Succeeds if a whole line of priv/token.cfg equals ``token`` (never logs the token)."""
        content = self._tree.value.read_all(TOKEN_FILE)
        if content is None:
            raise NotFound(TOKEN_FILE, "no token file")
        if token not in content.split(b"\n"):
            raise NotFound(TOKEN_FILE, "no such token")
