"""pmxcfs-tool: the operator commands, one subcommand each; argument parsing and exit codes.

Exit status: 0 done (``check``: no errors), 1 ``check`` found errors, 255 a usage error or
a command that failed (as create_pmxcfs_db's ``exit(-1)``), with one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from errors import PmxcfsError
from tools.backup import backup_database
from tools.check import check_database
from tools.create import create_db
from tools.export import export_tree
from tools.health import DEFAULT_IPC_NAME, fetch_health
from tools.importer import import_tree
from tools.progress import Progress

if TYPE_CHECKING:
    from tools.manifest import Manifest

PROG = "pmxcfs-tool"
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_FAILED = 255

EPILOG = "exit status: 0 done (check: no errors), 1 check found errors, 255 usage error or failure"

Command = Callable[[argparse.Namespace, Progress], int]


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 255, as the original tool's do."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILED, f"{self.prog}: error: {message}\n")


def _create(args: argparse.Namespace, progress: Progress) -> int:
    result = create_db(args.dir, args.dbfile, progress)
    print(f"{args.dbfile}: added {len(result.files)} file(s), version {result.version}")
    return EXIT_OK


def _check(args: argparse.Namespace, progress: Progress) -> int:
    report = check_database(args.dbfile, progress)
    for finding in report.findings:
        print(finding)
    print(report.summary())
    return EXIT_PROBLEMS if report.errors else EXIT_OK


def _export(args: argparse.Namespace, progress: Progress) -> int:
    print(_tree_line(args.dest, export_tree(args.dbfile, args.dest, progress)))
    return EXIT_OK


def _import(args: argparse.Namespace, progress: Progress) -> int:
    print(_tree_line(args.dbfile, import_tree(args.src, args.dbfile, progress)))
    return EXIT_OK


def _tree_line(where: str, manifest: Manifest) -> str:
    return (
        f"{where}: {len(manifest.entries)} entries, version {manifest.version}, index {manifest.index_sha256}"
    )


def _backup(args: argparse.Namespace, progress: Progress) -> int:
    result = backup_database(args.dbfile, args.dest, progress)
    print(f"{args.dest}: {result.pages} pages, {result.entries} entries, version {result.version}")
    return EXIT_OK


def _health(args: argparse.Namespace, progress: Progress) -> int:
    sys.stdout.write(fetch_health(args.ipc_name))
    return EXIT_OK


COMMANDS: dict[str, tuple[Command, str, tuple[tuple[str, str], ...]]] = {
    "create-db": (
        _create,
        "create a database from the regular files of a folder (as create_pmxcfs_db)",
        (
            ("dir", "folder whose regular files become top-level files"),
            ("dbfile", "database, created if missing"),
        ),
    ),
    "check": (
        _check,
        "check a database offline and name every problem (read-only)",
        (("dbfile", "database to check"),),
    ),
    "export": (
        _export,
        "export the tree to a new folder, or a .tar/.tar.gz/.tgz/.tar.xz file (read-only)",
        (("dbfile", "database to export"), ("dest", "new folder or tar file")),
    ),
    "import": (
        _import,
        "import an export into a new database, identical to the exported one",
        (("src", "export folder or tar file"), ("dbfile", "new database (must not exist)")),
    ),
    "backup": (
        _backup,
        "consistent copy of a database, also while pmxcfs runs on it (read-only)",
        (("dbfile", "database to copy"), ("dest", "new database file (must not exist)")),
    ),
    "health": (
        _health,
        "the running daemon's health report, private paths included (root; over IPC)",
        (),
    ),
}
OPTIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "health": (("--ipc-name", DEFAULT_IPC_NAME, "the daemon's IPC service (default: %(default)s)"),),
}
"""Options of single commands beyond --progress: (flag, default, help)."""


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line and its subcommands' parsers (one per tool)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--progress", action="store_true", help="show progress on stderr (default: if a terminal)"
    )
    top = _Parser(
        prog=PROG,
        description="Operator tools for a pmxcfs database (config.db) and the running daemon.",
        epilog=EPILOG,
    )
    subs = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    by_name: dict[str, argparse.ArgumentParser] = {}
    for name, (_, help_text, positionals) in COMMANDS.items():
        sub = subs.add_parser(name, parents=[common], help=help_text, description=help_text)
        for arg, arg_help in positionals:
            sub.add_argument(arg, help=arg_help)
        for flag, default, flag_help in OPTIONS.get(name, ()):
            sub.add_argument(flag, default=default, help=flag_help)
        by_name[name] = sub
    return top, by_name


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    top, subs = parsers()
    args, extra = top.parse_known_args(argv)
    if extra:  # the subcommand's usage, not the top one's
        subs[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    args = _parse(argv)
    command = COMMANDS[args.command][0]
    progress = Progress.for_stderr(forced=args.progress)
    try:
        return command(args, progress)
    except PmxcfsError as exc:
        progress.finish()
        print(f"{PROG} {args.command}: {_describe(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a boundary: any file the command touched
        progress.finish()
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _describe(exc: PmxcfsError) -> str:
    what = f"{exc.what}: " if exc.what else ""
    return f"{what}{exc.reason or type(exc).__name__}"
