"""debug-matrix's pytest plugin: crash-safe event log, hang timeout, leak hunting.

Load it with ``-p debug_matrix_pytest`` and this directory on ``PYTHONPATH``::

    PYTHONPATH=crates/exttest/python python -m pytest -p debug_matrix_pytest \\
        --dm-results results.jsonl --dm-leaks --dm-timeout 300 tests/

It needs nothing but pytest (written for pytest 8 and 9; checked with 8.4.2
and 9.2.0 on 3.11 and 3.13) and the standard library, and works on every interpreter: on a release build the
leak hunt is reported as unavailable and the tests simply run.

Options
-------
``--dm-results PATH``
    Append one JSON object per line to PATH.  Every line is written with a
    single ``os.write`` on an ``O_APPEND`` descriptor, so a crash (segfault,
    abort, ``os._exit``) leaves every event written before it, and several
    processes may share a file.  ``start`` events are also ``fsync``'d, so the
    last line of a file whose session died without a ``finish`` event names
    the test that killed it.
``--dm-leaks``
    Hunt reference and memory-block leaks (needs ``sys.gettotalrefcount``,
    i.e. a ``Py_REF_DEBUG`` build: ``--with-pydebug`` or ``-DPy_REF_DEBUG``).
``--dm-leak-runs WARMUP:RUNS``
    Extra runs per test: WARMUP unmeasured, then RUNS measured (default 3:3,
    like regrtest's ``-R 3:3``).
``--dm-leak-screen WARMUP:RUNS``
    The cheap screen every leak-checked test goes through first (default
    3:2, see Leak hunting); ``0:0`` puts every test through the full
    protocol.
``--dm-modules PATH``
    A JSON file ``{"compiled": {name: file}, "twins": {name: [names]}}``:
    the suite's own extension modules and their pure-Python twins.  The
    first time one of them is in ``sys.modules`` (checked after collection,
    after every test and at the end) a ``module`` event says from which file
    it was loaded.
``--dm-mark-stderr``
    Before each test, write the line ``debug-matrix: start <test id>`` to
    the process's real stderr (a dup of fd 2 taken at start-up, so pytest's
    output capture does not swallow it), preceded by a newline so it starts
    a line even after pytest's progress dots.  Tools writing to the same
    stderr (valgrind memcheck, AddressSanitizer, faulthandler) can then be
    attributed to the test that was running.
``--dm-sanitizer-log PREFIX``
    The ``log_path`` given to ThreadSanitizer/UndefinedBehaviorSanitizer (in
    ``TSAN_OPTIONS``/``UBSAN_OPTIONS``): the runtime writes ``PREFIX.<pid>``,
    out of reach of pytest's fd capture.  After collection, after every test
    and at the end, what the files gained since the last look is written as a
    ``sanitizer`` event naming the test that was running (``null`` outside
    tests), with the file and the byte range, so what a halting sanitizer
    writes after the last look can still be found.
``--dm-timeout SECONDS``
    Hang guard: ``faulthandler.dump_traceback_later(SECONDS, exit=True)`` is
    armed, to the real stderr, at the start of each test and re-armed for each
    phase (setup, call, every leak-hunting re-run, teardown), so any one of
    them may take SECONDS.  On expiry the tracebacks of all threads go to
    stderr and the process exits with status 1; the ``start`` event is
    already on disk.  It takes over from pytest's ``faulthandler_timeout`` ini
    option (one process has one such timer).

Free-threaded interpreters
--------------------------
On a free-threaded build (``Py_GIL_DISABLED``) the plugin writes a ``gil``
event at session start with ``sys._is_gil_enabled()``, and another whenever
the state changes (importing an extension module that does not declare
``Py_mod_gil`` turns the GIL back on for the whole process): after
collection, after each test (naming it), with the extension modules that
appeared in ``sys.modules`` since the last look.

Events
------
The events, one JSON object per line with its kind in ``event`` (``session``,
``baseline``, ``collect_error``, ``module``, ``signals``, ``start``, ``end``,
``leak``, ``finish``), are specified in one place, ``events.schema.json``
beside this file: every kind, every field, what it means, with examples.
The plugin's tests (``plugin-tests/``) validate every event this plugin
writes against it, and ``crates/exttest/src/events.rs`` parses its examples.
Change the three together.

Leak hunting
------------
Only tests whose call phase passed are hunted; a skip or failure raised in
the body, one a unittest ``TestCase`` recorded instead of raising
(``skipTest``, ``expectedFailure``), and any test marked xfail are not.
After pytest's own call of the test function, the plugin's innermost
``pytest_runtest_call`` wrapper calls ``item.runtest()`` again, in two
steps:

1. the screen, SCREEN_WARMUP+SCREEN_RUNS calls (default 3:2): automatic
   garbage collection off, the heap found before the screen frozen
   (``gc.freeze()``), caches cleared and a collection after each call that
   therefore traverses only what the calls allocated.  The leak rule below
   is applied to the screened deltas (minus the no-op's): a test that no
   signal grows by at least 1 in every screened call is judged clean there,
   at a few times the cost of one call;
2. a suspect goes through the full protocol below, WARMUP+RUNS calls
   (default 3:3), which alone decides whether it leaks.

A test that reports subtests while it runs (unittest's ``subTest``, pytest's
``subtests`` fixture) is not re-run: its re-runs would report again, into
pytest's statistics and outcome.  A test the full protocol finds growing is
run once more between two snapshots of the tracked objects (``gc.get_objects``):
if it made new objects and every reference to each of them is accounted for by
another tracked object, what grows is state the test keeps reachable (a
registry, a patched module attribute, a list the test appends to), and the test
is ``not_judged`` as not re-runnable, with the types that grew; an object with
a reference nothing tracked explains (an orphan, which is what a lost
``Py_DECREF`` leaves) or growth of untracked objects only (ints, strings) keeps
the leak.

A leak adds at least one reference or block on every call, so it shows in
every screened call and is then confirmed; what the screen over-reports
(a cache filling, a warning registry) the full protocol settles.  A unittest
re-run that records an outcome (a skip, a failure) makes the test
not re-runnable, and the outcome is taken off the item so that pytest
reports the first call's.  The full protocol calls ``item.runtest()``
WARMUP+RUNS more times.  So setup and teardown run once
per test, and function-scoped fixtures are shared by every run (a test must
be re-runnable with the same fixture values; one that is not, e.g. one that
consumes a fixture's iterator, is not judged: ``not re-runnable: run N of
M raised ...``).  Unittest ``TestCase`` items re-run ``setUp``/``tearDown`` each
time; doctest items get their globals restored before each re-run.

Before the first run and after each run the plugin, like regrtest's ``-R``:

* restores ``warnings.filters``, ``copyreg.dispatch_table``,
  ``sys.path_importer_cache`` and ``zipimport``'s directory cache;
* drops every module's ``__warningregistry__``, clears ``linecache``,
  ``re``'s, ``struct``'s, ``typing``'s, ``fnmatch``'s, ``urllib.parse``'s,
  ``_strptime``'s, ``inspect``'s, ``importlib.metadata``'s and the
  ``collections.abc`` ABCs' caches where those modules are loaded, and the
  interpreter's type/internal caches (``sys._clear_internal_caches`` or
  ``sys._clear_type_cache``);
* flushes the standard streams and runs ``gc.collect()`` until it finds
  nothing (at most three times).

Warnings raised by re-runs are recorded into a throw-away list (pytest's own
list would otherwise grow by one record per run), and pytest's log-capture
handlers are truncated back to what the first call left (same reason).
Before each re-run, the stateful built-in fixtures the test uses are reset
as a fresh instance would be: ``monkeypatch.undo()``, ``recwarn.clear()``
(a test using ``recwarn`` keeps its warnings, not the throw-away list),
``caplog.clear()``, and ``readouterr()`` on ``capsys``/``capfd`` & co.
What a test accumulates in other fixtures across runs still counts: a
function-scoped fixture returning a list the test appends to, or
``request.addfinalizer`` called from the test body, looks like a leak.

After each run it samples ``sys.gettotalrefcount()`` and
``sys.getallocatedblocks()`` (minus the immortal interned strings on 3.13+
and the quickened code objects on 3.11, as regrtest does); the deltas of the
RUNS measured runs are kept.

Calibration: at session start a no-op function is put through exactly the
same loop (same clean-up, same warnings/log handling, same census, same
bookkeeping) twice; the first pass warms the loop itself up and is dropped,
the second one's deltas, reported in the ``baseline`` event, are subtracted
run by run from every test's deltas (and its type growth from every test's
type growth).  On a quiet interpreter the baseline is all zeros; what it
absorbs is the loop's own deterministic residue, e.g. a fixed +1 ref in the
first measured run with a single warm-up run, or the block shuffle a type
census leaves behind.

The rule, regrtest's: a test leaks if EVERY baseline-corrected measured
reference delta is >= 1, or EVERY corrected block delta is >= 1.  Noise such
as ``[3, 0, 0]`` or ``[8, -8, 1]`` is not a leak; ``[2, 2, 2]`` is.

Type census (trace-refs builds, where ``sys.getobjects`` exists): the
objects alive are counted by ``type(o).__name__`` after the warm-up and
after the last measured run.  The census's own objects are left out (its
list, dict, the name strings it made, its non-cached ints: see
``_census``), and the counters are re-sampled after the first census so it
does not count in the first measured delta.  Types whose count grew by at
least RUNS (one per measured run) are reported in the leak event.
"""

