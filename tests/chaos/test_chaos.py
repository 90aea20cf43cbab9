"""The short chaos run (the long one: README, `python -m tests.chaos.runner --cycles 100`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.cluster import CorosyncLab
from tests.chaos.runner import FAULTS, ChaosRun
from tests.integration.mounts import require_fuse

pytestmark = [pytest.mark.corosync, pytest.mark.fuse, pytest.mark.timeout(600)]

log = logging.getLogger(__name__)


@pytest.mark.parametrize(("nodes", "cycles"), [(3, 4), (5, 4)])
def test_short_chaos_run_loses_nothing(
    corosync_lab_factory: Callable[..., CorosyncLab], tmp_path: Path, nodes: int, cycles: int
) -> None:
    require_fuse()
    run = ChaosRun(corosync_lab_factory(), tmp_path, nodes=nodes, cycles=cycles, seed=nodes)
    figures = run.run()
    log.info("%s", figures.report())
    print(figures.report())
    assert figures.cycles == cycles
    assert set(figures.faults) == set(FAULTS)  # every kind of fault ran
    assert figures.acknowledged > 20 * cycles
    assert figures.lost == []
    assert figures.divergent == []
    assert figures.minority_acks == []
    assert figures.wedged == []
