"""The options ``test_plugin.py`` does not otherwise exercise: the hang guard, the stderr
marks, the signals that decide a leak, and the usage errors of bad values
(``xtask/tests/tidy.rs`` checks that some test here or there uses every option)."""

import os
import subprocess

import pytest

from conftest import PLUGIN_DIR, _pytest_site
from test_plugin import LEAKS

PHASES = """
    import time
    import pytest

    @pytest.fixture
    def slow():
        time.sleep(1.5)
        yield
        time.sleep(1.5)

    def test_each_phase_has_its_own_budget(slow):
        time.sleep(1.5)

    def test_hangs():
        time.sleep(120)

    def test_never_reached():
        pass
"""


def test_the_timeout_stops_a_hanging_test_and_its_start_names_it(run_plugin, pytester):
    pytester.makepyfile(test_phases=PHASES)
    run = run_plugin("--dm-timeout=3")
    stderr = run.result.stderr.str()
    # faulthandler's exit: status 1, every thread's traceback on the real stderr.
    assert run.result.ret == 1, (run.stdout, stderr)
    assert "Timeout (0:00:03)!" in stderr, stderr
    assert "in test_hangs" in stderr, stderr
    # Setup, call and teardown took 1.5 s each, 4.5 s in all: each phase re-armed the 3 s.
    ends = run.ends()
    assert ends["test_each_phase_has_its_own_budget"]["outcome"] == "passed", ends
    assert "test_hangs" not in ends and "test_never_reached" not in ends, ends
    # The last event on disk is the hanging test's start; no finish.
    assert run.events[-1] == {"event": "start", "test": "test_phases.py::test_hangs"}
    assert run.of("finish") == []
    assert run.one("session")["timeout"] == 3


def test_mark_stderr_names_each_test_on_the_real_stderr(run_plugin, pytester):
    pytester.makepyfile(
        test_marks="""
        def test_one():
            pass

        def test_two():
            pass
        """
    )
    # pytest captures fd 2 while the tests run: the marks go to the real stderr past it.
    run = run_plugin("--dm-mark-stderr")
    assert run.result.ret == 0, run.stdout
    lines = run.result.stderr.str().splitlines()
    marks = [line for line in lines if line.startswith("debug-matrix: start ")]
    assert marks == [
        "debug-matrix: start test_marks.py::test_one",
        "debug-matrix: start test_marks.py::test_two",
    ], lines
    # Without the option, nothing is written.
    quiet = run_plugin()
    assert "debug-matrix: start" not in quiet.result.stderr.str()


def test_leak_signals_choose_the_deltas_that_decide(run_debug, pytester):
    pytester.makepyfile(test_leaks=LEAKS)
    # Blocks alone: the lost reference to an existing object allocates nothing, so it is
    # cleared; the leaked list grows both and is a leak by its blocks.
    run = run_debug("--dm-leaks", "--dm-leak-signals=blocks")
    assert sorted(run.leaks()) == ["test_leaked_list"], run.leaks()
    leak = run.leaks()["test_leaked_list"]
    assert leak["leaked"] == ["blocks"] and leak["signals"] == ["blocks"], leak
    assert run.ends()["test_lost_reference"]["leak_check"]["leaked"] is False
    # References alone: both lose one.
    run = run_debug("--dm-leaks", "--dm-leak-signals=refs")
    leaks = run.leaks()
    assert sorted(leaks) == ["test_leaked_list", "test_lost_reference"], leaks
    assert all(e["leaked"] == ["refs"] and e["signals"] == ["refs"] for e in leaks.values())


@pytest.mark.parametrize(
    "option, message",
    [
        ("--dm-leak-signals=bytes", "--dm-leak-signals: expected refs, blocks or refs,blocks"),
        ("--dm-leak-evidence=some", "--dm-leak-evidence: expected full or deferred"),
        ("--dm-leak-runs=three", "expected WARMUP:RUNS, e.g. 3:3, got 'three'"),
        ("--dm-leak-runs=3:0", "need WARMUP >= 0 and RUNS >= 1"),
        ("--dm-leak-screen=-1:2", "need WARMUP >= 0 and RUNS >= 1"),
        ("--dm-leak-loop=many", "invalid int value: 'many'"),
        ("--dm-timeout=soon", "invalid float value: 'soon'"),
    ],
)
def test_a_bad_value_is_a_usage_error(release_python, pytester, option, message):
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PLUGIN_DIR, _pytest_site()]))
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [release_python, "-m", "pytest", "-p", "debug_matrix_pytest", "-p", "no:cacheprovider",
         option],
        cwd=str(pytester.path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, (result.returncode, result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
