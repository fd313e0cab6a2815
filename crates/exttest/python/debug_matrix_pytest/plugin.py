"""The plugin's pytest hooks: the events of every test, the hang guard, and leak hunting
(``hunt.py`` measures, ``judge.py`` decides, ``rerun.py`` says what can be re-run)."""

import faulthandler
import os
import sys
import sysconfig
import time

import pytest

from . import judge
from .hunt import Hunter, RerunFailed, leak_support, noop, warm_caches
from .options import Options
from .rerun import fixture_marks, not_rerunnable, reset_fixtures, rerunner
from .results import Results
from .watch import GilWatch, ModuleWatch, SanitizerWatch


class DebugMatrixPlugin:
    def __init__(self, config):
        self.config = config
        opt = Options(config.option)
        self.results = Results(opt.results)
        self.warmups, self.runs = opt.warmups, opt.runs
        self.screen_warmups, self.screen_runs = opt.screen_warmups, opt.screen_runs
        self.signals = opt.signals
        self.defer_evidence = opt.defer_evidence
        self.leaks_requested = opt.leaks
        available, reason = leak_support()
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
        self.modules = ModuleWatch(opt.modules)
        self.release_abi = []
        self.release_abi_scanned = 0
        self.loop = opt.leak_loop
        self.loops = []
        self.loop_baseline = None
        self.root = str(config.rootpath)
        self.timeout = opt.timeout
        self.armed_at = 0.0
        self.mark_stderr = opt.mark_stderr
        self.stderr_fd = None
        if self.timeout is not None or self.mark_stderr:
            # The real stderr, not pytest's capture file, which dies with us.
            try:
                fileno = sys.__stderr__.fileno()
            except (AttributeError, ValueError, OSError):
                fileno = 2
            self.stderr_fd = os.dup(fileno)
        self.sanitizer = SanitizerWatch(opt.sanitizer_log)
        self.gil = GilWatch(bool(sysconfig.get_config_var("Py_GIL_DISABLED")))
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
        self.gil.start(self.results)

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
            self.armed_at = time.monotonic()

    def _rearm(self):
        """Before a re-run: arm again once a second has passed since the last arming (each
        arming stops and starts faulthandler's watchdog thread: a re-run of a tiny test is
        cheaper than that). A hung re-run is still stopped within SECONDS and a second."""
        if self.timeout is not None and time.monotonic() - self.armed_at > 1.0:
            self._arm()

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
        warm_caches()
        # Put a no-op through the exact loop tests go through.
        # Twice: the first pass warms the machinery itself up.
        self.hunter.measure(noop, before_each=self._arm)
        refs, blocks, types = self.hunter.measure(noop, before_each=self._arm)
        if self.screen_runs:
            for _ in range(2):
                screen = self.hunter.screen(
                    noop, self.screen_warmups, self.screen_runs, before_each=self._arm
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
        # What the fixtures set up, before the body changes anything: re-runs reset to it.
        marks = fixture_marks(getattr(item, "funcargs", None) or {})
        self.in_call, self.reported_in_call = item.nodeid, False
        try:
            outcome = yield
        finally:
            self.in_call = None
        if self.hunter is None:
            return
        reason = not_rerunnable(item, outcome)
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
        self._hunt(item, doctest_globs, marks)

    def _hunt(self, item, doctest_globs, marks):
        funcargs = getattr(item, "funcargs", None) or {}

        def before_each():
            self._rearm()
            if doctest_globs is not None:
                item.dtest.globs.update(doctest_globs)
            reset_fixtures(funcargs, marks)

        run = rerunner(item)
        signals = self._signals()
        # recwarn records the test's warnings itself (and is reset before
        # each run); a catch_warnings of ours would starve it.
        record_warnings = "recwarn" not in funcargs
        if self.loop:
            # The repro loop: the test alone, its deltas per call printed at the end.
            try:
                if self.loop_baseline is None:
                    # Calibrated like the protocol: a no-op through the same loop, twice.
                    for _ in range(2):
                        self.loop_baseline = self.hunter.screen(noop, 3, self.loop, self._arm)
                raw = self.hunter.screen(
                    run, 3, self.loop, before_each, record_warnings=record_warnings
                )
                refs, blocks = [
                    [r - b for r, b in zip(raw[k], self.loop_baseline[k])] for k in (0, 1)
                ]
                self.loops.append((item.nodeid, refs, blocks))
                self.results.write(
                    {"event": "loop", "test": item.nodeid, "refs": refs, "blocks": blocks},
                    sync=True,
                )
            except RerunFailed as exc:
                self.loops.append((item.nodeid, str(exc), None))
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
        except RerunFailed as exc:
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
            verdict, evidence = judge.judge(
                self.hunter, run, before_each, record_warnings, leaked, self.root,
                seconds / (self.warmups + self.runs), defer=self.defer_evidence,
                deltas={"refs": refs, "blocks": blocks},
            )
        except Exception as exc:  # noqa: BLE001 - the judgement must never fail the test
            # The leak stands, with why it could not be judged further.
            verdict, evidence = "leak", {
                "calls": 0,
                "retained_check": "the judgement failed: %s: %s" % (type(exc).__name__, exc),
                "seconds": round(time.perf_counter() - started, 3),
            }
        check["seconds"] = round(time.perf_counter() - started, 6)
        if verdict != "leak":
            # What each run adds stays referenced (a registry, a patched module, a cache), or
            # stops growing: the test keeps state, or a cache fills; not a lost reference.
            check["leaked"] = False
            check["evidence"] = evidence
            self.leak_checks[item.nodeid] = {
                "not_judged": judge.summary(
                    verdict, evidence, {k: check[k] for k in ("refs", "blocks") if k in leaked}
                ),
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
            "signals": sorted(signals),
            "evidence": evidence,
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

    def pytest_collection_finish(self, session):
        self._look(None)

    def _look(self, test):
        """The watchers' look after collection, after a test, at the end."""
        self.modules.look(self.results)
        self.gil.look(self.results, test)
        self.sanitizer.look(self.results, test)

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
        self._look(nodeid)

    # -- session end ------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if self.loops:
            terminalreporter.write_sep("=", "debug-matrix loop (deltas per call)")
            for test, refs, blocks in self.loops:
                if blocks is None:
                    terminalreporter.line("%s: %s" % (test, refs))
                else:
                    terminalreporter.line("%s: refs %s, blocks %s" % (test, refs, blocks))
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
            for what in judge.evidence_lines(ev["evidence"]):
                terminalreporter.line("    " + what)

    def pytest_sessionfinish(self, session, exitstatus):
        self._look(None)
        self.results.write(
            {"event": "finish", "exitstatus": int(exitstatus), "leaks": len(self.leakers)},
            sync=True,
        )


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
