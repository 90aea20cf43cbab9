"""libvotequorum.so.8: vote counts and flags of the votequorum provider (votequorum.h)."""

from __future__ import annotations

import ctypes
import functools
from ctypes import POINTER, byref, c_uint, c_void_p
from dataclasses import dataclass

from bindings._handle import CsHandle
from bindings._loader import Signatures, load_library
from bindings._types import cs_error_t, uint64_handle_t

SONAME = "libvotequorum.so.8"

votequorum_handle_t = uint64_handle_t

VOTEQUORUM_INFO_TWONODE = 1
VOTEQUORUM_INFO_QUORATE = 2
VOTEQUORUM_INFO_WAIT_FOR_ALL = 4
VOTEQUORUM_INFO_LAST_MAN_STANDING = 8
VOTEQUORUM_INFO_AUTO_TIE_BREAKER = 16
VOTEQUORUM_INFO_ALLOW_DOWNSCALE = 32
VOTEQUORUM_INFO_QDEVICE_REGISTERED = 64
VOTEQUORUM_INFO_QDEVICE_ALIVE = 128
VOTEQUORUM_INFO_QDEVICE_CAST_VOTE = 256
VOTEQUORUM_INFO_QDEVICE_MASTER_WINS = 512
VOTEQUORUM_QDEVICE_MAX_NAME_LEN = 255
VOTEQUORUM_NODESTATE_MEMBER = 1
VOTEQUORUM_NODESTATE_DEAD = 2
VOTEQUORUM_NODESTATE_LEAVING = 3


class votequorum_info(ctypes.Structure):
    """``struct votequorum_info``."""

    _fields_ = (
        ("node_id", c_uint),
        ("node_state", c_uint),
        ("node_votes", c_uint),
        ("node_expected_votes", c_uint),
        ("highest_expected", c_uint),
        ("total_votes", c_uint),
        ("quorum", c_uint),
        ("flags", c_uint),
        ("qdevice_votes", c_uint),
        ("qdevice_name", ctypes.c_char * VOTEQUORUM_QDEVICE_MAX_NAME_LEN),
    )


SIGNATURES: Signatures = {
    # The callbacks argument is a votequorum_callbacks_t*; this module only ever passes NULL.
    "votequorum_initialize": ([POINTER(votequorum_handle_t), c_void_p], cs_error_t),
    "votequorum_finalize": ([votequorum_handle_t], cs_error_t),
    "votequorum_getinfo": ([votequorum_handle_t, c_uint, POINTER(votequorum_info)], cs_error_t),
}


@functools.cache
def _lib() -> ctypes.CDLL:
    return load_library(SONAME, SIGNATURES)


@dataclass(frozen=True, slots=True)
class VotequorumInfo:
    """What votequorum knows about one node, and the cluster-wide vote counts."""

    node_id: int
    node_state: int
    """VOTEQUORUM_NODESTATE_MEMBER, _DEAD or _LEAVING."""
    node_votes: int
    node_expected_votes: int
    highest_expected: int
    total_votes: int
    quorum: int
    """Votes needed for quorum."""
    flags: int
    """VOTEQUORUM_INFO_* bits."""
    qdevice_votes: int
    qdevice_name: str

    @property
    def quorate(self) -> bool:
        """Whether VOTEQUORUM_INFO_QUORATE is set."""
        return bool(self.flags & VOTEQUORUM_INFO_QUORATE)


class VotequorumHandle(CsHandle):
    """A libvotequorum connection without callbacks, for :meth:`getinfo`."""

    def initialize(self) -> None:
        """votequorum_initialize with no callbacks.

        Raises:
            CsLibraryError: corosync is not running.
            RuntimeError: already initialized.
        """
        if self.initialized:
            raise RuntimeError("VotequorumHandle is already initialized")
        handle = votequorum_handle_t()
        _lib().votequorum_initialize(byref(handle), None)
        self._handle = handle.value

    def finalize(self) -> None:
        """votequorum_finalize; the handle is released even if it fails, and CS_ERR_LIBRARY is ignored."""
        self._finalize_via(_lib().votequorum_finalize, "votequorum_finalize")

    def getinfo(self, nodeid: int = 0) -> VotequorumInfo:
        """votequorum_getinfo for ``nodeid``; 0 means this node."""
        info = votequorum_info()
        _lib().votequorum_getinfo(self._require("votequorum_getinfo"), nodeid, byref(info))
        return VotequorumInfo(
            node_id=info.node_id,
            node_state=info.node_state,
            node_votes=info.node_votes,
            node_expected_votes=info.node_expected_votes,
            highest_expected=info.highest_expected,
            total_votes=info.total_votes,
            quorum=info.quorum,
            flags=info.flags,
            qdevice_name=info.qdevice_name.decode("utf-8", "surrogateescape"),
            qdevice_votes=info.qdevice_votes,
        )
