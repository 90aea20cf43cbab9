"""The test lab, shared by tests/ and bench/: our daemon on real FUSE mounts (daemon.py) and on
real corosync clusters, one network namespace per node (cluster.py, nodes.py), and the probes
that wait on them (probes.py). It uses no test framework: tests/ adds skip-or-fail rules.
"""
