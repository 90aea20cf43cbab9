"""pmxcfs-py installed: the diversion, the files, and Debian's Python packages."""

from __future__ import annotations

from tests.package.common import BIN, DIVERTED, LIBDIR, STAND_IN, SYSTEM_PYTHON, diversion_owner, run


def test_the_original_moved_aside_and_ours_took_its_place() -> None:
    assert diversion_owner() == "pmxcfs-py"
    assert DIVERTED.read_bytes() == STAND_IN
    owners = run("dpkg", "-S", str(BIN)).stdout.splitlines()
    assert f"pmxcfs-py: {BIN}" in owners
    assert f"diversion by pmxcfs-py to: {DIVERTED}" in owners
    assert BIN.read_text().startswith(f"#!{SYSTEM_PYTHON}\n")


def test_ours_runs_on_debians_python_packages() -> None:
    probe = (
        f"import sys; sys.path.insert(0, '{LIBDIR}'); "
        "import main, pykka, peewee, ujson, pyrsistent, rrdtool; "
        "from fusefs import libfuse; "
        "print(*(m.__file__ for m in (pykka, peewee, ujson, pyrsistent, rrdtool, libfuse._fusepy)))"
    )
    done = run(SYSTEM_PYTHON, "-c", probe)
    assert done.returncode == 0, done.stderr
    files = done.stdout.split()
    assert len(files) == 6
    assert all(f.startswith("/usr/lib/python3/dist-packages/") for f in files), files
    assert files[-1].endswith("/fusepy.py")  # Debian's name for fusepy


def test_the_options_are_the_originals() -> None:
    done = run(str(BIN), "-h")
    assert done.returncode == 0, done.stderr
    for option in ("-f", "-d", "-l", "--foreground", "--debug", "--local"):
        assert option in done.stdout
    bad = run(str(BIN), "--no-such-option")
    assert bad.returncode == 1  # as the original: a bad option exits 1


def test_the_operator_tools_run() -> None:
    done = run("/usr/bin/pmxcfs-py-tool", "-h")
    assert done.returncode == 0, done.stderr
    assert "create-db" in done.stdout


def test_nothing_came_from_pip_and_the_code_is_byte_compiled() -> None:
    assert not list(LIBDIR.rglob("site-packages"))
    assert list((LIBDIR / "actors").glob("__pycache__/*.pyc")), "dh_python3 compiles on install"
