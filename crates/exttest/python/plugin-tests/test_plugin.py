"""The plugin as pytest runs it: its event stream for every outcome, and leak hunting's
judgement on a release interpreter (unavailable) and on a debug one (a real lost reference
made with ctypes, a clean test, state kept in a registry, tests it must not judge)."""

import json
import os
import sys

import pytest

from conftest import PLUGIN_DIR, SCHEMA, SCHEMA_PATH, kind_validator, validate

OUTCOMES = """
    import unittest
    import pytest

    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")

    def test_pass():
        pass

    def test_fail():
        assert 1 == 2

    def test_setup_error(broken):
        pass

    @pytest.mark.skip(reason="by mark")
    def test_skip_mark():
        pass

    def test_skip_in_body():
        pytest.skip("in the body")

    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert False

    @pytest.mark.xfail(reason="known", strict=False)
    def test_xpass():
        pass

    class TestCase(unittest.TestCase):
        def test_skip_test(self):
            self.skipTest("later")
"""

# A lost reference from pure Python: Py_IncRef with no Py_DecRef. KEEP's count grows by one
# per call (refs only); a new list made and leaked each call is an orphan (refs and blocks).
LEAKS = """
    import ctypes

    KEEP = object()

    def test_clean():
        assert sum([1, 2, 3]) == 6

    def test_lost_reference():
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(KEEP))

    def test_leaked_list():
        ctypes.pythonapi.Py_IncRef(ctypes.py_object([1, 2]))
"""


def test_every_outcome_has_a_start_and_an_end_event(run_plugin, pytester):
    pytester.makepyfile(test_outcomes=OUTCOMES)
    run = run_plugin()
    assert run.result.ret == 1, run.stdout
    kinds = [e["event"] for e in run.events]
    assert kinds[0] == "session" and kinds[-1] == "finish", kinds
    session = run.events[0]
    assert session["leaks"] == "disabled" and session["leaks_reason"] is None
    assert session["executable"] and session["pid"] > 0
    assert session["gettotalrefcount"] == (run_plugin.interpreter != sys.executable)
    assert run.of("baseline") == [], "no leak hunting asked for: no calibration"
    # start and end alternate, one pair per test, in the order pytest ran them.
    pairs = run.events[1:-1]
    assert [e["event"] for e in pairs] == ["start", "end"] * 8, pairs
    assert all(s["test"] == e["test"] for s, e in zip(pairs[::2], pairs[1::2]))
    ends = run.ends()
    summary = {
        name: (e["outcome"], e.get("phase"), e.get("reason"), e.get("xfail"))
        for name, e in ends.items()
    }
    assert summary == {
        "test_pass": ("passed", None, None, None),
        "test_fail": ("failed", "call", None, None),
        "test_setup_error": ("failed", "setup", None, None),
        "test_skip_mark": ("skipped", None, "Skipped: by mark", None),
        "test_skip_in_body": ("skipped", None, "Skipped: in the body", None),
        "test_xfail": ("skipped", None, None, True),
        "test_xpass": ("passed", None, None, True),
        "TestCase::test_skip_test": ("skipped", None, "Skipped: later", None),
    }
    assert "assert 1 == 2" in ends["test_fail"]["longrepr"]
    assert "fixture broke" in ends["test_setup_error"]["longrepr"]
    for e in ends.values():
        assert "leak_check" not in e and "not_judged" not in e, e
        assert e["duration"] >= 0
    assert run.one("finish") == {"event": "finish", "exitstatus": 1, "leaks": 0}


def test_a_collection_error_is_an_event_with_pytests_whole_text(run_plugin, pytester):
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    pytester.makepyfile(test_broken="import no_such_module_here\n")
    run = run_plugin()
    assert run.result.ret == 2, run.stdout
    error = run.one("collect_error")
    assert error["node"] == "test_broken.py"
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in error["longrepr"]
    assert run.of("start") == [], "pytest stops before running tests after a collection error"
    assert run.one("finish")["exitstatus"] == 2


