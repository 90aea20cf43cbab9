"""The chaos tests use the cluster tests' lab fixtures (real corosync in network namespaces)."""

from tests.cluster.conftest import _sweep_session_netns, corosync_lab_factory, pytest_runtest_makereport

__all__ = ["_sweep_session_netns", "corosync_lab_factory", "pytest_runtest_makereport"]
