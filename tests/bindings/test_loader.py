"""load_library, check_cs_error and the CsError hierarchy."""

from __future__ import annotations

import ctypes
import pickle
from types import SimpleNamespace

import pytest

from bindings._loader import check_cs_error, cs_error, load_library
from bindings._types import CsErrorCode, cs_error_t
from errors import CsError, CsLibraryError, CsNotExist, CsTryAgain, PmxcfsError

SPECIAL = {2: CsLibraryError, 6: CsTryAgain, 12: CsNotExist}


@pytest.mark.parametrize("code", [c for c in CsErrorCode if c != CsErrorCode.CS_OK], ids=lambda c: c.name)
def test_every_error_code_maps_to_its_class(code: CsErrorCode):
    exc = cs_error(code, "cpg_join")
    assert type(exc) is SPECIAL.get(code, CsError)
    assert isinstance(exc, CsError)
    assert isinstance(exc, PmxcfsError)
    assert (exc.code, exc.name, exc.call) == (code, code.name, "cpg_join")
    assert str(exc) == f"cpg_join failed: {code.name} ({int(code)})"


def test_error_values_are_the_headers():
    assert CsErrorCode.CS_OK == 1
    assert CsErrorCode.CS_ERR_LIBRARY == 2
    assert CsErrorCode.CS_ERR_TRY_AGAIN == 6
    assert CsErrorCode.CS_ERR_BAD_HANDLE == 9
    assert CsErrorCode.CS_ERR_NOT_EXIST == 12
    assert CsErrorCode.CS_ERR_TOO_MANY_GROUPS == 30
    assert CsErrorCode.CS_ERR_SECURITY == 100
    assert len(CsErrorCode) == 30


def test_unknown_code_still_raises_cs_error():
    exc = cs_error(29)
    assert type(exc) is CsError
    assert str(exc) == "corosync call failed: unknown cs_error_t (29)"


def test_cs_error_pickles_and_keeps_fields():
    exc = pickle.loads(pickle.dumps(cs_error(6, "cpg_mcast_joined")))
    assert type(exc) is CsTryAgain
    assert (exc.code, exc.name, exc.call) == (6, "CS_ERR_TRY_AGAIN", "cpg_mcast_joined")


def test_check_cs_error_passes_ok_and_names_the_function():
    func = SimpleNamespace(__name__="cmap_get_uint32")
    assert check_cs_error(1, func, ()) == 1
    with pytest.raises(CsNotExist, match=r"cmap_get_uint32 failed: CS_ERR_NOT_EXIST \(12\)"):
        check_cs_error(12, func, ())


def test_load_library_declares_signatures_and_errcheck():
    # abs() from libc stands in for a function returning cs_error_t: abs(1) is CS_OK.
    lib = load_library(
        "libc.so.6", {"abs": ([ctypes.c_int], cs_error_t), "labs": ([ctypes.c_long], ctypes.c_long)}
    )
    assert lib.abs.argtypes == [ctypes.c_int]
    assert lib.abs(-1) == 1
    with pytest.raises(CsTryAgain) as info:
        lib.abs(-6)
    assert info.value.call == "abs"
    assert lib.labs(-6) == 6  # not cs_error_t: no errcheck


def test_missing_library_is_an_import_error_naming_the_package():
    with pytest.raises(ImportError, match=r"cannot load libnope\.so\.4 .*Debian: libnope4"):
        load_library("libnope.so.4", {})


def test_missing_function_is_an_import_error():
    with pytest.raises(ImportError, match="has no function cpg_nope"):
        load_library("libc.so.6", {"cpg_nope": ([], cs_error_t)})
