"""The DFSM (dfsm.c): sync and total-order replication over one CPG group, as a pure state machine."""

from dfsm.actions import Action, Leave, LocalResult, Mode, ModeChanged, Multicast
from dfsm.app import DfsmApp, DfsmFatal, DfsmLeave, Member, MemberState, StateDecision
from dfsm.machine import Dfsm

__all__ = [
    "Action",
    "Dfsm",
    "DfsmApp",
    "DfsmFatal",
    "DfsmLeave",
    "Leave",
    "LocalResult",
    "Member",
    "MemberState",
    "Mode",
    "ModeChanged",
    "Multicast",
    "StateDecision",
]
