"""Run main.py with counters on the write path (benchmarks only, never installed).

Usage: ``python bench/counting_main.py FIFO_DIR [main.py arguments]``. The real daemon runs;
besides, it counts what each change costs:

* ``actor:<Actor>:<Message>``: messages an actor handled (each is one hand-off to its thread);
* ``ask:<Message>``: messages that were asked (each answer is one more hand-off back);
* ``mcast:<group>`` and ``deliver:<group>``: CPG messages sent and delivered per group
  (dcdb, kvstore, barrier);
* ``commit``: SQLite transactions (Store.apply and Store.replace_rows);
* ``cpu_ns``: the CPU time of every thread of the process.

A thread serves the counts: each line written to ``FIFO_DIR/ask`` is answered with the counts as
one JSON line on ``FIFO_DIR/answer``. bench/write_path.py reads them before and after a workload.
"""

from __future__ import annotations

import collections
import json
import os
import runpy
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pykka  # noqa: E402

from actors.serving import ServingActor  # noqa: E402
from corosync.barrier import BarrierChannel  # noqa: E402
from corosync.group import DfsmGroup  # noqa: E402
from db.store import Store  # noqa: E402

COUNTS: collections.Counter[str] = collections.Counter()
"""Incremented from several threads: ``+=`` on a Counter key is not atomic, so under a lock."""
LOCK = threading.Lock()


def count(key: str) -> None:
    with LOCK:
        COUNTS[key] += 1


def wrap(owner: Any, name: str, key: Callable[..., str]) -> None:
    """Count every call of ``owner.name`` under ``key(*args)``."""
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        count(key(*args, **kwargs))
        return original(*args, **kwargs)

    setattr(owner, name, counted)


def cpu_ns() -> int:
    """CPU time of every thread of this process (schedstat's first field, ns)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            continue  # the thread ended meanwhile
    return total


def serve(fifo_dir: Path) -> None:
    ask, answer = fifo_dir / "ask", fifo_dir / "answer"
    while True:
        with open(ask) as requests:
            for _ in requests:
                with LOCK:
                    snapshot = dict(COUNTS)
                snapshot["cpu_ns"] = cpu_ns()
                with open(answer, "w") as out:
                    out.write(json.dumps(snapshot) + "\n")


def main() -> None:
    fifo_dir, *args = sys.argv[1:]
    wrap(ServingActor, "on_receive", lambda self, msg: f"actor:{type(self).__name__}:{type(msg).__name__}")
    wrap(pykka.ActorRef, "ask", lambda self, message, *a, **k: f"ask:{type(message).__name__}")
    wrap(DfsmGroup, "_multicast", lambda self, data: f"mcast:{self.label}")
    wrap(DfsmGroup, "_deliver", lambda self, *a: f"deliver:{self.label}")
    wrap(BarrierChannel, "send", lambda self, number: "mcast:barrier")
    wrap(BarrierChannel, "_deliver", lambda self, *a: "deliver:barrier")
    wrap(Store, "apply", lambda self, *a, **k: "commit")
    wrap(Store, "replace_rows", lambda self, *a, **k: "commit")
    threading.Thread(target=serve, args=(Path(fifo_dir),), name="bench-counts", daemon=True).start()
    sys.argv = [str(REPO / "main.py"), *args]
    runpy.run_path(str(REPO / "main.py"), run_name="__main__")


if __name__ == "__main__":
    main()
