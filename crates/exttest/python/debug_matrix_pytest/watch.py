"""What the plugin watches beside the tests: where the suite's compiled modules were loaded
from, the GIL on free-threaded interpreters, and the sanitizers' log files.

Each watcher is looked at after collection, after every test (naming it) and at the end,
and writes an event only when something changed since its last look.
"""

import glob
import importlib.machinery
import json
import os
import sys


class ModuleWatch:
    """``module`` events: the first time one of the suite's compiled modules or their
    pure-Python twins is in ``sys.modules``, the file it was loaded from."""

    def __init__(self, path):
        self.watched = _load_watch_list(path)
        self.seen = set()

    def look(self, results):
        modules = sys.modules
        for name in self.watched:
            if name in self.seen:
                continue
            module = modules.get(name)
            if module is None:
                continue
            self.seen.add(name)
            path = getattr(module, "__file__", None)
            results.write(
                {"event": "module", "name": name, "file": os.path.realpath(path) if path else None},
                sync=True,
            )


def _load_watch_list(path):
    """The module names to watch: the suite's compiled modules and their twins."""
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    names = set(data.get("compiled", {}))
    for twins in data.get("twins", {}).values():
        names.update(twins)
    return sorted(names)


class GilWatch:
    """``gil`` events on a free-threaded interpreter: the state at start, and every change,
    with the extension modules imported since the last look."""

    def __init__(self, free_threaded):
        self.free_threaded = free_threaded
        self.enabled = gil_enabled()
        self.modules = set(sys.modules)

    def start(self, results):
        if self.free_threaded:
            results.write(
                {"event": "gil", "enabled": self.enabled, "test": None, "modules": []}, sync=True
            )

    def look(self, results, test):
        if not self.free_threaded:
            return
        enabled = gil_enabled()
        current = set(sys.modules)
        new = current - self.modules
        self.modules = current
        if enabled == self.enabled:
            return
        self.enabled = enabled
        modules = sorted(name for name in new if _is_extension(sys.modules.get(name)))
        results.write(
            {"event": "gil", "enabled": enabled, "test": test, "modules": modules}, sync=True
        )


def gil_enabled():
    """``sys._is_gil_enabled()``; True where it does not exist."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return bool(is_enabled()) if is_enabled is not None else True


def _is_extension(module):
    path = getattr(module, "__file__", None) or ""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


class SanitizerWatch:
    """``sanitizer`` events: what each ``PREFIX.*`` log file gained since the last look."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.seen = {}

    def look(self, results, test):
        if not self.prefix:
            return
        for path in sorted(glob.glob(glob.escape(self.prefix) + ".*")):
            start = self.seen.get(path, 0)
            try:
                with open(path, "rb") as fp:
                    fp.seek(start)
                    data = fp.read()
            except OSError:
                continue
            if not data:
                continue
            end = start + len(data)
            self.seen[path] = end
            results.write(
                {
                    "event": "sanitizer",
                    "test": test,
                    "file": path,
                    "start": start,
                    "end": end,
                    "report": data.decode("utf-8", "backslashreplace"),
                },
                sync=True,
            )
