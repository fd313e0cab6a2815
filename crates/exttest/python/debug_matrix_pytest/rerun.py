"""What makes a test re-runnable for leak hunting: which outcomes are judged, how a unittest
re-run's outcome is kept off the item, and the built-in fixtures reset before each re-run."""

import pytest

from .hunt import RerunFailed


def fixture_marks(funcargs):
    """What the stateful built-in fixtures hold when the test's call begins (after its
    fixtures' setup): what a re-run is reset to."""
    mp = funcargs.get("monkeypatch")
    if mp is None or not all(hasattr(mp, a) for a in ("_setattr", "_setitem")):
        return None
    return (len(mp._setattr), len(mp._setitem), getattr(mp, "_cwd", None),
            getattr(mp, "_savesyspath", None))


def _undo_monkeypatch_to(mp, marks):
    """Undo what ``monkeypatch`` did after ``marks`` (the test body's changes), keeping what
    the fixtures that requested it set up (a ``monkeypatch.setenv`` in a fixture)."""
    n_attr, n_item, cwd, syspath = marks
    later = type(mp)()
    later._setattr = mp._setattr[n_attr:]
    later._setitem = mp._setitem[n_item:]
    del mp._setattr[n_attr:]
    del mp._setitem[n_item:]
    if cwd is None and getattr(mp, "_cwd", None) is not None:
        later._cwd, mp._cwd = mp._cwd, None
    if syspath is None and getattr(mp, "_savesyspath", None) is not None:
        later._savesyspath, mp._savesyspath = mp._savesyspath, None
    later.undo()


def reset_fixtures(funcargs, marks=None):
    """Give a re-run what a fresh instance of pytest's stateful built-in
    fixtures would give it (they are set up once per test, not per run): the
    test body's monkeypatching is undone back to ``marks`` (``fixture_marks``
    at the call's start), all of it when there are none."""
    mp = funcargs.get("monkeypatch")
    if mp is not None and marks is not None:
        _undo_monkeypatch_to(mp, marks)
    elif mp is not None and hasattr(mp, "undo"):
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


def _unittest_outcomes(item):
    """The outcomes a unittest ``TestCase`` item recorded instead of raising
    (skipTest, failures, expected failures): pytest keeps them on the item."""
    recorded = getattr(item, "_excinfo", None)
    return recorded if isinstance(recorded, list) else None


def not_rerunnable(item, outcome):
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


def rerunner(item):
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
            raise RerunFailed(
                "a re-run recorded %s" % (", ".join(type(e.value).__name__ for e in extra),)
            )

    return run


# --------------------------------------------------------------------------
# pytest hooks