def test_leak_hunting_on_a_release_interpreter_is_unavailable_and_the_tests_simply_run(
    run_release, pytester
):
    pytester.makepyfile(test_leaks=LEAKS)
    run = run_release("--dm-leaks")
    assert run.result.ret == 0, run.stdout
    session = run.one("session")
    assert session["leaks"] == "unavailable" and not session["gettotalrefcount"]
    assert "sys.gettotalrefcount is missing" in session["leaks_reason"]
    assert run.of("baseline") == [] and run.of("leak") == []
    ends = run.ends()
    assert sorted(ends) == ["test_clean", "test_leaked_list", "test_lost_reference"]
    for e in ends.values():
        assert e["outcome"] == "passed"
        assert "leak_check" not in e and "not_judged" not in e, e
    assert run.one("finish")["leaks"] == 0
    run.result.stdout.fnmatch_lines(
        ["*debug-matrix: leak hunting unavailable: sys.gettotalrefcount is missing*"]
    )


def test_a_lost_reference_is_a_leak_and_a_clean_test_is_cleared(run_debug, pytester):
    pytester.makepyfile(test_leaks=LEAKS)
    run = run_debug("--dm-leaks")
    assert run.result.ret == 0, run.stdout
    assert run.one("session")["leaks"] == "enabled"
    baseline = run.one("baseline")
    assert len(baseline["refs"]) == 3 and len(baseline["screen_refs"]) == 2
    ends, leaks = run.ends(), run.leaks()
    # The clean test: the screen cleared it, nothing more measured.
    clean = ends["test_clean"]["leak_check"]
    assert clean["leaked"] is False and "refs" not in clean, clean
    assert "test_clean" not in leaks
    # One reference per call, no allocation: refs decide.
    lost = leaks["test_lost_reference"]
    assert lost["leaked"] == ["refs"], lost
    assert all(d >= 1 for d in lost["refs"]) and len(lost["refs"]) == 3
    assert ends["test_lost_reference"]["leak_check"]["leaked"] is True
    # A leaked new object: refs and blocks, and it is an orphan, not retained state.
    leaked = leaks["test_leaked_list"]
    assert leaked["leaked"] == ["refs", "blocks"], leaked
    assert "retained" not in ends["test_leaked_list"]["leak_check"]
    assert run.one("finish")["leaks"] == 2
    run.result.stdout.fnmatch_lines(
        ["*= debug-matrix leaks =*", "test_leaks.py::test_lost_reference leaked: refs [[]1, 1, 1[]]*"]
    )


def test_the_full_protocol_alone_judges_the_same(run_debug, pytester):
    pytester.makepyfile(test_leaks=LEAKS)
    run = run_debug("--dm-leaks", "--dm-leak-screen=0:0", "--dm-leak-runs=2:4")
    assert sorted(run.leaks()) == ["test_leaked_list", "test_lost_reference"]
    check = run.ends()["test_clean"]["leak_check"]
    assert "screen_refs" not in check and len(check["refs"]) == 4 and not check["leaked"]
    assert "screen_refs" not in run.one("baseline")


def test_state_kept_in_a_module_registry_is_not_a_leak(run_debug, pytester):
    pytester.makepyfile(
        test_registry="""
        REGISTRY = []

        class Handler:
            pass

        def test_registers():
            REGISTRY.append({"handler": Handler(), "args": [1, 2]})
        """
    )
    run = run_debug("--dm-leaks")
    assert run.of("leak") == [], run.of("leak")
    end = run.ends()["test_registers"]
    assert end["not_judged"].startswith("own state: every run keeps what it made referenced")
    details = end["leak_check_details"]
    assert details["leaked"] is False and all(d >= 1 for d in details["refs"])
    evidence = details["evidence"]
    assert evidence["new_objects"] == {"dict": 1.0, "list": 1.0, "Handler": 1.0}, evidence
    assert evidence["containers"] == [
        {"name": "test_registry.REGISTRY", "type": "list", "per_call": 1.0}
    ], evidence
    assert evidence["orphans"] == 0


