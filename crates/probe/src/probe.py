# Read back what this interpreter really is and print it as ONE JSON object on stdout.
#
# Run by the `probe` crate as `python -s -c <this file>`. It must run on every CPython the
# matrix builds (3.8+), must not crash when optional pieces (ctypes, _testcapi, pyconfig.h)
# are missing -- it reports them instead -- and must not change what it measures: the GIL
# state is read before anything is imported.
import sys

# The GIL state first: on a free-threaded build, importing an extension that does not declare
# free-threading support turns the GIL back on.
_is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
GIL_ENABLED = bool(_is_gil_enabled()) if _is_gil_enabled is not None else True

# `-c` puts the current directory first on sys.path; drop it so a stray json.py or ctypes/
# there cannot stand in for the standard library (what `-P` does on 3.11+).
if sys.path and sys.path[0] == "":
    del sys.path[0]

import os

# Anything that writes to fd 1 while we work (readline's terminal setup, a chatty import)
# goes to stderr instead; the JSON is written to the saved stdout at the end.
_json_out = os.dup(1)
os.dup2(2, 1)

import gc
import json
import sysconfig

CONFIG_VARS = [
    "Py_DEBUG",
    "Py_TRACE_REFS",
    "Py_REF_DEBUG",
    "WITH_PYMALLOC",
    "WITH_VALGRIND",
    "Py_GIL_DISABLED",
    "Py_ENABLE_SHARED",
]

# (module, required): a required module that fails to import breaks the cell's promise.
MODULES = [
    ("ssl", True),
    ("zlib", True),
    ("ctypes", True),
    ("_ctypes", False),
    ("bz2", False),
    ("lzma", False),
    ("sqlite3", False),
    ("readline", False),
    ("_decimal", False),
    ("_hashlib", False),
    ("_uuid", False),
    ("_curses", False),
    ("_dbm", False),
    ("_gdbm", False),
]


def describe(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def json_value(value):
    """A config value as JSON: ints stay ints, numeric strings become ints, None is null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return text


def read_config_vars():
    header = {}
    header_error = None
    header_path = None
    try:
        header_path = sysconfig.get_config_h_filename()
        with open(header_path) as fp:
            header = sysconfig.parse_config_h(fp)
    except Exception as exc:
        header_error = describe(exc)
    config_vars = {}
    for name in CONFIG_VARS:
        config_vars[name] = {
            "sysconfig": json_value(sysconfig.get_config_var(name)),
            "pyconfig_h": json_value(header.get(name)),
        }
    return config_vars, header_path, header_error


def import_failures():
    failures = []
    for name, required in MODULES:
        try:
            __import__(name)
        except BaseException as exc:  # an extension can fail with anything, even SystemError
            failures.append({"module": name, "required": required, "error": describe(exc)})
    return failures


def read_allocator():
    errors = []
    for module in ("_testinternalcapi", "_testcapi"):
        try:
            return __import__(module).pymem_getallocatorsname(), None
        except Exception as exc:
            errors.append("%s: %s" % (module, describe(exc)))
    return None, "; ".join(errors)


def refcount_check():
    """Does Py_IncRef move sys.gettotalrefcount()? The delta is net of a control call."""
    try:
        import ctypes
    except BaseException as exc:
        return {"delta": None, "error": "ctypes unavailable: " + describe(exc)}
    try:
        incref = ctypes.pythonapi.Py_IncRef
        decref = ctypes.pythonapi.Py_DecRef
        incref.argtypes = decref.argtypes = [ctypes.py_object]
        incref.restype = decref.restype = None
        o = object()
        target = ctypes.py_object(o)
        null = ctypes.py_object()  # Py_IncRef(NULL) does nothing: the same call, no incref

        def measure(arg):
            gc.collect()
            before = sys.gettotalrefcount()
            incref(arg)
            after = sys.gettotalrefcount()
            return after - before

        gc.disable()
        try:
            measure(null)  # warm up ctypes' caches so both measurements see the same noise
            control = measure(null)
            raw = measure(target)
            decref(target)
        finally:
            gc.enable()
        return {"delta": raw - control, "error": None}
    except Exception as exc:
        return {"delta": None, "error": describe(exc)}


def getobjects_check():
    """Does a fresh instance of a fresh class show up in sys.getobjects(0, cls)?"""
    try:

        class ProbeMarker(object):
            pass

        marker = ProbeMarker()
        found = any(obj is marker for obj in sys.getobjects(0, ProbeMarker))
        return {"found": found, "error": None}
    except Exception as exc:
        return {"found": None, "error": describe(exc)}


# (sanitizer, a symbol only its runtime defines, the compiler flag): a sanitizer is in this
# interpreter when its runtime's symbol resolves in the running process (ctypes.CDLL(None) is
# dlopen(NULL): the executable and every library loaded with it) and PY_CFLAGS has its flag.
SANITIZERS = [
    ("address", "__asan_init", "-fsanitize=address"),
    ("thread", "__tsan_init", "-fsanitize=thread"),
    ("undefined", "__ubsan_handle_add_overflow", "-fsanitize=undefined"),
]


def sanitizers():
    """Each known sanitizer: is its runtime resolvable here, is its flag in PY_CFLAGS?"""
    cflags = (sysconfig.get_config_var("PY_CFLAGS") or "").split()
    try:
        import ctypes

        process = ctypes.CDLL(None)
        error = None
    except BaseException as exc:
        process, error = None, "ctypes unavailable: " + describe(exc)
    out = {}
    for name, symbol, flag in SANITIZERS:
        runtime = None
        if process is not None:
            try:
                getattr(process, symbol)
                runtime = True
            except AttributeError:
                runtime = False
        out[name] = {"symbol": symbol, "runtime": runtime, "cflag": flag in cflags, "error": error}
    return out


def main():
    config_vars, header_path, header_error = read_config_vars()
    has_gettotalrefcount = hasattr(sys, "gettotalrefcount")
    has_getobjects = hasattr(sys, "getobjects")
    allocator, allocator_error = read_allocator()
    facts = {
        "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
        "abiflags": getattr(sys, "abiflags", ""),
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "config_vars": config_vars,
        "pyconfig_h": header_path,
        "pyconfig_h_error": header_error,
        "config_args": sysconfig.get_config_var("CONFIG_ARGS"),
        "cc": sysconfig.get_config_var("CC"),
        "has_gettotalrefcount": has_gettotalrefcount,
        "has_getobjects": has_getobjects,
        "gil_enabled": GIL_ENABLED,
        "allocator": allocator,
        "allocator_error": allocator_error,
        "pythonmalloc": os.environ.get("PYTHONMALLOC"),
        "failed_imports": import_failures(),
        "refcount_check": refcount_check() if has_gettotalrefcount else None,
        "getobjects_check": getobjects_check() if has_getobjects else None,
        "sanitizers": sanitizers(),
    }
    data = (json.dumps(facts, sort_keys=True) + "\n").encode("utf-8")
    while data:
        data = data[os.write(_json_out, data):]


main()
