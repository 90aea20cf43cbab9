"""PendingChange: the writer hears the tree's result once the change is acknowledged, in either
order, or a refusal at once; a refusal is reported to the refusal log with its reason."""

from __future__ import annotations

import sys

import pykka
import pytest

from actors.messages import ChangeRefused, CreateFile
from errors import AlreadyExists, ClusterBusy, NotQuorate
from replication.pending import PendingChange
from replication.refusals import RefusalLog
from tests.fakes.actors import Recorder
from tests.fakes.clock import Clock


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pending(recorder: Recorder) -> PendingChange:
    return PendingChange(CreateFile(path="x"), RefusalLog(recorder, clock=Clock()))  # type: ignore[arg-type]


def unanswered(pending: PendingChange) -> bool:
    try:
        pending.get(timeout=0)
    except pykka.Timeout:
        return True
    except Exception:  # noqa: BLE001 - answered with an error
        return False
    return False


@pytest.mark.parametrize("applied_first", [True, False], ids=["applied-first", "acknowledged-first"])
def test_the_writer_hears_the_result_once_both_are_known(pending: PendingChange, applied_first: bool) -> None:
    first, second = (lambda: pending.applied(0), pending.acknowledge)[:: 1 if applied_first else -1]
    first()
    assert unanswered(pending)
    second()
    assert pending.get(timeout=0) == 0


def test_a_tree_error_reaches_the_writer_once_acknowledged_and_is_reported(
    pending: PendingChange, recorder: Recorder
) -> None:
    pending.failed(AlreadyExists("x", "file exists"))
    assert unanswered(pending)
    assert recorder.of(ChangeRefused) == []
    pending.acknowledge()
    with pytest.raises(AlreadyExists):
        pending.get(timeout=0)
    (told,) = recorder.of(ChangeRefused)
    assert (told.op, told.path, told.error) == ("create", "x", "EEXIST")


def test_a_refusal_answers_at_once_with_its_reason(pending: PendingChange, recorder: Recorder) -> None:
    pending.refuse(ClusterBusy(reason="the change was delivered in a ring without quorum"))
    with pytest.raises(ClusterBusy):
        pending.get(timeout=0)
    (told,) = recorder.of(ChangeRefused)
    assert (told.error, told.reason) == ("EBUSY", "the change was delivered in a ring without quorum")
    pending.applied(0)  # the fs actor's result comes later: nothing more happens
    pending.acknowledge()
    with pytest.raises(ClusterBusy):
        pending.get(timeout=0)
    assert len(recorder.of(ChangeRefused)) == 1


def test_a_refusal_after_the_answer_changes_nothing(pending: PendingChange, recorder: Recorder) -> None:
    pending.applied(0)
    pending.acknowledge()
    pending.refuse(ClusterBusy(reason="late"))
    assert pending.get(timeout=0) == 0
    assert recorder.told == []


def test_an_exception_set_directly_is_reported(pending: PendingChange, recorder: Recorder) -> None:
    """As pykka's fail path (ServingActor.fail_waiters) sets it on a crashed handler's futures."""
    try:
        raise NotQuorate(reason="cluster not quorate - the tree is read-only")
    except NotQuorate:
        pending.set_exception(sys.exc_info())  # type: ignore[arg-type]
    with pytest.raises(NotQuorate):
        pending.get(timeout=0)
    (told,) = recorder.of(ChangeRefused)
    assert (told.op, told.path, told.error) == ("create", "x", "EACCES")