import faulthandler
import gc
import glob
import importlib.machinery
import json
import os
import sys
import sysconfig
import time
import warnings

import pytest

# --------------------------------------------------------------------------
# results file


class _Results:
    """Append-only JSON-lines writer that survives the process crashing."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        if path:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, event, sync=False):
        if self.fd is None:
            return
        line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
        data = line.encode("utf-8", "backslashreplace")
        # One write() on an O_APPEND descriptor: the line lands whole, even
        # with several writers, and is in the kernel before we return.
        while data:
            written = os.write(self.fd, data)
            data = data[written:]
        if sync:
            try:
                os.fsync(self.fd)
            except OSError:
                pass

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --------------------------------------------------------------------------
# leak hunting machinery


def _leak_support():
    """(available, reason)"""
    if not hasattr(sys, "gettotalrefcount"):
        return False, (
            "sys.gettotalrefcount is missing: this interpreter is not a "
            "Py_REF_DEBUG build (--with-pydebug or -DPy_REF_DEBUG)"
        )
    return True, None


# Deltas are stored as pooled ints, so that storing one never allocates an
# object between two samples (regrtest does the same).
_INT_POOL = {v: v for v in range(-1000, 1000)}


def _pooled(value):
    return _INT_POOL.setdefault(value, value)


def _block_adjustment_func():
    """What to subtract from sys.getallocatedblocks(), as regrtest does."""
    interned = getattr(sys, "getunicodeinternedsize", None)
    if interned is not None:
        try:
            interned(_only_immortal=True)
        except TypeError:
            pass
        else:
            return lambda: interned(_only_immortal=True)
    quickened = getattr(sys, "_getquickenedcount", None)
    if quickened is not None:
        return quickened
    return lambda: 0


def _warm_caches():
    # Fill the interpreter's small caches so that their first use does not
    # look like a leak (single-byte bytes, latin-1 chars, small ints).
    s = bytes(range(256))
    for i in range(256):
        s[i : i + 1]
    [chr(i) for i in range(256)]
    list(range(-5, 257))


def _census(previous=None):
    """Count live objects by ``type(o).__name__`` with ``sys.getobjects``.

    Returns ``(counts, fresh)``: ``fresh`` lists the name strings the census
    itself created (a static type's ``__name__`` is a new str each time).
    The census's own objects are not counted: its list, dict and ``fresh``
    list and, when ``previous`` (an earlier census, still alive) is given,
    that census's tuple, dict, fresh strings and non-cached ints.  Every
    other object this function creates is created after ``sys.getobjects``
    took its snapshot, so it is not in it.
    """
    counts = {}
    fresh = []
    objs = sys.getobjects(0)
    skip = {id(objs), id(counts), id(fresh)}
    if previous is not None:
        prev_counts, prev_fresh = previous
        skip.add(id(previous))
        skip.add(id(prev_counts))
        skip.add(id(prev_fresh))
        for name in prev_fresh:
            skip.add(id(name))
        for count in prev_counts.values():
            if not -5 <= count <= 256:
                skip.add(id(count))
    for obj in objs:
        if id(obj) in skip:
            continue
        tp = type(obj)
        name = tp.__name__
        if name in counts:
            counts[name] += 1
        else:
            counts[name] = 1
            if tp.__name__ is not name:
                fresh.append(name)
    obj = tp = name = objs = None
    return counts, fresh


class _SavedState:
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


def _clear_caches():
    modules = sys.modules
    for mod in list(modules.values()):
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
    abc_mod = modules.get("collections.abc")
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


def _gc_collect():
    # Up to three full collections, as regrtest does, but stop as soon as one
    # finds nothing: a full collection costs ~0.1 s on a debug build.
    for _ in range(3):
        if not gc.collect():
            break


class _RerunFailed(Exception):
    pass


def _call_once(func, before_each, record_warnings, i, total):
    """Re-run number ``i`` of ``total``: None, or the text of what it raised
    (Ctrl-C, SystemExit and ``pytest.exit`` propagate).  With
    ``record_warnings`` its warnings go to a throw-away list."""
    if before_each is not None:
        before_each()
    try:
        if record_warnings:
            with warnings.catch_warnings(record=True):
                func()
        else:
            func()
    except BaseException as exc:  # noqa: B902 - pytest outcomes too
        if isinstance(exc, (KeyboardInterrupt, SystemExit, pytest.exit.Exception)):
            raise
        return _describe_rerun_error(i, total, exc)
    return None


def _describe_rerun_error(i, total, exc):
    text = str(exc).strip()
    return "run %d of %d raised %s%s" % (
        i + 1,
        total,
        type(exc).__name__,
        ": " + text.splitlines()[0] if text else "",
    )


class Hunter:
    """Runs a callable WARMUP+RUNS times and measures what each run left."""

    def __init__(self, warmups, runs):
        self.warmups = warmups
        self.runs = runs
        self.census = hasattr(sys, "getobjects")
        self._adjust = _block_adjustment_func()

    def screen(self, func, warmups, runs, before_each=None, record_warnings=True):
        """Return raw (refs, blocks) of ``runs`` measured runs after ``warmups``
        unmeasured ones: the screen every test goes through (see
        ``_frozen_runs`` for why it is cheap).  What it over-reports (a cache
        filling up, a warning registry) is settled by ``measure``, which alone
        decides."""
        refs, blocks, _ = self._frozen_runs(
            func, warmups, runs, False, before_each, record_warnings
        )
        return refs, blocks

    def measure(self, func, before_each=None, record_warnings=True):
        """Return (refs, blocks, types) for WARMUP+RUNS runs, raw: the full
        protocol.

        ``before_each`` is called before every run; with
        ``record_warnings`` each run's warnings go to a throw-away list.

        ``types`` is {name: growth} over the measured runs, or None.
        Raises _RerunFailed (with the exception text) if a run raises.
        """
        return self._frozen_runs(
            func, self.warmups, self.runs, self.census, before_each, record_warnings
        )

    def _frozen_runs(self, func, warmups, runs, census, before_each, record_warnings):
        """Run ``func`` ``warmups + runs`` times, restoring state, clearing
        caches and collecting garbage after each run, and return the deltas
        of the measured runs and, with ``census``, the type census.

        The collections never traverse the heap the test found:
        ``gc.freeze()`` moves every object alive before the runs to the
        permanent generation, so a collection after each run (automatic
        collection is off while the runs last) traverses only what the runs
        allocated and still hold, and frees their cyclic garbage, including
        what a run dropped from an earlier run (a collection of a debug
        build's whole heap with numpy loaded takes a quarter of a second).
        Garbage frozen with the heap stays put, so it cannot change a delta.
        ``gc.unfreeze()`` gives the heap back afterwards.
        """
        total = warmups + runs
        # Pre-allocate everything the loop stores.
        rc = [0] * total
        blocks = [0] * total
        saved = _SavedState()
        saved.restore()
        _clear_caches()
        was_enabled = gc.isenabled()
        gc.disable()
        gc.freeze()
        try:
            error, census_before = self._run_loop(
                func, warmups, census, before_each, record_warnings, saved, rc, blocks
            )
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
        if error is not None:
            saved.restore()
            raise _RerunFailed(error)
        types = None
        if census_before is not None:
            after = _census(census_before)[0]
            before = census_before[0]
            types = {}
            for name, count in after.items():
                grown = count - before.get(name, 0)
                if grown:
                    types[name] = grown
        return rc[warmups:], blocks[warmups:], types

    def _run_loop(self, func, warmups, census, before_each, record_warnings, saved, rc, blocks):
        """The runs themselves; returns (error text or None, census or None)."""
        gettotalrefcount = sys.gettotalrefcount
        getallocatedblocks = sys.getallocatedblocks
        adjust = self._adjust
        total = len(rc)
        census_before = None
        rc_before = gettotalrefcount()
        blk_before = getallocatedblocks() - adjust()
        for i in range(total):
            if i == warmups and census:
                census_before = _census()
                # Settle what the census disturbed, then re-sample, so that
                # it does not count in the first measured run.
                _clear_caches()
                _gc_collect()
                rc_before = gettotalrefcount()
                blk_before = getallocatedblocks() - adjust()
            error = _call_once(func, before_each, record_warnings, i, total)
            if error is not None:
                return error, census_before
            saved.restore()
            _clear_caches()
            _gc_collect()
            blk_after = getallocatedblocks() - adjust()
            rc_after = gettotalrefcount()
            rc[i] = _pooled(rc_after - rc_before)
            blocks[i] = _pooled(blk_after - blk_before)
            rc_before = rc_after
            blk_before = blk_after
        return None, census_before


def _noop():
    pass


def _unaccounted_refs(obj):
    """References to ``obj`` that no tracked object accounts for, plus a
    constant (the caller's own references): compared with a control object
    held the same way."""
    referrers = gc.get_referrers(obj)
    try:
        return sys.getrefcount(obj) - len(referrers)
    finally:
        del referrers


def _orphans(new):
    """How many objects of ``new`` have a reference nothing tracked explains,
    measured against a control object that only ``new`` holds."""
    new.append([None])
    offset = _unaccounted_refs(new[-1])
    orphans = 0
    for i in range(len(new) - 1):
        if _unaccounted_refs(new[i]) > offset:
            orphans += 1
    del new[-1]
    return orphans


def _retained_growth(run, before_each, record_warnings):
    """Run the test once more between two snapshots of the tracked objects.

    Returns ``{type name: count}`` of the new objects if every one of them is
    fully accounted for by references from other tracked objects (the run's
    products stay reachable: accumulated state), or None if any new object
    has a reference nothing tracked explains (an orphan: a lost reference) or
    if the run made no new tracked object (nothing to tell; a leaked int or
    str is not tracked).
    """
    saved = _SavedState()
    saved.restore()
    _clear_caches()
    _gc_collect()
    before = set(map(id, gc.get_objects()))
    error = _call_once(run, before_each, record_warnings, 0, 1)
    if error is not None:
        raise _RerunFailed(error)
    saved.restore()
    _clear_caches()
    _gc_collect()
    new = [o for o in gc.get_objects() if id(o) not in before and o is not before]
    before = None
    new = [o for o in new if type(o).__name__ != "frame"]
    try:
        if not new or _orphans(new):
            return None
        counts = {}
        for o in new:
            name = type(o).__name__
            counts[name] = counts.get(name, 0) + 1
        return counts
    finally:
        del new[:]


def _describe(counts):
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return ", ".join("%s +%d" % kv for kv in top)


def _reset_fixtures(funcargs):
    """Give a re-run what a fresh instance of pytest's stateful built-in
    fixtures would give it (they are set up once per test, not per run)."""
    mp = funcargs.get("monkeypatch")
    if mp is not None and hasattr(mp, "undo"):
        mp.undo()
    rec = funcargs.get("recwarn")
    if rec is not None and hasattr(rec, "clear"):
        rec.clear()
    caplog = funcargs.get("caplog")
    if caplog is not None and hasattr(caplog, "clear"):
        caplog.clear()
    for name in ("capsys", "capfd", "capsysbinary", "capfdbinary", "capteesys"):
        cap = funcargs.get(name)
        if cap is not None and hasattr(cap, "readouterr"):
            try:
                cap.readouterr()
            except Exception:
                pass


def _parse_runs(text, allow_zero=False):
    try:
        warm, runs = text.split(":")
        warm = int(warm) if warm.strip() else 3
        runs = int(runs) if runs.strip() else 3
    except ValueError:
        raise pytest.UsageError("expected WARMUP:RUNS, e.g. 3:3, got %r" % (text,))
    if warm < 0 or runs < (0 if allow_zero else 1):
        raise pytest.UsageError("WARMUP:RUNS: need WARMUP >= 0 and RUNS >= 1, got %r" % (text,))
    return warm, runs


def _release_abi_modules(modules):
    """Names of loaded extension modules not built for this interpreter's ABI."""
    import sysconfig

    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ""
    found = []
    for name, module in list(modules.items()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".so") or path.endswith(suffix):
            continue
        found.append(name)
    return sorted(found)


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


def _unittest_outcomes(item):
    """The outcomes a unittest ``TestCase`` item recorded instead of raising
    (skipTest, failures, expected failures): pytest keeps them on the item."""
    recorded = getattr(item, "_excinfo", None)
    return recorded if isinstance(recorded, list) else None


def _not_rerunnable(item, outcome):
    """Why the test just called is not leak-checked, or None: "skipped", "xfailed" (expected
    to fail, and did), "did not pass", or "xfail" (expected to fail, and passed)."""
    expected_failure = item.get_closest_marker("xfail") is not None or getattr(
        getattr(item, "obj", None), "__unittest_expecting_failure__", False
    )
    if outcome.excinfo is not None:
        exc = outcome.excinfo[1]
        if isinstance(exc, pytest.skip.Exception):
            return "skipped"
        if isinstance(exc, pytest.xfail.Exception) or expected_failure:
            return "xfailed"
        return "did not pass"
    recorded = _unittest_outcomes(item)
    if recorded:
        if any(isinstance(e.value, pytest.skip.Exception) for e in recorded):
            return "skipped"
        if any(isinstance(e.value, pytest.xfail.Exception) for e in recorded):
            return "xfailed"  # unittest's expectedFailure, failing as expected
        return "did not pass"
    if expected_failure:
        return "xfail"
    return None


def _rerunner(item):
    """``item.runtest`` for a re-run: a unittest outcome recorded by a re-run
    (a skip, a failure) raises, and is taken off the item so that pytest
    reports the first call's outcome, not the re-run's."""
    try:
        from _pytest.unittest import TestCaseFunction
    except ImportError:
        return item.runtest
    if not isinstance(item, TestCaseFunction):
        return item.runtest

    def run():
        before = len(_unittest_outcomes(item) or ())
        item.runtest()
        recorded = _unittest_outcomes(item)
        if recorded is not None and len(recorded) > before:
            extra = recorded[before:]
            del recorded[before:]
            raise _RerunFailed(
                "a re-run recorded %s" % (", ".join(type(e.value).__name__ for e in extra),)
            )

    return run


# --------------------------------------------------------------------------
# pytest hooks


def pytest_addoption(parser):
    group = parser.getgroup("debug-matrix", "debug-matrix C-extension checks")
    group.addoption(
        "--dm-results",
        metavar="PATH",
        default=None,
        help="append JSON-lines events (session, start, end, leak, ...) to PATH",
    )
    group.addoption(
        "--dm-leaks",
        action="store_true",
        default=False,
        help="hunt reference/memory-block leaks (needs a Py_REF_DEBUG build)",
    )
    group.addoption(
        "--dm-leak-runs",
        metavar="WARMUP:RUNS",
        default="3:3",
        help="extra runs per test for --dm-leaks: unmeasured:measured (default 3:3)",
    )
    group.addoption(
        "--dm-leak-screen",
        metavar="WARMUP:RUNS",
        default="3:2",
        help="cheap screening runs per test before the full protocol (default 3:2); "
        "0:0 puts every test through the full protocol",
    )
    group.addoption(
        "--dm-modules",
        metavar="PATH",
        default=None,
        help="JSON {compiled: {name: file}, twins: {name: [names]}}: report where the "
        "suite's own compiled modules (and their pure-Python twins) are loaded from",
    )
    group.addoption(
        "--dm-leak-signals",
        metavar="SIGNALS",
        default="refs,blocks",
        help="which deltas decide a leak: refs, blocks or refs,blocks (default: either)",
    )
    group.addoption(
        "--dm-mark-stderr",
        action="store_true",
        default=False,
        help="write 'debug-matrix: start <test id>' to the real stderr before each test",
    )
    group.addoption(
        "--dm-sanitizer-log",
        metavar="PREFIX",
        default=None,
        help="the sanitizers' log_path: report what PREFIX.<pid> files gain, per test",
    )
    group.addoption(
        "--dm-timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help="dump tracebacks and exit if one phase of a test takes longer",
    )


def pytest_configure(config):
    plugin = DebugMatrixPlugin(config)
    config.pluginmanager.register(plugin, "debug_matrix_plugin")


def pytest_unconfigure(config):
    plugin = config.pluginmanager.get_plugin("debug_matrix_plugin")
    if plugin is not None:
        plugin.close()
        config.pluginmanager.unregister(plugin)


class DebugMatrixPlugin:
    def __init__(self, config):
        self.config = config
        opt = config.option
        self.results = _Results(opt.dm_results)
        self.warmups, self.runs = _parse_runs(opt.dm_leak_runs)
        self.screen_warmups, self.screen_runs = _parse_runs(opt.dm_leak_screen, allow_zero=True)
        self.signals = set(opt.dm_leak_signals.split(","))
        if not self.signals or not self.signals <= {"refs", "blocks"}:
            raise pytest.UsageError(
                "--dm-leak-signals: expected refs, blocks or refs,blocks, got %r"
                % (opt.dm_leak_signals,)
            )
        self.leaks_requested = bool(opt.dm_leaks)
        available, reason = _leak_support()
        self.leaks_reason = None
        if not self.leaks_requested:
            self.leaks_mode = "disabled"
        elif available:
            self.leaks_mode = "enabled"
        else:
            self.leaks_mode = "unavailable"
            self.leaks_reason = reason
        self.hunter = Hunter(self.warmups, self.runs) if self.leaks_mode == "enabled" else None
        self.baseline = None
        self.screen_baseline = None
        self.baseline_types = {}
        self.watched = _load_watch_list(opt.dm_modules)
        self.release_abi = []
        self.release_abi_scanned = 0
        self.modules_seen = set()
        self.timeout = opt.dm_timeout if opt.dm_timeout and opt.dm_timeout > 0 else None
        self.mark_stderr = bool(opt.dm_mark_stderr)
        self.stderr_fd = None
        if self.timeout is not None or self.mark_stderr:
            # The real stderr, not pytest's capture file, which dies with us.
            try:
                fileno = sys.__stderr__.fileno()
            except (AttributeError, ValueError, OSError):
                fileno = 2
            self.stderr_fd = os.dup(fileno)
        self.sanitizer_log = opt.dm_sanitizer_log
        self.sanitizer_seen = {}
        self.free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
        self.gil = _gil_enabled()
        self.gil_modules = set(sys.modules)
        self.reports = {}
        self.in_call = None
        self.reported_in_call = False
        self.leak_checks = {}
        self.leakers = []
        self.results.write(
            {
                "event": "session",
                "pytest": pytest.__version__,
                "python": sys.version,
                "executable": sys.executable,
                "pid": os.getpid(),
                "gettotalrefcount": hasattr(sys, "gettotalrefcount"),
                "getobjects": hasattr(sys, "getobjects"),
                "leaks": self.leaks_mode,
                "leaks_reason": self.leaks_reason,
                "warmups": self.warmups,
                "runs": self.runs,
                "screen_warmups": self.screen_warmups,
                "screen_runs": self.screen_runs,
                "timeout": self.timeout,
            },
            sync=True,
        )
        if self.free_threaded:
            self.results.write(
                {"event": "gil", "enabled": self.gil, "test": None, "modules": []}, sync=True
            )

    def close(self):
        faulthandler.cancel_dump_traceback_later()
        if self.stderr_fd is not None:
            os.close(self.stderr_fd)
            self.stderr_fd = None
        self.results.close()

    # -- timeout ----------------------------------------------------------

    def _arm(self):
        if self.timeout is not None:
            faulthandler.dump_traceback_later(self.timeout, exit=True, file=self.stderr_fd)

    # -- header / calibration ---------------------------------------------

    def pytest_report_header(self, config):
        if self.leaks_mode == "enabled":
            mode = "leak hunting on (%d:%d%s)" % (
                self.warmups,
                self.runs,
                ", type census" if self.hunter.census else "",
            )
        elif self.leaks_mode == "unavailable":
            mode = "leak hunting unavailable: " + self.leaks_reason
        else:
            mode = "leak hunting off"
        extra = []
        if self.results.path:
            extra.append("results to " + self.results.path)
        if self.timeout is not None:
            extra.append("timeout %gs per phase" % self.timeout)
        return "debug-matrix: " + "; ".join([mode] + extra)

    def pytest_sessionstart(self, session):
        if self.hunter is None:
            return
        _warm_caches()
        # Put a no-op through the exact loop tests go through.
        # Twice: the first pass warms the machinery itself up.
        self.hunter.measure(_noop, before_each=self._arm)
        refs, blocks, types = self.hunter.measure(_noop, before_each=self._arm)
        if self.screen_runs:
            for _ in range(2):
                screen = self.hunter.screen(
                    _noop, self.screen_warmups, self.screen_runs, before_each=self._arm
                )
            self.screen_baseline = screen
        faulthandler.cancel_dump_traceback_later()
        self.baseline = (refs, blocks)
        event = {
            "event": "baseline",
            "refs": refs,
            "blocks": blocks,
            "warmups": self.warmups,
            "runs": self.runs,
        }
        if self.screen_baseline is not None:
            event["screen_refs"], event["screen_blocks"] = self.screen_baseline
        if types is not None:
            event["types"] = types
            self.baseline_types = types
        self.results.write(event, sync=True)

    # -- per test ---------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid, location):
        self.reports[nodeid] = []
        self.results.write({"event": "start", "test": nodeid}, sync=True)
        if self.mark_stderr:
            try:
                os.write(self.stderr_fd, ("\ndebug-matrix: start %s\n" % nodeid).encode("utf-8", "backslashreplace"))
            except OSError:
                pass
        self._arm()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self._arm()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item):
        self._arm()

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_call(self, item):
        # trylast: the innermost wrapper, so re-runs happen inside pytest's
        # output capture, log capture and warning recording, like the call.
        self._arm()
        doctest_globs = None
        dtest = getattr(item, "dtest", None)
        if self.hunter is not None and dtest is not None and hasattr(dtest, "globs"):
            doctest_globs = dict(dtest.globs)  # doctest clears them after a run
        self.in_call, self.reported_in_call = item.nodeid, False
        try:
            outcome = yield
        finally:
            self.in_call = None
        if self.hunter is None:
            return
        reason = _not_rerunnable(item, outcome)
        if reason is None and self.reported_in_call:
            # Subtests (unittest's subTest, pytest's subtests fixture) report while the
            # test runs: a re-run would report them again, into pytest's statistics and
            # outcome, and the reports it keeps would count as the test's leak.
            reason = "not re-runnable: it reports subtests while it runs"
        if reason is not None:
            # Only a test whose call passed is judged: a skip, an xfail or a
            # failure (raised, or recorded by unittest) repeats nothing useful.
            self.leak_checks[item.nodeid] = {"not_judged": reason}
            return
        self._hunt(item, doctest_globs)

    def _hunt(self, item, doctest_globs):
        funcargs = getattr(item, "funcargs", None) or {}

        def before_each():
            self._arm()
            if doctest_globs is not None:
                item.dtest.globs.update(doctest_globs)
            _reset_fixtures(funcargs)

        run = _rerunner(item)
        signals = self._signals()
        # recwarn records the test's warnings itself (and is reset before
        # each run); a catch_warnings of ours would starve it.
        record_warnings = "recwarn" not in funcargs
        started = time.perf_counter()
        check = {}
        try:
            if self.screen_runs:
                raw = self.hunter.screen(
                    run,
                    self.screen_warmups,
                    self.screen_runs,
                    before_each,
                    record_warnings=record_warnings,
                )
                screen = [
                    [r - b for r, b in zip(raw[k], self.screen_baseline[k])] for k in (0, 1)
                ]
                check["screen_refs"], check["screen_blocks"] = screen
                # The leak rule itself, on the screened calls: a leak adds to every
                # call, so a signal that stays at 0 in one screened call clears it.
                suspect = any(
                    all(d >= 1 for d in deltas)
                    for signal, deltas in zip(("refs", "blocks"), screen)
                    if signal in signals
                )
                if not suspect:
                    check["leaked"] = False
                    check["seconds"] = round(time.perf_counter() - started, 6)
                    self.leak_checks[item.nodeid] = check
                    return
            raw_refs, raw_blocks, types = self.hunter.measure(
                run, before_each, record_warnings=record_warnings
            )
        except _RerunFailed as exc:
            self.leak_checks[item.nodeid] = {"not_judged": "not re-runnable: %s" % (exc,)}
            return
        seconds = round(time.perf_counter() - started, 6)
        base_refs, base_blocks = self.baseline
        refs = [r - b for r, b in zip(raw_refs, base_refs)]
        blocks = [r - b for r, b in zip(raw_blocks, base_blocks)]
        leaked = []
        if "refs" in signals and all(d >= 1 for d in refs):
            leaked.append("refs")
        if "blocks" in signals and all(d >= 1 for d in blocks):
            leaked.append("blocks")
        check.update(
            {
                "refs": refs,
                "blocks": blocks,
                "raw_refs": raw_refs,
                "raw_blocks": raw_blocks,
                "leaked": bool(leaked),
                "seconds": seconds,
            }
        )
        self.leak_checks[item.nodeid] = check
        if not leaked:
            return
        try:
            retained = _retained_growth(run, before_each, record_warnings)
        except _RerunFailed as exc:
            retained = None
            check["retained_check"] = str(exc)
        if retained is not None:
            # What each run adds stays referenced by live objects: the test (or the
            # library's documented API, a registry, a patched module) keeps state that
            # grows with every repetition. A lost reference leaves an orphan instead.
            check["leaked"] = False
            check["retained"] = retained
            self.leak_checks[item.nodeid] = {
                "not_judged": "not re-runnable: every run keeps what it made referenced "
                "(%s): state the test accumulates, not a lost reference" % (_describe(retained),),
                "check": check,
            }
            return
        event = {
            "event": "leak",
            "test": item.nodeid,
            "refs": refs,
            "blocks": blocks,
            "raw_refs": raw_refs,
            "raw_blocks": raw_blocks,
            "leaked": leaked,
        }
        if types is not None:
            base_types = self.baseline_types
            event["types"] = {
                name: grown - base_types.get(name, 0)
                for name, grown in sorted(types.items())
                if grown - base_types.get(name, 0) >= self.runs
            }
        self.leakers.append(event)
        self.results.write(event, sync=True)

    def _signals(self):
        """The signals that decide, for the modules loaded now.

        An extension module built for the release ABI (a release wheel of a
        test dependency such as numpy: ``.cpython-313-…so`` or ``.abi3.so`` on
        a debug interpreter, which loads them) increments and decrements
        reference counts without updating ``sys.gettotalrefcount()``: the total
        drifts by thousands per test although nothing leaks.  Once such a
        module is loaded, only allocated blocks decide (said once, in a
        ``signals`` event).
        """
        modules = sys.modules
        if len(modules) != self.release_abi_scanned:
            self.release_abi_scanned = len(modules)
            found = _release_abi_modules(modules)
            if found and not self.release_abi:
                self.results.write(
                    {
                        "event": "signals",
                        "signals": sorted(self.signals & {"blocks"}),
                        "reason": "release-ABI extension modules loaded: "
                        + ", ".join(found[:5])
                        + (" and %d more" % (len(found) - 5) if len(found) > 5 else ""),
                    },
                    sync=True,
                )
            self.release_abi = found
        if self.release_abi:
            return self.signals & {"blocks"}
        return self.signals

    # -- where the suite's compiled modules come from -----------------------

    def _check_modules(self):
        if not self.watched:
            return
        modules = sys.modules
        for name in self.watched:
            if name in self.modules_seen:
                continue
            module = modules.get(name)
            if module is None:
                continue
            self.modules_seen.add(name)
            path = getattr(module, "__file__", None)
            self.results.write(
                {
                    "event": "module",
                    "name": name,
                    "file": os.path.realpath(path) if path else None,
                },
                sync=True,
            )

    def pytest_collection_finish(self, session):
        self._check_modules()
        self._check_gil(None)
        self._drain_sanitizer(None)

    # -- free threading and sanitizers ------------------------------------

    def _check_gil(self, test):
        """A ``gil`` event when the GIL state changed since the last look."""
        if not self.free_threaded:
            return
        enabled = _gil_enabled()
        current = set(sys.modules)
        new = current - self.gil_modules
        self.gil_modules = current
        if enabled == self.gil:
            return
        self.gil = enabled
        modules = sorted(name for name in new if _is_extension(sys.modules.get(name)))
        self.results.write(
            {"event": "gil", "enabled": enabled, "test": test, "modules": modules}, sync=True
        )

    def _drain_sanitizer(self, test):
        """A ``sanitizer`` event for what each ``PREFIX.*`` file gained since the last look."""
        if not self.sanitizer_log:
            return
        for path in sorted(glob.glob(glob.escape(self.sanitizer_log) + ".*")):
            start = self.sanitizer_seen.get(path, 0)
            try:
                with open(path, "rb") as fp:
                    fp.seek(start)
                    data = fp.read()
            except OSError:
                continue
            if not data:
                continue
            end = start + len(data)
            self.sanitizer_seen[path] = end
            self.results.write(
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

    def pytest_collectreport(self, report):
        if report.failed:
            text = report.longreprtext or str(report.longrepr)
            if len(text) > 8000:
                text = text[:4000] + "\n[...]\n" + text[-4000:]
            self.results.write(
                {"event": "collect_error", "node": report.nodeid, "longrepr": text}, sync=True
            )

    def pytest_runtest_logreport(self, report):
        if self.in_call is not None and report.nodeid == self.in_call:
            # A report during the call itself: a subtest's.
            self.reported_in_call = True
        self.reports.setdefault(report.nodeid, []).append(report)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid, location):
        faulthandler.cancel_dump_traceback_later()
        reports = self.reports.pop(nodeid, [])
        event = {"event": "end", "test": nodeid}
        outcome = "passed"
        for rep in reports:
            if rep.failed:
                outcome = "failed"
                event["phase"] = rep.when
                event["longrepr"] = _short_longrepr(rep)
                break
            if rep.skipped:
                outcome = "skipped"
                if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
                    event["reason"] = str(rep.longrepr[2])
        if any(hasattr(rep, "wasxfail") for rep in reports):
            event["xfail"] = True
        event["outcome"] = outcome
        event["duration"] = round(sum(getattr(rep, "duration", 0.0) for rep in reports), 6)
        check = self.leak_checks.pop(nodeid, None)
        if check is not None and "not_judged" in check:
            event["not_judged"] = check["not_judged"]
            if "check" in check:
                event["leak_check_details"] = check["check"]
        elif check is not None:
            event["leak_check"] = check
        elif self.hunter is not None:
            event["not_judged"] = "skipped" if outcome == "skipped" else "did not pass"
        self.results.write(event)
        self._check_modules()
        self._check_gil(nodeid)
        self._drain_sanitizer(nodeid)

    # -- session end ------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if self.leaks_mode == "unavailable":
            terminalreporter.write_sep("=", "debug-matrix leaks", yellow=True)
            terminalreporter.line("leak hunting unavailable: " + self.leaks_reason)
            return
        if not self.leakers:
            return
        terminalreporter.write_sep("=", "debug-matrix leaks", red=True)
        for ev in self.leakers:
            line = "%s leaked: refs %s, blocks %s" % (ev["test"], ev["refs"], ev["blocks"])
            if ev.get("types"):
                line += ", types %s" % (ev["types"],)
            terminalreporter.line(line)

    def pytest_sessionfinish(self, session, exitstatus):
        self._check_modules()
        self._check_gil(None)
        self._drain_sanitizer(None)
        self.results.write(
            {"event": "finish", "exitstatus": int(exitstatus), "leaks": len(self.leakers)},
            sync=True,
        )


def _gil_enabled():
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return bool(is_enabled()) if is_enabled is not None else True


def _is_extension(module):
    path = getattr(module, "__file__", None) or ""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _short_longrepr(report, limit=2000):
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        text = "%s:%s: %s" % (crash.path, crash.lineno, crash.message)
    else:
        text = getattr(report, "longreprtext", None) or str(longrepr)
        lines = text.strip().splitlines()
        text = "\n".join(lines[-10:])
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
