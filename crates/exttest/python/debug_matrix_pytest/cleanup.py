"""What is put back and cleared between leak hunting's runs, as regrtest's ``-R`` does: the
interpreter-wide state a test may change (warnings filters, ``copyreg``, the importer caches,
pytest's log capture) and the caches that fill on first use."""

import gc
import sys
import warnings


class SavedState:
    """Interpreter-wide state a test may change and that is put back after
    every run, so that its growth is not counted as a leak."""

    def __init__(self):
        import copyreg

        self.filters = warnings.filters[:]
        self.dispatch = copyreg.dispatch_table.copy()
        self.importer_cache = sys.path_importer_cache.copy()
        try:
            import zipimport

            self.zipdirs = zipimport._zip_directory_cache.copy()
        except (ImportError, AttributeError):
            self.zipdirs = None
        self.log_handlers = _log_capture_state()

    def restore(self):
        import copyreg

        warnings.filters[:] = self.filters
        if hasattr(warnings, "_filters_mutated"):
            warnings._filters_mutated()
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(self.dispatch)
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(self.importer_cache)
        if self.zipdirs is not None:
            import zipimport

            zipimport._zip_directory_cache.clear()
            zipimport._zip_directory_cache.update(self.zipdirs)
        for handler, records, nrecords, stream, pos in self.log_handlers:
            if handler.records is records:
                del records[nrecords:]
            if handler.stream is stream:
                try:
                    stream.seek(pos)
                    stream.truncate()
                except (OSError, ValueError):
                    pass


def _log_capture_state():
    """pytest's log-capture handlers on the root logger, with their fill."""
    try:
        from _pytest.logging import LogCaptureHandler
    except ImportError:
        return []
    import logging

    state = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogCaptureHandler):
            stream = handler.stream
            try:
                pos = stream.tell()
            except (AttributeError, OSError, ValueError):
                continue
            state.append((handler, handler.records, len(handler.records), stream, pos))
    return state


def clear_caches(light=False):
    """Clear the caches that fill on first use; ``light`` leaves out the walks over every
    module (warning registries) and every ABC (their caches)."""
    modules = sys.modules
    for mod in () if light else list(modules.values()):
        try:
            if "__warningregistry__" in getattr(mod, "__dict__", ()):
                del mod.__warningregistry__
        except (AttributeError, TypeError):
            pass
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass

    def call(modname, *path):
        mod = modules.get(modname)
        if mod is None:
            return
        obj = mod
        for part in path:
            obj = getattr(obj, part, None)
            if obj is None:
                return
        try:
            obj()
        except Exception:
            pass

    call("re", "purge")
    call("linecache", "clearcache")
    call("struct", "_clearcache")
    call("urllib.parse", "clear_cache")
    call("fnmatch", "_compile_pattern", "cache_clear")
    call("_strptime", "_regex_cache", "clear")
    call("inspect", "_filesbymodname", "clear")
    call("inspect", "modulesbyfile", "clear")
    call("inspect", "_shadowed_dict_from_weakref_mro_tuple", "cache_clear")
    call("importlib.metadata", "FastPath", "__new__", "cache_clear")
    call("fractions", "_hash_algorithm", "cache_clear")
    typing = modules.get("typing")
    if typing is not None:
        for func in getattr(typing, "_cleanups", ()):
            try:
                func()
            except Exception:
                pass
    abc_mod = None if light else modules.get("collections.abc")
    if abc_mod is not None:
        from inspect import isabstract

        for name in getattr(abc_mod, "__all__", ()):
            cls = getattr(abc_mod, name, None)
            if cls is None or not isabstract(cls):
                continue
            for sub in cls.__subclasses__() + [cls]:
                clear = getattr(sub, "_abc_caches_clear", None)
                if clear is not None:
                    clear()
    # Last: the functions above may repopulate these.
    internal = getattr(sys, "_clear_internal_caches", None)
    if internal is not None:
        internal()
    else:
        sys._clear_type_cache()


def gc_collect():
    # Up to three full collections, as regrtest does, but stop as soon as one
    # finds nothing: a full collection costs ~0.1 s on a debug build.
    for _ in range(3):
        if not gc.collect():
            break


def resync_warnings():
    """Make the interpreter's warnings state let go of a filters list a test made.

    CPython's ``_warnings`` keeps the last ``warnings.filters`` list a warning was matched
    against (``Python/_warnings.c``), so after a test that warned inside its own
    ``catch_warnings`` it holds that test's list, which then looks like an orphan to the
    retained check. A warning that the restored list ignores makes it take that list.
    """
    warnings.filters.insert(0, ("ignore", None, Warning, None, 0))
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()
    try:
        warnings.warn("debug-matrix: resync", UserWarning)
    finally:
        del warnings.filters[0]
        if mutated is not None:
            mutated()

