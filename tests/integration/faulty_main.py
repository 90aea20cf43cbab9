"""Run main.py with failures injected into actor handlers (tests only, never installed).

Usage: ``python tests/integration/faulty_main.py SPEC [main.py arguments]``. SPEC is a
comma-separated list of ``Actor:Message[:count]``: the actor class (FsActor, DbActor,
StatusActor, ClusterActor, QuorumActor) raises RuntimeError instead of handling the first
``count`` (default 1) messages of that type, as a bug in that handler would. Everything else is
the real daemon.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from actors.cluster_actor import ClusterActor  # noqa: E402
from actors.db_actor import DbActor  # noqa: E402
from actors.fs_actor import FsActor  # noqa: E402
from actors.quorum_actor import QuorumActor  # noqa: E402
from actors.serving import ServingActor  # noqa: E402
from actors.status_actor import StatusActor  # noqa: E402

ACTORS: dict[str, type[ServingActor]] = {
    cls.__name__: cls for cls in (FsActor, DbActor, StatusActor, ClusterActor, QuorumActor)
}


def inject(actor: type[ServingActor], message_type: str, count: int) -> None:
    """Make ``actor`` fail the first ``count`` messages named ``message_type``."""
    handle: Callable[[ServingActor, object], object] = actor.receive
    left = [count]

    def receive(self: ServingActor, message: object) -> object:
        if type(message).__name__ == message_type and left[0] > 0:
            left[0] -= 1
            raise RuntimeError(f"injected failure in {actor.__name__} handling {message_type}")
        return handle(self, message)

    actor.receive = receive  # type: ignore[method-assign]


def main() -> None:
    spec, *args = sys.argv[1:]
    for item in spec.split(","):
        actor, message_type, *count = item.split(":")
        inject(ACTORS[actor], message_type, int(count[0]) if count else 1)
    sys.argv = [str(REPO / "main.py"), *args]
    runpy.run_path(str(REPO / "main.py"), run_name="__main__")


if __name__ == "__main__":
    main()
