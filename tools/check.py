"""check: say exactly what is wrong with a database file, without writing to it.

Runs, in order: the file itself (present, an SQLite file), SQLite's ``integrity_check``, the
schema, the SELECT the daemon does, and every startup load check of memdb/loader.py, each
problem named with its inode, path and rule. Errors are what would stop the daemon from
starting; warnings are what it accepts but an operator should know about.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

import peewee

from db.schema import CREATE_TREE_SQL
from db.store import Store
from errors import StorageError
from memdb.loader import check_rows
from memdb.records import DT_DIR, VERSION_ROW_NAME, Row
from memdb.tree import MAX_FILE_SIZE

if TYPE_CHECKING:
    from tools.progress import Progress

SQLITE_MAGIC = b"SQLite format 3\0"
"""The first 16 bytes of every SQLite database file."""
_NO_ROWS = ("file", "sqlite", "schema")
"""Errors found here leave no rows to read (integrity_check errors may: the rows are tried)."""
MAX_INTEGRITY_LINES = 20
"""integrity_check lines shown (one broken page can give a line for every page after it)."""
TREE_SQL = CREATE_TREE_SQL.replace("IF NOT EXISTS ", "").removesuffix(";")
"""The table's text as SQLite keeps it in sqlite_master (the original's, byte for byte)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where it is and which rule it breaks."""

    error: bool
    """True if the daemon would refuse the database; False for a warning."""
    where: str
    rule: str

    def __str__(self) -> str:
        return f"{'error' if self.error else 'warning'}: {self.where}: {self.rule}"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything ``check`` found in one file."""

    path: str
    findings: tuple[Finding, ...]
    rows: int
    """Rows read (0 if they could not be read)."""
    version: int | None
    """The global version from the version row, if there is one."""

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(f.error for f in self.findings)

    def summary(self) -> str:
        """One line: OK or how many errors and warnings, with the size and version."""
        warnings = len(self.findings) - self.errors
        version = "no version" if self.version is None else f"version {self.version}"
        state = "OK" if not self.findings else f"{self.errors} error(s), {warnings} warning(s)"
        return f"{self.path}: {state} ({self.rows} rows, {version})"


def check_database(path: str, progress: Progress) -> CheckReport:
    """Check the database at ``path`` (read-only: the file is left byte for byte as it was)."""
    findings = _file_findings(path)
    if any(f.error for f in findings):
        return CheckReport(path, tuple(findings), 0, None)
    progress.phase("check: sqlite integrity_check")
    findings += _sqlite_findings(path)
    if any(f.error and f.where in _NO_ROWS for f in findings):
        return CheckReport(path, tuple(findings), 0, None)
    store = Store(path, readonly=True)
    try:
        rows = store.open()
    except StorageError as exc:
        findings.append(Finding(True, "table tree", f"select returned error: {exc.reason}"))
        return CheckReport(path, tuple(findings), 0, None)
    finally:
        store.close()
    progress.phase(f"check: load checks on {len(rows)} rows")
    findings += _row_findings(rows)
    version = next((r.version for r in rows if r.inode == 0 and r.name == VERSION_ROW_NAME), None)
    return CheckReport(path, tuple(findings), len(rows), version)


def _file_findings(path: str) -> list[Finding]:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            return [Finding(True, "file", "is a directory, not a database file")]
        if not stat.S_ISREG(mode):
            return [Finding(True, "file", "is not a regular file")]
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return [Finding(True, "file", "does not exist")]
    except OSError as exc:
        return [Finding(True, "file", f"can't be read: {exc.strerror}")]
    if not head:
        return [Finding(True, "file", "is empty: no tree table (not a pmxcfs database)")]
    if head != SQLITE_MAGIC:
        return [Finding(True, "file", "not an SQLite database (no SQLite header)")]
    if os.path.exists(f"{path}-journal"):
        return [
            Finding(False, "file", f"{path}-journal exists: SQLite rolls back an interrupted write on open")
        ]
    return []


def _sqlite_findings(path: str) -> list[Finding]:
    store = Store(path, readonly=True)
    try:
        store.connect()
        con = store.sqlite()
        problems = [line for (line,) in con.execute("PRAGMA integrity_check") if line != "ok"]
        objects = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    except StorageError as exc:
        return [Finding(True, "sqlite", f"can't open: {exc.reason}")]
    except (peewee.DatabaseError, sqlite3.Error) as exc:
        return [Finding(True, "sqlite", f"corrupt file: {exc}")]
    finally:
        store.close()
    return _integrity_findings(problems) + _schema_findings(objects)


def _integrity_findings(problems: list[str]) -> list[Finding]:
    """One finding per line of integrity_check, at most ``MAX_INTEGRITY_LINES``."""
    lines = [line for text in problems for line in text.splitlines() if line and not line.startswith("***")]
    findings = [Finding(True, "sqlite integrity_check", line) for line in lines[:MAX_INTEGRITY_LINES]]
    if len(lines) > MAX_INTEGRITY_LINES:
        more = len(lines) - MAX_INTEGRITY_LINES
        findings.append(Finding(True, "sqlite integrity_check", f"... and {more} more line(s)"))
    return findings


def _schema_findings(objects: list[tuple[str, str, str | None]]) -> list[Finding]:
    tables = {name: sql for kind, name, sql in objects if kind == "table"}
    if "tree" not in tables:
        return [Finding(True, "schema", "no table 'tree' (not a pmxcfs database)")]
    findings = []
    if tables["tree"] != TREE_SQL:
        findings.append(Finding(False, "schema", "table tree is not declared as the original declares it"))
    for kind, name, _ in objects:
        if name != "tree" and not name.startswith("sqlite_"):
            findings.append(
                Finding(False, "schema", f"extra {kind} {name!r} (the original has only table tree)")
            )
    return findings


def _row_findings(rows: tuple[Row, ...]) -> list[Finding]:
    by_inode = {row.inode: row for row in rows}
    findings = [Finding(True, _where(p.what, by_inode), p.reason) for p in check_rows(rows)]
    if not rows:
        findings.append(
            Finding(False, "table tree", "no rows: an empty database (the daemon starts it fresh)")
        )
    for row in rows:
        if row.inode == 0:
            continue
        where = _where(str(row.inode), by_inode)
        if "/" in row.name or "\0" in row.name:
            findings.append(Finding(False, where, f"name {row.name!r} holds '/' or NUL: no path reaches it"))
        size = len(row.data or b"")
        if row.type != DT_DIR and size > MAX_FILE_SIZE:
            findings.append(
                Finding(False, where, f"file of {size} bytes is over the {MAX_FILE_SIZE}-byte limit")
            )
    return findings


def _where(what: str, by_inode: dict[int, Row]) -> str:
    """``inode N (path)`` for a problem of one row; the path if it is one."""
    if what == VERSION_ROW_NAME:
        return "inode 0"
    if not what.isdigit():
        return what or "tree"
    inode = int(what)
    path = _path(inode, by_inode)
    return f"inode {inode} ({path})" if path else f"inode {inode}"


def _path(inode: int, by_inode: dict[int, Row]) -> str:
    """The row's path through its parents' rows, or "" if they don't lead to the root."""
    names: list[str] = []
    while inode != 0:
        row = by_inode.get(inode)
        if row is None or len(names) > len(by_inode):
            return ""
        names.append(row.name)
        inode = row.parent
    return "/".join(reversed(names))