def test_untracked_objects_kept_in_a_registry_are_not_a_leak(run_debug, pytester):
    # object() and strings are not tracked by gc: the registry that grew explains them.
    pytester.makepyfile(
        test_registry="""
        REGISTRY = []
        NAMES = {}

        def test_registers():
            REGISTRY.append(object())

        def test_names():
            NAMES["k%d" % len(NAMES)] = "v%d" % len(NAMES)
        """
    )
    run = run_debug("--dm-leaks")
    assert run.of("leak") == [], run.of("leak")
    ends = run.ends()
    for name, container in (("test_registers", "REGISTRY"), ("test_names", "NAMES")):
        assert ends[name]["not_judged"].startswith("own state: every run keeps"), ends[name]
        grown = ends[name]["leak_check_details"]["evidence"]["containers"]
        assert [c["name"] for c in grown] == ["test_registry." + container], grown


def test_a_bounded_cache_stops_growing_and_is_not_a_leak(run_debug, pytester):
    # A cache no module attribute reaches (a closure's dict of strings, untracked), bounded
    # to 100 entries: each call adds one until it is full, then growth stops.
    pytester.makepyfile(
        test_cache="""
        import itertools

        def _cache(limit):
            cache = {}
            def remember(key):
                if len(cache) >= limit:
                    del cache[next(iter(cache))]
                cache[key] = key + "!"
            return remember

        remember = _cache(100)
        COUNTER = itertools.count()

        def test_fills_a_bounded_cache():
            remember("key-%d" % next(COUNTER))
        """
    )
    run = run_debug("--dm-leaks")
    assert run.of("leak") == [], run.of("leak")
    end = run.ends()["test_fills_a_bounded_cache"]
    assert end["not_judged"].startswith("own state: its growth stops"), end
    persistence = end["leak_check_details"]["evidence"]["persistence"]
    assert persistence["refs"] == "stops" and persistence["calls"] >= 100, persistence


def test_a_leak_carries_the_evidence_of_what_grew(run_debug, pytester):
    pytester.makepyfile(test_leaks=LEAKS)
    run = run_debug("--dm-leaks", "--dm-leak-loop=4")
    leaks = run.leaks()
    lost = leaks["test_lost_reference"]["evidence"]
    # Linear over the longer run, and the object whose count grows is named.
    assert lost["persistence"]["refs"] == "linear", lost
    assert lost["persistence"]["calls"] >= 24, lost
    assert {"object": "test_leaks.KEEP (object)", "per_call": 1.0, "unexplained": 1.0} in lost[
        "refcounts"
    ], lost
    listed = leaks["test_leaked_list"]["evidence"]
    assert listed["persistence"]["refs"] == listed["persistence"]["blocks"] == "linear", listed
    assert listed["new_objects"] == {"list": 1.0} and listed["orphans"] >= 1, listed
    # The Python line that allocated what stayed (the test's own line here).
    assert listed["allocations"][0]["where"].startswith("test_leaks.py:"), listed
    run.result.stdout.fnmatch_lines(
        [
            "*= debug-matrix loop (deltas per call) =*",
            "test_leaks.py::test_lost_reference: refs [[]1, 1, 1, 1[]], blocks [[]0, 0, 0, 0[]]",
            "*= debug-matrix leaks =*",
            "*+1 references per call to test_leaks.KEEP (object)",
        ]
    )


def test_a_fixtures_monkeypatching_survives_the_re_runs(run_debug, pytester):
    # Re-runs undo what the test body monkeypatched, not what its fixtures set up.
    pytester.makepyfile(
        test_mp="""
        import os
        import pytest

        @pytest.fixture
        def envfix(monkeypatch):
            monkeypatch.setenv("DM_X", "1")

        def test_env_from_fixture(envfix):
            assert os.environ.get("DM_X") == "1"

        def test_body_patch_is_undone(monkeypatch):
            assert os.environ.get("DM_Y") is None
            monkeypatch.setenv("DM_Y", "2")
        """
    )
    run = run_debug("--dm-leaks", "--dm-timeout=60")
    ends = run.ends()
    for name in ("test_env_from_fixture", "test_body_patch_is_undone"):
        assert "not_judged" not in ends[name] and "leak_check" in ends[name], ends[name]


def test_deferred_evidence_leaves_persistence_and_allocations_out(run_debug, pytester):
    pytester.makepyfile(test_leaks=LEAKS)
    run = run_debug("--dm-leaks", "--dm-leak-evidence=deferred")
    evidence = run.leaks()["test_leaked_list"]["evidence"]
    assert evidence["deferred"] is True, evidence
    assert "persistence" not in evidence and "allocations" not in evidence, evidence
    assert evidence["new_objects"] == {"list": 1.0}, evidence


