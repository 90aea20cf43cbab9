"""The joiner's side of a resync: storing the leader's UPDATE records batched or one by one.

Run from the repository root: ``.venv/bin/python bench/sync_commit.py [--files 10000] [--size 2048]``.
A joiner that missed ``--files`` files of ``--size`` bytes (10,000 x 2 KiB = 20 MB) gets one
UPDATE message per entry (the wire protocol has no other form). This measures what happens to
them once received, on a fresh database with the original's schema and pragmas:

* batched (ours): the records are collected and, at UPDATE_COMPLETE, checked and written in one
  SQLite transaction (``Store.replace_rows``);
* per entry: each record written in a transaction of its own as it arrives (``Store.apply``),
  as a joiner that does not batch would.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.store import Store
from memdb.records import DT_REG, Row, StoreChange, version_row


def records(files: int, size: int) -> list[Row]:
    return [
        Row(k + 2, 0, k + 2, 1, 1_700_000_000, DT_REG, f"f{k:06d}.cfg", os.urandom(size // 2).hex().encode())
        for k in range(files)
    ]


def fresh(path: Path) -> Store:
    store = Store(str(path))
    store.connect()
    store.prepare()
    return store


def batched(path: Path, rows: list[Row]) -> float:
    store = fresh(path)
    t0 = time.perf_counter()
    store.replace_rows((), (version_row(len(rows) + 1, 1, 1_700_000_000), *rows))
    took = time.perf_counter() - t0
    store.close()
    return took


def per_entry(path: Path, rows: list[Row]) -> float:
    store = fresh(path)
    t0 = time.perf_counter()
    for row in rows:
        store.apply(StoreChange(row.version, row.writer, row.mtime, upsert=row))
    took = time.perf_counter() - t0
    store.close()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    rows = records(args.files, args.size)
    with tempfile.TemporaryDirectory(prefix="bench-sync-commit-") as tmp:
        one = batched(Path(tmp) / "batched.db", rows)
        each = per_entry(Path(tmp) / "per-entry.db", rows)
    mb = args.files * args.size / 1e6
    print(f"storing {args.files} UPDATE records ({mb:.0f} MB) on the joiner")
    print(f"batched, one transaction:      {one:.2f} s")
    print(f"per entry, one transaction each: {each:.2f} s ({each / one:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
