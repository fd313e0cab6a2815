"""debug-matrix: what one installed distribution put into the venv, and whether
its compiled modules are what ``import`` loads.

Run by the venv's interpreter after the suite's project was installed::

    python debug_matrix_inspect.py DIST_NAME

Prints one JSON object:

``site``        the site-packages directory the distribution is in;
``suffix``      the cell's ``EXT_SUFFIX``;
``top_level``   the importable top-level names it installed (packages and
                modules, from its RECORD);
``compiled``    ``{dotted name: file}`` for every extension module in its
                RECORD (files ending in one of ``EXTENSION_SUFFIXES``);
``twins``       ``{compiled name: [pure-Python module names]}``: modules of the
                same package that are its pure-Python fallback by name
                (``_speedups``/``_native``, ``_map``/``map``,
                ``_multidict``/``_multidict_py``, a ``fallback`` module);
``errors``      why a compiled module is wrong: built for another
                interpreter, failing to import, or loaded from another file;
``packages``    ``[name, version]`` of every distribution in the venv's
                site-packages (the suite's environment, recorded in report.json).

Only the distribution's own files are checked, never its dependencies' (a
debug build loads release-ABI wheels of test dependencies fine).
"""

import importlib
import importlib.machinery
import importlib.metadata
import json
import os
import sys
import sysconfig

_FALLBACK_NAMES = {"fallback", "_fallback", "_native", "native", "_pure", "pure", "_python", "_py"}
_FALLBACK_SUFFIXES = ("_py", "_pure", "_python", "_native", "_fallback")


def _stem(name):
    """A module's base name with the decorations that mark a C or Python twin removed."""
    stem = name.lstrip("_")
    for suffix in _FALLBACK_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    for prefix in ("c_", "c"):
        # _cmsgpack / c_foo: the C twin of msgpack / foo
        if stem.startswith(prefix) and len(stem) > len(prefix) + 2:
            return stem, stem[len(prefix):]
    return stem, stem


def _twins(compiled, pure):
    twins = {}
    for name in compiled:
        package, _, base = name.rpartition(".")
        stems = set(_stem(base))
        found = []
        for other in pure:
            opackage, _, obase = other.rpartition(".")
            if opackage != package or other == name:
                continue
            if obase in _FALLBACK_NAMES or stems & set(_stem(obase)):
                found.append(other)
        if found:
            twins[name] = sorted(found)
    return twins


def main(dist_name):
    dist = importlib.metadata.distribution(dist_name)
    site = os.path.realpath(str(dist.locate_file("")))
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    ext_suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    compiled, pure, top_level, errors = {}, [], set(), []
    for entry in dist.files or ():
        rel = str(entry)
        parts = rel.split("/")
        if parts[0].startswith("..") or parts[0].endswith((".dist-info", ".data")):
            continue
        if parts[0] == "__pycache__" or rel.endswith(".pyc"):
            continue
        path = os.path.realpath(str(dist.locate_file(entry)))
        ext = next((s for s in ext_suffixes if rel.endswith(s)), None)
        if ext is None and rel.endswith(".so"):
            errors.append(
                "%s is not an extension module of this interpreter (EXT_SUFFIX %s): "
                "built for another Python?" % (path, suffix)
            )
            continue
        if ext is not None:
            name = rel[: -len(ext)].replace("/", ".")
            if ext != suffix and ext != ".abi3.so":
                errors.append(
                    "%s was not built for this interpreter (EXT_SUFFIX %s): a wheel from "
                    "another build?" % (path, suffix)
                )
                continue
            compiled[name] = path
        elif rel.endswith(".py"):
            name = rel[:-3].replace("/", ".")
            if name.endswith(".__init__"):
                name = name[: -len(".__init__")]
            pure.append(name)
        else:
            continue
        top = parts[0][:-3] if len(parts) == 1 and rel.endswith(".py") else parts[0]
        if len(parts) == 1 and ext is not None:
            top = rel[: -len(ext)]
        top_level.add(top)
    for name, path in sorted(compiled.items()):
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append("import %s failed: %s: %s" % (name, type(exc).__name__, exc))
            continue
        loaded = os.path.realpath(getattr(module, "__file__", "") or "")
        if loaded != path:
            errors.append("import %s loaded %s, not the installed %s" % (name, loaded, path))
    packages = sorted(
        {
            (d.metadata["Name"], d.version)
            for d in importlib.metadata.distributions(path=[site])
            if d.metadata["Name"]
        },
        key=lambda p: p[0].lower(),
    )
    print(
        json.dumps(
            {
                "dist": dist.metadata["Name"],
                "version": dist.version,
                "site": site,
                "suffix": suffix,
                "top_level": sorted(top_level),
                "compiled": compiled,
                "twins": _twins(compiled, pure),
                "errors": errors,
                "packages": packages,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
