"""The actor tests' fixtures live in tests/fakes/actors.py (a plugin of tests/conftest.py), shared
with the tests of the machinery around the actors (tests/corosync, tests/replication)."""
