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
``--dm-leak-loop N``
    With ``--dm-leaks``: before judging each test, run it N more times alone
    and print its reference and block deltas per call at the end (the repro
    line of a ``ref-leak`` finding uses it on one test).
``--dm-leak-signals SIGNALS``
    Which deltas decide a leak: ``refs``, ``blocks`` or ``refs,blocks``
    (default: either).
``--dm-leak-evidence full|deferred``
    ``deferred``: a leak's evidence is the retained check only; persistence
    and tracemalloc are left for a later run of the leaks alone (the tool
    asks the pure-Python twin first, where there is one).
``--dm-leak-screen WARMUP:RUNS``
    The cheap screen every leak-checked test goes through first (default
    3:2, see hunt.py); ``0:0`` puts every test through the full
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

Hypothesis
----------
With ``--dm-leaks``, tests run with ``--hypothesis-seed=0`` unless one is given: every
call of a ``@given`` test then draws the same examples, so its re-runs repeat the same
work.

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
One JSON object per line of the ``--dm-results`` file, its kind in ``event``. They are
specified in one place, ``events.schema.json`` beside this package: every kind, every
field, what it means, with examples. The plugin's tests (``plugin-tests/``) validate every
event this plugin writes against it, ``crates/exttest/src/events.rs`` parses its examples,
and ``xtask/tests/tidy.rs`` checks that this list, the schema and the kinds the modules
write are the same. Change them together.

``session``
    The session began: pytest's and Python's versions, leak hunting's mode.
``baseline``
    Leak hunting's calibration: a no-op's deltas through the tests' loop.
``collect_error``
    A test file or directory could not be collected.
``module``
    One of ``--dm-modules``' modules was first seen, with the file it came from.
``signals``
    From now on only these deltas decide a leak (release-ABI modules are loaded).
``start``
    A test is about to run (``fsync``'d).
``end``
    A test ended: its outcome, and its leak check or why it was not judged.
``leak``
    A test judged leaking, with the evidence of what grew.
``loop``
    ``--dm-leak-loop``: a judged test's deltas per call, run alone.
``gil``
    Free-threaded interpreters: the GIL's state, at the start and when it changed.
``sanitizer``
    What a ``--dm-sanitizer-log`` file gained, and the test that was running.
``finish``
    The session ended (missing when the process died).

Modules
-------
``options.py`` the ``--dm-*`` options (pytest's argument parser) and their checks;
``results.py`` the events file; ``hunt.py`` leak hunting's measurements (the protocol, the
screen, the calibration, the persistence batches); ``cleanup.py`` what is put back and
cleared between runs;
``retained.py`` the retained check (is what the re-runs made kept reachable?);
``judge.py`` the judgement (the retained check, persistence, the evidence of what grew);
``rerun.py`` what can be re-run; ``watch.py`` the module, GIL and sanitizer watchers;
``plugin.py`` the pytest hooks.
"""

import pytest

from .options import pytest_addoption
from .plugin import DebugMatrixPlugin

__all__ = ["pytest_addoption", "pytest_configure", "pytest_unconfigure"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Hypothesis draws new examples on every call of a ``@given`` test, so its re-runs
    # would not repeat the same work (its own caches grow by a different amount each
    # call). With leak hunting on, a fixed seed (unless the suite gives one) makes every
    # call draw the same examples; set before hypothesis's own pytest_configure reads it.
    if config.option.dm_leaks and getattr(config.option, "hypothesis_seed", "") is None:
        config.option.hypothesis_seed = "0"
    plugin = DebugMatrixPlugin(config)
    config.pluginmanager.register(plugin, "debug_matrix_plugin")


def pytest_unconfigure(config):
    plugin = config.pluginmanager.get_plugin("debug_matrix_plugin")
    if plugin is not None:
        plugin.close()
        config.pluginmanager.unregister(plugin)
