"""Load a C library by soname, give each function its C signature, turn cs_error_t into exceptions.

Follows pyudev's ``_ctypeslib``: one ``SIGNATURES`` table per library, one loader that sets
``argtypes``, ``restype`` and ``errcheck``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from bindings._types import (
    CS_ERR_LIBRARY,
    CS_ERR_NOT_EXIST,
    CS_ERR_TRY_AGAIN,
    CS_OK,
    CsErrorCode,
    cs_error_t,
)
from errors import CsError, CsLibraryError, CsNotExist, CsTryAgain

Signatures: TypeAlias = Mapping[str, tuple[Sequence[Any], Any]]
"""``{"cpg_join": ([cpg_handle_t, POINTER(cpg_name)], cs_error_t), ...}``: argtypes and restype."""

_ERROR_CLASSES: dict[int, type[CsError]] = {
    CS_ERR_LIBRARY: CsLibraryError,
    CS_ERR_TRY_AGAIN: CsTryAgain,
    CS_ERR_NOT_EXIST: CsNotExist,
}


def cs_error(code: int, call: str = "") -> CsError:
    """The exception for the cs_error_t ``code`` returned by the function ``call``."""
    try:
        name = CsErrorCode(code).name
    except ValueError:
        name = "unknown cs_error_t"
    return _ERROR_CLASSES.get(code, CsError)(code, name, call)


def check_cs_error(result: int, func: Any, arguments: tuple[Any, ...]) -> int:
    """``errcheck`` for every function returning cs_error_t: raise unless the result is CS_OK.

    Raises:
        CsError: the subclass for the code (CsTryAgain, CsLibraryError, CsNotExist) if it has one.
    """
    if result != CS_OK:
        raise cs_error(result, getattr(func, "__name__", ""))
    return result


def _package_hint(soname: str) -> str:
    """Debian names runtime library packages after the soname: libcpg.so.4 is in libcpg4."""
    stem, _, version = soname.partition(".so.")
    return f"{stem}{version}" if version else stem


def load_library(soname: str, signatures: Signatures) -> ctypes.CDLL:
    """Load ``soname`` (not the -dev symlink) and declare the functions in ``signatures``.

    Functions declared to return ``cs_error_t`` get :func:`check_cs_error` as ``errcheck``.

    Raises:
        ImportError: the library is missing or lacks one of the functions.
    """
    try:
        lib = ctypes.CDLL(soname, use_errno=True)
    except OSError as exc:
        raise ImportError(
            f"cannot load {soname} ({exc}); install the package that ships it "
            f"(Debian: {_package_hint(soname)})",
            name=soname,
        ) from exc
    for name, (argtypes, restype) in signatures.items():
        try:
            func = getattr(lib, name)
        except AttributeError as exc:
            raise ImportError(
                f"{soname} has no function {name}: wrong library version?", name=soname
            ) from exc
        func.argtypes = list(argtypes)
        func.restype = restype
        if restype is cs_error_t:
            func.errcheck = check_cs_error
    return lib