def test_the_shape_of_growth_over_batches():
    sys.path.insert(0, PLUGIN_DIR)
    try:
        from debug_matrix_pytest.judge import shape
    finally:
        sys.path.remove(PLUGIN_DIR)
    linear = [[8, 8, 16], [16, 16, 32], [32, 32, 64]]
    assert shape(linear, "refs") == shape(linear, "blocks") == "linear"
    stops = [[8, 16, 16], [16, 30, 30], [32, 1, -1]]
    assert shape(stops, "refs") == shape(stops, "blocks") == "stops"
    flattens = [[8, 8, 8], [16, 8, 8], [32, 4, 4]]
    assert shape(flattens, "refs") == "flattens"
    # A leak of one reference every other call is steady, not flattening.
    assert shape([[8, 4, 0], [16, 8, 0], [32, 16, 0]], "refs") == "linear"
    assert shape([[8, 8, 8]], "refs") == "unknown"


def test_unsteady_growth_of_a_test_too_slow_to_repeat_is_not_judged():
    sys.path.insert(0, PLUGIN_DIR)
    try:
        from debug_matrix_pytest.judge import _unsteady, summary
    finally:
        sys.path.remove(PLUGIN_DIR)
    # cbor2's @given test before hypothesis ran with a fixed seed: blocks [446, 858, 362].
    assert _unsteady({"refs": [5, 9, 4], "blocks": [446, 858, 362]}, ["blocks"])
    assert not _unsteady({"refs": [1, 1, 1], "blocks": [446, 858, 362]}, ["refs", "blocks"])
    assert not _unsteady({"blocks": [2, 3, 2]}, ["blocks"])
    text = summary(
        "unsteady", {"persistence_note": "not repeated: a call takes 1.55 s"},
        {"blocks": [446, 858, 362]},
    )
    assert text.startswith("unsteady: its growth varies from call to call (blocks [446, 858, 362])")


def test_tests_that_do_not_pass_cleanly_are_not_judged_though_they_leak(run_debug, pytester):
    # Every body loses a reference before it skips, fails, or is expected to fail: none of
    # them may be reported, each is counted as not judged with its reason.
    pytester.makepyfile(
        test_unjudged="""
        import ctypes
        import unittest
        import pytest

        KEEP = object()
        CALLS = []

        def lose():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(KEEP))

        def test_skip_in_body():
            lose()
            pytest.skip("in the body")

        def test_fail():
            lose()
            assert False

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            lose()
            assert False

        @pytest.mark.xfail(reason="known", strict=False)
        def test_xpass():
            lose()

        def test_fails_when_re_run():
            lose()
            CALLS.append(1)
            assert len(CALLS) == 1

        class TestCase(unittest.TestCase):
            def test_skip_test(self):
                lose()
                self.skipTest("later")

            @unittest.expectedFailure
            def test_expected_failure(self):
                lose()
                self.assertEqual(1, 2)

            def test_subtests(self):
                for i in range(2):
                    with self.subTest(i=i):
                        lose()
        """
    )
    run = run_debug("--dm-leaks")
    assert run.of("leak") == [], run.of("leak")
    reasons = {name: e.get("not_judged") for name, e in run.ends().items()}
    assert "leak_check" not in json.dumps(run.of("end"))
    rerun = reasons.pop("test_fails_when_re_run")
    assert rerun.startswith("not re-runnable: run 1 of 5 raised AssertionError"), rerun
    assert reasons == {
        "test_skip_in_body": "skipped",
        "test_fail": "did not pass",
        "test_xfail": "xfailed",
        "test_xpass": "xfail",
        "TestCase::test_skip_test": "skipped",
        "TestCase::test_expected_failure": "xfailed",
        "TestCase::test_subtests": "not re-runnable: it reports subtests while it runs",
    }
    # The first call's outcome is what pytest reports, not a re-run's.
    assert run.ends()["test_fails_when_re_run"]["outcome"] == "passed"


# -- the protocol file itself -------------------------------------------------------------


