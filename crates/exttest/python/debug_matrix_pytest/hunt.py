"""Leak hunting's measurements: re-running a test and sampling what each run left.

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
pytest's statistics and outcome.  A test the full protocol finds growing goes to ``judge`` (this package's
judge.py), which decides whether it is a lost reference and says what grew.

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
``type_census``), and the counters are re-sampled after the first census so it
does not count in the first measured delta.  Types whose count grew by at
least RUNS (one per measured run) are reported in the leak event.
"""

import array
import gc
import sys
import time
import warnings

import pytest

from .cleanup import SavedState, clear_caches, gc_collect


def leak_support():
    """(available, reason)"""
    if not hasattr(sys, "gettotalrefcount"):
        return False, (
            "sys.gettotalrefcount is missing: this interpreter is not a "
            "Py_REF_DEBUG build (--with-pydebug or -DPy_REF_DEBUG)"
        )
    return True, None


def _no_adjustment():
    return 0


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


def warm_caches():
    # Fill the interpreter's small caches so that their first use does not
    # look like a leak (single-byte bytes, latin-1 chars, small ints).
    s = bytes(range(256))
    for i in range(256):
        s[i : i + 1]
    [chr(i) for i in range(256)]
    list(range(-5, 257))


def type_census(previous=None):
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


class RerunFailed(Exception):
    pass


def call_once(func, before_each, record_warnings, i, total):
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
            func, warmups, runs, False, before_each, record_warnings, light=True
        )
        return refs, blocks

    def measure(self, func, before_each=None, record_warnings=True):
        """Return (refs, blocks, types) for WARMUP+RUNS runs, raw: the full
        protocol.

        ``before_each`` is called before every run; with
        ``record_warnings`` each run's warnings go to a throw-away list.

        ``types`` is {name: growth} over the measured runs, or None.
        Raises RerunFailed (with the exception text) if a run raises.
        """
        return self._frozen_runs(
            func, self.warmups, self.runs, self.census, before_each, record_warnings, light=False
        )

    def _frozen_runs(self, func, warmups, runs, census, before_each, record_warnings, light):
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
        # Deltas go into preallocated arrays of C integers: storing one allocates no object
        # between two samples (an int pool that grew for large deltas added a block after
        # the sample, which the next run then counted: blocks [1, 1, 1] on ref-debug,
        # whose refs deltas run into the thousands).
        rc = array.array("q", bytes(8 * total))
        blocks = array.array("q", bytes(8 * total))
        saved = SavedState()
        saved.restore()
        clear_caches()
        was_enabled = gc.isenabled()
        gc.disable()
        gc.freeze()
        try:
            error, census_before = self._run_loop(
                func, warmups, census, before_each, record_warnings, saved, rc, blocks, light
            )
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
        if error is not None:
            saved.restore()
            raise RerunFailed(error)
        types = None
        if census_before is not None:
            after = type_census(census_before)[0]
            before = census_before[0]
            types = {}
            for name, count in after.items():
                grown = count - before.get(name, 0)
                if grown:
                    types[name] = grown
        return rc.tolist()[warmups:], blocks.tolist()[warmups:], types

    def _run_loop(
        self, func, warmups, census, before_each, record_warnings, saved, rc, blocks, light
    ):
        """The runs themselves; returns (error text or None, census or None).

        ``light`` (the screen): the clean-up after each run leaves out the walks over every
        module and every ABC, and blocks are not adjusted for interned strings (a walk
        over the interned dict): what that over-reports becomes a suspect, which the full
        protocol, with the whole clean-up, settles. On a suite of tiny tests these walks
        were most of leak hunting's cost.
        """
        gettotalrefcount = sys.gettotalrefcount
        getallocatedblocks = sys.getallocatedblocks
        adjust = _no_adjustment if light else self._adjust
        total = len(rc)
        census_before = None
        rc_before = gettotalrefcount()
        blk_before = getallocatedblocks() - adjust()
        for i in range(total):
            if i == warmups and census:
                census_before = type_census()
                # Settle what the census disturbed, then re-sample, so that
                # it does not count in the first measured run.
                clear_caches(light)
                gc_collect()
                rc_before = gettotalrefcount()
                blk_before = getallocatedblocks() - adjust()
            error = call_once(func, before_each, record_warnings, i, total)
            if error is not None:
                return error, census_before
            saved.restore()
            clear_caches(light)
            gc_collect()
            blk_after = getallocatedblocks() - adjust()
            rc_after = gettotalrefcount()
            rc[i] = rc_after - rc_before
            blocks[i] = blk_after - blk_before
            rc_before = rc_after
            blk_before = blk_after
        return None, census_before


    def extend(self, func, before_each, record_warnings, budget, max_calls):
        """Repeat ``func`` in batches of 8, 16, 32, … calls while the time ``budget`` (seconds)
        and ``max_calls`` allow, and return ``(batches, seconds)``: per batch ``[calls,
        refs, blocks]``, its raw growth. State is restored and the cheap caches cleared after
        every call, as in the screen; every cache is cleared and garbage collected at the end
        of each batch, over a frozen heap. Raises RerunFailed if a call raises.
        """
        gettotalrefcount = sys.gettotalrefcount
        getallocatedblocks = sys.getallocatedblocks
        adjust = self._adjust
        saved = SavedState()
        saved.restore()
        clear_caches()
        was_enabled = gc.isenabled()
        gc.disable()
        gc.freeze()
        batches = []
        started = time.perf_counter()
        try:
            gc_collect()
            rc_before = gettotalrefcount()
            blk_before = getallocatedblocks() - adjust()
            size, done = 8, 0
            while done + size <= max_calls:
                batch_started = time.perf_counter()
                for i in range(size):
                    error = call_once(func, before_each, record_warnings, done + i, max_calls)
                    if error is not None:
                        saved.restore()
                        raise RerunFailed(error)
                    saved.restore()
                    clear_caches(light=True)
                    if i >= 3 and time.perf_counter() - started > budget:
                        # Out of time (a test that slows as it grows): a shorter last batch.
                        size = i + 1
                        break
                clear_caches()
                gc_collect()
                rc_after = gettotalrefcount()
                blk_after = getallocatedblocks() - adjust()
                batches.append([size, rc_after - rc_before, blk_after - blk_before])
                rc_before, blk_before = rc_after, blk_after
                done += size
                now = time.perf_counter()
                # The next batch is twice as long: start it only if it fits.
                if now - started + 2 * (now - batch_started) > budget:
                    break
                size *= 2
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
        return batches, round(time.perf_counter() - started, 3)


def noop():
    """The calibration's test: does nothing."""
