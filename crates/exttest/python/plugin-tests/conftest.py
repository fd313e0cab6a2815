"""Harness of the plugin's tests: runs pytest with debug_matrix_pytest in a subprocess of the
interpreter under test (pytester) and reads back its events, each validated against the
protocol file ``../events.schema.json``.

Two interpreters: ``release`` is the one running these tests (a release build, where
``sys.gettotalrefcount`` is missing; anything else is an error), ``debug`` is the debug
CPython named by ``DEBUG_MATRIX_DEBUG_PYTHON`` (e.g. ``<work>/builds/<key>/prefix/bin/python3``
after ``cargo xtask build``). Without that variable the debug half is skipped, loudly: the
skip reason says so in the summary. The debug interpreter imports pytest from this
interpreter's site-packages (pytest is pure Python).
"""

import json
import os
import sys

import jsonschema
import pytest

pytest_plugins = ["pytester"]

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.dirname(HERE)
SCHEMA_PATH = os.path.join(PLUGIN_DIR, "events.schema.json")
DEBUG_ENV = "DEBUG_MATRIX_DEBUG_PYTHON"

with open(SCHEMA_PATH, encoding="utf-8") as f:
    SCHEMA = json.load(f)
jsonschema.Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def kind_validator(kind):
    """A validator for one event kind (its errors name the field, not the oneOf)."""
    if kind not in SCHEMA["$defs"] or {"$ref": "#/$defs/" + kind} not in SCHEMA["oneOf"]:
        return None
    return jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/" + kind})


def validate(event):
    """Fail unless ``event`` is a kind the protocol file lists, with only its fields."""
    kind = event.get("event")
    validator = kind_validator(kind)
    assert validator is not None, "event kind %r is not in %s: %r" % (kind, SCHEMA_PATH, event)
    errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
    assert not errors, "event does not follow %s: %r\n%s" % (
        SCHEMA_PATH,
        event,
        "\n".join("%s: %s" % (list(e.path), e.message) for e in errors),
    )
    VALIDATOR.validate(event)


def _pytest_site():
    return os.path.dirname(os.path.dirname(os.path.abspath(pytest.__file__)))


@pytest.fixture
def release_python():
    """The interpreter running these tests, which must be a release build."""
    if hasattr(sys, "gettotalrefcount"):
        pytest.fail(
            "the release half must run under a release python3, but %s has "
            "sys.gettotalrefcount" % sys.executable
        )
    return sys.executable


@pytest.fixture
def debug_python():
    """``$DEBUG_MATRIX_DEBUG_PYTHON``, a debug build; skipped, loudly, when unset."""
    path = os.environ.get(DEBUG_ENV)
    if not path:
        pytest.skip(
            "DEBUG-INTERPRETER HALF NOT RUN: %s is not set; set it to a debug CPython's "
            "python3 (e.g. <work>/builds/<key>/prefix/bin/python3 after "
            "`cargo xtask build --variant debug`) to check leak hunting for real" % DEBUG_ENV
        )
    if not os.access(path, os.X_OK):
        pytest.fail("%s=%s is not an executable" % (DEBUG_ENV, path))
    return path


@pytest.fixture(params=["release", "debug"])
def interpreter(request):
    """Each interpreter in turn."""
    return request.getfixturevalue(request.param + "_python")


class Run:
    """One pytest run of the plugin in a subprocess: the result and its events."""

    def __init__(self, result, events):
        self.result = result
        self.events = events
        self.stdout = result.stdout.str()

    def of(self, kind):
        return [e for e in self.events if e["event"] == kind]

    def one(self, kind):
        found = self.of(kind)
        assert len(found) == 1, "expected one %s event, got %r" % (kind, found)
        return found[0]

    def ends(self):
        """{test name (after ``::``): end event}."""
        return {e["test"].split("::", 1)[1]: e for e in self.of("end")}

    def leaks(self):
        return {e["test"].split("::", 1)[1]: e for e in self.of("leak")}


def _runner(pytester, monkeypatch, interpreter):
    """``run(*args)``: pytest with the plugin on ``interpreter`` in pytester's directory,
    the events validated against the protocol file."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([PLUGIN_DIR, _pytest_site()]))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)

    def run(*args):
        results = pytester.path / "events.jsonl"
        if results.exists():
            results.unlink()
        result = pytester.run(
            interpreter,
            "-m",
            "pytest",
            "-p",
            "debug_matrix_pytest",
            "-p",
            "no:cacheprovider",
            "--dm-results=%s" % results,
            "-rA",
            *args,
            timeout=300,
        )
        assert results.exists(), "no events file; pytest said:\n%s\n%s" % (
            result.stdout.str(),
            result.stderr.str(),
        )
        events = []
        for line in results.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            validate(event)
            events.append(event)
        return Run(result, events)

    run.interpreter = interpreter
    return run


@pytest.fixture
def run_plugin(pytester, monkeypatch, interpreter):
    """The plugin on each interpreter in turn."""
    return _runner(pytester, monkeypatch, interpreter)


@pytest.fixture
def run_release(pytester, monkeypatch, release_python):
    """The plugin on the release interpreter."""
    return _runner(pytester, monkeypatch, release_python)


@pytest.fixture
def run_debug(pytester, monkeypatch, debug_python):
    """The plugin on the debug interpreter."""
    return _runner(pytester, monkeypatch, debug_python)