def test_every_example_in_the_protocol_file_follows_it():
    for kind in SCHEMA["$defs"]:
        if kind_validator(kind) is None:
            continue
        for example in SCHEMA["$defs"][kind]["examples"]:
            validate(example)


def test_the_protocol_file_refuses_unknown_kinds_and_fields():
    with pytest.raises(AssertionError, match="not in"):
        validate({"event": "nonsense"})
    with pytest.raises(AssertionError, match="Additional properties"):
        validate({"event": "start", "test": "t.py::a", "extra": 1})
    with pytest.raises(AssertionError, match="'passed', 'failed', 'skipped'"):
        validate({"event": "end", "test": "t.py::a", "outcome": "ok", "duration": 0.1})


def test_the_plugins_docstring_points_to_the_protocol_file():
    with open(os.path.join(PLUGIN_DIR, "debug_matrix_pytest", "__init__.py"), encoding="utf-8") as f:
        source = f.read()
    assert os.path.basename(SCHEMA_PATH) in source


def test_watched_modules_are_reported_once_with_the_file_they_came_from(run_plugin, pytester):
    pytester.makepyfile(
        test_imports="""
        def test_one():
            import json.decoder

        def test_two():
            import json.decoder
        """
    )
    watch = pytester.path / "modules.json"
    watch.write_text(
        json.dumps({"compiled": {"_json": "?"}, "twins": {"_json": ["json.decoder", "nope"]}})
    )
    run = run_plugin("--dm-modules=%s" % watch)
    modules = {e["name"]: e["file"] for e in run.of("module")}
    assert sorted(modules) == ["_json", "json.decoder"], run.of("module")
    assert modules["json.decoder"].endswith(os.path.join("json", "decoder.py"))


def test_a_release_abi_module_leaves_blocks_alone_to_decide(run_debug, pytester):
    # What the plugin looks at is the file name: a module whose .so has another ABI's suffix.
    pytester.makepyfile(
        test_abi="""
        import ctypes
        import sys
        import types

        KEEP = object()

        def test_loads_a_release_wheel():
            fake = types.ModuleType("fake_release_ext")
            fake.__file__ = "/site/fake_release_ext.cpython-313-x86_64-linux-gnu.so"
            sys.modules["fake_release_ext"] = fake

        def test_lost_reference():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(KEEP))
        """
    )
    run = run_debug("--dm-leaks")
    signals = run.one("signals")
    assert signals["signals"] == ["blocks"] and "fake_release_ext" in signals["reason"]
    # refs alone grow: no longer decisive, so no leak.
    assert run.of("leak") == [], run.of("leak")
    assert run.ends()["test_lost_reference"]["leak_check"]["leaked"] is False


SANITIZER_WRITER = """
import os

PREFIX = os.environ["FAKE_SANITIZER_LOG"]


def write(text):
    # What a sanitizer runtime does with log_path=PREFIX: append to PREFIX.<pid>.
    with open("%s.%d" % (PREFIX, os.getpid()), "a") as fp:
        fp.write(text)


def test_quiet():
    pass


def test_reports():
    write("WARNING: ThreadSanitizer: data race (pid=1)\\n  Write of size 8\\n")


def test_after():
    pass
"""


def test_sanitizer_log_files_are_read_per_test(run_plugin, pytester, monkeypatch):
    prefix = pytester.path / "sanitizer" / "run"
    prefix.parent.mkdir()
    monkeypatch.setenv("FAKE_SANITIZER_LOG", str(prefix))
    pytester.makepyfile(test_writer=SANITIZER_WRITER)
    run = run_plugin("--dm-sanitizer-log=%s" % prefix)
    assert run.result.ret == 0, run.stdout
    reports = run.of("sanitizer")
    assert [e["test"] for e in reports] == ["test_writer.py::test_reports"], reports
    report = reports[0]
    assert report["report"].startswith("WARNING: ThreadSanitizer: data race")
    assert report["start"] == 0 and report["end"] == len(report["report"].encode())
    assert report["file"].startswith(str(prefix) + ".")


def test_no_gil_events_on_an_interpreter_with_the_gil(run_plugin, pytester):
    import sysconfig

    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    run = run_plugin()
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("this half is for interpreters with the GIL")
    assert run.of("gil") == []
