"""The plugin's ``--dm-*`` options: declared for pytest's argument parser
(``pytest_addoption``, re-exported by the package), then read and checked once
(``Options``): the hooks get checked values, and a bad one is a usage error."""

import pytest


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
        "--dm-leak-loop",
        metavar="N",
        type=int,
        default=0,
        help="with --dm-leaks: run each judged test N more times alone and print its "
        "deltas per call",
    )
    group.addoption(
        "--dm-leak-evidence",
        metavar="full|deferred",
        default="full",
        help="deferred: leave persistence and tracemalloc out of a leak's evidence (a later "
        "run of the leaks alone gathers them)",
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


class Options:
    """The ``--dm-*`` options of one session (pytest's ``config.option``), checked."""

    def __init__(self, opt):
        self.results = opt.dm_results
        self.warmups, self.runs = parse_runs(opt.dm_leak_runs)
        self.screen_warmups, self.screen_runs = parse_runs(opt.dm_leak_screen, allow_zero=True)
        self.signals = set(opt.dm_leak_signals.split(","))
        if opt.dm_leak_evidence not in ("full", "deferred"):
            raise pytest.UsageError(
                "--dm-leak-evidence: expected full or deferred, got %r" % (opt.dm_leak_evidence,)
            )
        self.defer_evidence = opt.dm_leak_evidence == "deferred"
        if not self.signals or not self.signals <= {"refs", "blocks"}:
            raise pytest.UsageError(
                "--dm-leak-signals: expected refs, blocks or refs,blocks, got %r"
                % (opt.dm_leak_signals,)
            )
        self.leaks = bool(opt.dm_leaks)
        self.modules = opt.dm_modules
        self.leak_loop = opt.dm_leak_loop
        self.timeout = opt.dm_timeout if opt.dm_timeout and opt.dm_timeout > 0 else None
        self.mark_stderr = bool(opt.dm_mark_stderr)
        self.sanitizer_log = opt.dm_sanitizer_log


def parse_runs(text, allow_zero=False):
    try:
        warm, runs = text.split(":")
        warm = int(warm) if warm.strip() else 3
        runs = int(runs) if runs.strip() else 3
    except ValueError:
        raise pytest.UsageError("expected WARMUP:RUNS, e.g. 3:3, got %r" % (text,))
    if warm < 0 or runs < (0 if allow_zero else 1):
        raise pytest.UsageError("WARMUP:RUNS: need WARMUP >= 0 and RUNS >= 1, got %r" % (text,))
    return warm, runs
