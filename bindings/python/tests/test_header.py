"""The binding's constants and function declarations against include/webhook/webhook.h,
parsed when the test runs, so that the two cannot drift apart."""

from __future__ import annotations

import ctypes
import re
import unittest
from typing import Dict, List, Tuple

import libwebhook as wh
from libwebhook import _native, constants, errors

from support import header_path


def _header_text() -> str:
    with open(header_path(), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Preprocessor lines (WH_EXTERN's own definition among them) are not declarations.
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def header_constants() -> Dict[str, int]:
    """Every WH_* enumerator with its value, and the integer #defines."""
    text = _header_text()
    found: Dict[str, int] = {}
    for body in re.findall(r"enum\s*\{(.*?)\}", text, flags=re.S):
        for name, value in re.findall(r"\b(WH_[A-Z0-9_]+)\s*=\s*(\d+)", body):
            found[name] = int(value)
    with open(header_path(), encoding="utf-8") as f:
        for name, value in re.findall(r"#define\s+(WH_[A-Z_]+)\s+(\d+)\s*$", f.read(), flags=re.M):
            found[name] = int(value)
    return found


def header_functions() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, [parameter types]) of every WH_EXTERN declaration."""
    out: Dict[str, Tuple[str, List[str]]] = {}
    for ret, name, params in re.findall(
        r"WH_EXTERN\s+([^;()]*?)\b(wh_[a-z0-9_]+)\s*\(([^;]*?)\)\s*;", _header_text(), flags=re.S
    ):
        params = " ".join(params.split())
        types = [] if params in ("", "void") else [_drop_name(p) for p in params.split(",")]
        out[name] = (" ".join(ret.split()), types)
    return out


def _drop_name(param: str) -> str:
    """"const char *name" -> "const char *"."""
    return re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\s*$", "", param.strip()).strip()


def _shape(ctype: str) -> Tuple[str, int]:
    """("char", 1) for "const char *", ("char", 2) for "const char *const *"."""
    stars = ctype.count("*")
    base = re.sub(r"\bconst\b|\*", " ", ctype).split()
    return (" ".join(base), stars)


_POINTER_TYPES = {
    _native._pp: "void**",
    _native._strs: "char**",
    ctypes.POINTER(ctypes.c_size_t): "size_t*",
    ctypes.POINTER(ctypes.c_int): "int*",
}


def compatible(ctype: str, py: object) -> bool:
    """Whether the ctypes type passes the C type the same way in the ABI."""
    base, stars = _shape(ctype)
    if stars == 0:
        if base == "void":
            return py is None
        if base.endswith("_cb"):  # a function pointer typedef
            return py is ctypes.c_void_p
        want = {
            "int": ctypes.c_int,
            "wh_option": ctypes.c_int,
            "long": ctypes.c_long,
            "unsigned": ctypes.c_uint,
            "size_t": ctypes.c_size_t,
            "int64_t": ctypes.c_int64,
        }.get(base)
        return want is not None and py is want
    if stars == 1:
        if base == "char":
            return py is ctypes.c_char_p
        if base == "void":
            return py in (ctypes.c_void_p, ctypes.c_char_p)  # c_char_p: a bytes body
        if base.startswith("wh_"):
            return py is ctypes.c_void_p
        return _POINTER_TYPES.get(py) == f"{base}*"
    if stars == 2:
        if base == "char":  # text out (to wh_free) or an array of strings in
            return py in (_native._pp, _native._strs)
        return base.startswith("wh_") and py is _native._pp
    return False


class HeaderTest(unittest.TestCase):
    def test_header_was_found_and_parsed(self) -> None:
        self.assertGreater(len(header_functions()), 75)
        self.assertIn("WH_OPT_RESULT_QUEUE", header_constants())

    def test_every_function_is_declared_with_its_arguments(self) -> None:
        header = header_functions()
        ours = _native.FUNCTIONS
        self.assertEqual(sorted(set(header) - set(ours)), [], "in the header, not in the binding")
        self.assertEqual(sorted(set(ours) - set(header)), [], "in the binding, not in the header")
        for name, (ret, params) in header.items():
            restype, argtypes = ours[name]
            with self.subTest(function=name):
                self.assertEqual(len(argtypes), len(params), f"{name}: argument count")
                self.assertTrue(compatible(ret, restype), f"{name}: returns {ret}, declared {restype}")
                for i, (ctype, py) in enumerate(zip(params, argtypes)):
                    self.assertTrue(compatible(ctype, py), f"{name}: argument {i + 1} is {ctype}, declared {py}")

    def test_constants_match(self) -> None:
        header = header_constants()
        options = {f"WH_OPT_{key.upper()}": number for key, (number, _) in constants.OPTIONS.items()}
        ep = {f"WH_EP_{key.upper()}": number for key, (number, _) in constants.ENDPOINT_SETTINGS.items()}
        plain = {
            f"WH_{name}": getattr(constants, name)
            for name in dir(constants)
            if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and isinstance(getattr(constants, name), int)
        }
        ours = {**plain, **options, **ep}
        header_only = {k: v for k, v in header.items() if k not in ours and not k.startswith("WH_VERSION")}
        self.assertEqual(header_only, {}, "constants of the header missing in the binding")
        for name, value in ours.items():
            with self.subTest(constant=name):
                self.assertIn(name, header, f"{name}: not in the header")
                self.assertEqual(value, header[name], name)

    def test_one_exception_class_per_error_code(self) -> None:
        codes = {v for k, v in header_constants().items() if re.fullmatch(r"WH_E[A-Z]+", k)}
        self.assertEqual(set(errors.BY_CODE), codes)
        for code, cls in errors.BY_CODE.items():
            self.assertTrue(issubclass(cls, wh.Error))
            self.assertIs(getattr(wh, cls.__name__), cls)
            self.assertEqual(cls("x").code, code)

    def test_outcome_names_cover_the_outcomes(self) -> None:
        header = header_constants()
        self.assertEqual(
            constants.OUTCOMES,
            {header["WH_DELIVERED"]: "delivered", header["WH_RETRYING"]: "retrying", header["WH_FAILED"]: "failed"},
        )

    def test_the_installed_package_is_tested(self) -> None:
        """Under ctest the package comes from pip's install into a venv, py.typed included."""
        import os

        venv = os.environ.get("WH_EXPECT_INSTALLED")
        if venv:
            self.assertTrue(os.path.realpath(wh.__file__).startswith(os.path.realpath(venv)), wh.__file__)
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(wh.__file__), "py.typed")))

    def test_versions_agree(self) -> None:
        header = header_constants()
        major, minor, patch = header["WH_VERSION_MAJOR"], header["WH_VERSION_MINOR"], header["WH_VERSION_PATCH"]
        self.assertEqual(wh.library_version(), f"{major}.{minor}.{patch}")
        self.assertEqual(wh.__version__, f"{major}.{minor}.{patch}")


if __name__ == "__main__":
    unittest.main()
