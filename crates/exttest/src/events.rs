//! Reading what a test run left behind — the plugin's event lines, the run's log, the exit —
//! into test counts and findings. Pure.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{
    evidence::LeakEvidence,
    finding::{Finding, FindingKind},
    result::{Counts, NotJudged},
};

/// One line of the plugin's results file (`--dm-results`): the fields of the event kinds
/// this crate reads. The protocol itself, every kind and field, is `python/events.schema.json`
/// (checked against this enum by the tests below). Kinds read by nothing here (`baseline`)
/// do not parse, and [`parse_events`] leaves them out.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// The session began.
    Session {},
    /// The session ended (missing when the process died or exited early).
    Finish {},
    /// A test file or directory could not be collected (import error, syntax error, …).
    #[serde(rename = "collect_error")]
    CollectError {
        /// The collector's node id (a file path).
        node: String,
        /// pytest's own text of the error, whole.
        longrepr: String,
    },
    /// One of the suite's compiled modules, or a pure-Python twin of one, was first found
    /// in `sys.modules`.
    Module {
        /// Its dotted name.
        name: String,
        /// The file it was loaded from.
        file: Option<String>,
    },
    /// Leak hunting changed the signals that decide (release-ABI extension modules loaded:
    /// the total reference count drifts, blocks decide).
    Signals {
        /// The signals that decide from now on.
        signals: Vec<String>,
        /// Why.
        reason: String,
    },
    /// A test started.
    Start {
        /// Its node id.
        test: String,
    },
    /// A test ended.
    End {
        /// Its node id.
        test: String,
        /// The worst of its phases.
        outcome: TestOutcome,
        /// Short failure text.
        #[serde(default)]
        longrepr: Option<String>,
        /// The leak check's deltas, when the test was leak-checked.
        #[serde(default)]
        leak_check: Option<Box<LeakCheck>>,
        /// Why leak hunting did not judge the test (skipped, xfail, not re-runnable).
        #[serde(default)]
        not_judged: Option<String>,
        /// With `not_judged`: what the full protocol measured before the judgement said the
        /// growth is not a lost reference.
        #[serde(default)]
        leak_check_details: Option<Box<LeakCheck>>,
    },
    /// Free-threaded interpreters: the GIL's state at session start, and each change.
    Gil {
        /// `sys._is_gil_enabled()`.
        enabled: bool,
        /// The test after which the change was seen; `None` at session start or after
        /// collection.
        test: Option<String>,
        /// Extension modules imported since the last look.
        #[serde(default)]
        modules: Vec<String>,
    },
    /// `--dm-leak-loop`: a test run alone in a loop, its deltas per call.
    Loop {
        /// Its node id.
        test: String,
        /// Reference deltas per call.
        refs: Vec<i64>,
        /// Block deltas per call.
        blocks: Vec<i64>,
    },
    /// What a sanitizer log file gained since the last look.
    Sanitizer {
        /// The test that was running; `None` outside tests.
        test: Option<String>,
        /// The log file (`PREFIX.<pid>`).
        file: String,
        /// Where in the file the text ends.
        end: u64,
        /// The text.
        report: String,
    },
    /// A test leaks.
    Leak {
        /// Its node id.
        test: String,
        /// Reference-count deltas per measured run.
        #[serde(default)]
        refs: Vec<i64>,
        /// Allocated-block deltas per measured run.
        #[serde(default)]
        blocks: Vec<i64>,
        /// Leaked object counts by type (trace-refs builds).
        #[serde(default)]
        types: BTreeMap<String, i64>,
        /// What grew, whether it stays linear (the plugin's judgement).
        #[serde(default)]
        evidence: Option<Box<LeakEvidence>>,
        /// The signals that decided; empty from a plugin that did not say (both).
        #[serde(default)]
        signals: Vec<String>,
    },
}

/// What leak hunting measured for one test (the `leak_check` definition of the protocol):
/// the screen's deltas, and the full protocol's when the screen did not clear it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeakCheck {
    /// The screen's reference deltas (minus the no-op's).
    #[serde(default)]
    pub screen_refs: Vec<i64>,
    /// The screen's block deltas.
    #[serde(default)]
    pub screen_blocks: Vec<i64>,
    /// The full protocol's reference deltas (minus the baseline's); empty if the screen
    /// cleared the test.
    #[serde(default)]
    pub refs: Vec<i64>,
    /// The full protocol's block deltas.
    #[serde(default)]
    pub blocks: Vec<i64>,
    /// Whether it was judged a leak.
    #[serde(default)]
    pub leaked: bool,
    /// Why the growth is not a lost reference, when it is not judged.
    #[serde(default)]
    pub evidence: Option<Box<LeakEvidence>>,
}

impl LeakCheck {
    /// Whether the leak rule holds in one of `signals` (every delta of the full protocol
    /// >= 1): the test grows, whatever the judgement of what grew.
    pub fn grows(&self, signals: &[&str]) -> bool {
        let holds = |d: &[i64]| !d.is_empty() && d.iter().all(|&x| x >= 1);
        (signals.contains(&"refs") && holds(&self.refs))
            || (signals.contains(&"blocks") && holds(&self.blocks))
    }
}

/// Parses the results file; unreadable lines (a crash mid-write) and kinds [`Event`] does not
/// read are skipped.
pub fn parse_events(text: &str) -> Vec<Event> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// How the test process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Exit code (pytest: 0 passed, 1 failures, 5 no tests, …).
    Code(i32),
    /// Killed by a signal (a crash).
    Signal(i32),
    /// Killed by us after the per-run time limit.
    TimedOut,
}

/// How a test ended, as the plugin reports it: the worst of its phases; an xfailed test is
/// `Skipped`, an xpassed one `Passed` (`events.schema.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    /// Every phase passed.
    Passed,
    /// A phase failed or raised.
    Failed,
    /// Skipped, or expected to fail and did.
    Skipped,
}

impl std::fmt::Display for TestOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TestOutcome::Passed => "passed",
            TestOutcome::Failed => "failed",
            TestOutcome::Skipped => "skipped",
        })
    }
}

/// The test that started last and never ended: where a crash or hang happened.
pub fn unfinished_test(events: &[Event]) -> Option<String> {
    let mut current = None;
    for e in events {
        match e {
            Event::Start { test } => current = Some(test.clone()),
            Event::End { test, .. } if current.as_ref() == Some(test) => current = None,
            _ => {}
        }
    }
    current
}

/// A `ref-leak` finding's text: the deltas, the leaked types (trace-refs builds), then the
/// evidence, one item per line.
pub fn leak_message(
    refs: &[i64],
    blocks: &[i64],
    signals: &[String],
    types: &BTreeMap<String, i64>,
    evidence: Option<&LeakEvidence>,
) -> String {
    let decides = |s: &str| signals.is_empty() || signals.iter().any(|x| x == s);
    let mut message = match (decides("refs"), decides("blocks")) {
        (false, _) => format!(
            "leaks: blocks deltas {blocks:?} (refs deltas {refs:?} are not a signal on this \
             cell: blocks decide)"
        ),
        (true, false) => format!(
            "leaks: refs deltas {refs:?} (blocks deltas {blocks:?} are not a signal on this \
             cell: refs decide)"
        ),
        (true, true) => format!("leaks: refs deltas {refs:?}, blocks deltas {blocks:?}"),
    };
    if !types.is_empty() {
        let t: Vec<String> = types.iter().map(|(k, v)| format!("{k} +{v}")).collect();
        message.push_str(&format!("; leaked objects: {}", t.join(", ")));
    }
    for line in evidence.map(LeakEvidence::lines).unwrap_or_default() {
        message.push_str("\n  ");
        message.push_str(&line);
    }
    message
}

/// The tests that grew in every measured call and that the plugin's judgement did not hold
/// against the C code (state the test keeps, a cache that stops, growth that flattens), with
/// its reason.
pub fn grew_not_judged(events: &[Event]) -> Vec<NotJudged> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::End { test, not_judged: Some(reason), leak_check_details: Some(_), .. } => {
                Some(NotJudged { test: test.clone(), reason: reason.clone() })
            }
            _ => None,
        })
        .collect()
}

/// The `ref-leak` findings whose evidence was deferred (`--dm-leak-evidence=deferred`: the
/// twin was asked first) get it from `events`, the run of their tests alone with the whole
/// judgement: a leak event brings its evidence (the twin's result is kept), an `own state`
/// verdict (a cache that stops, growth that flattens) takes the finding back (counted as not
/// judged, and returned with why). Pure.
pub fn apply_evidence(
    findings: &mut Vec<Finding>,
    counts: &mut Counts,
    events: &[Event],
) -> Vec<NotJudged> {
    let mut dismissed = Vec::new();
    findings.retain_mut(|f| {
        let deferred = f.evidence.as_ref().is_some_and(|e| e.deferred);
        let (FindingKind::RefLeak, true, Some(test)) = (f.kind, deferred, f.test.clone()) else {
            return true;
        };
        let twin = f.evidence.as_ref().and_then(|e| e.twin.clone());
        for e in events {
            match e {
                Event::Leak { test: t, refs, blocks, types, evidence, signals } if *t == test => {
                    let mut evidence = evidence.clone().unwrap_or_default();
                    evidence.twin = twin.clone();
                    f.message = leak_message(refs, blocks, signals, types, Some(&evidence));
                    f.evidence = Some(evidence);
                    return true;
                }
                Event::End {
                    test: t,
                    not_judged: Some(reason),
                    leak_check_details: Some(_),
                    ..
                } if *t == test => {
                    counts.leak_judged = counts.leak_judged.saturating_sub(1);
                    counts.leak_not_judged += 1;
                    dismissed.push(NotJudged {
                        test,
                        reason: format!(
                            "{reason} (in a run of its own, the pure-Python twin having not \
                             grown); first seen as: {}",
                            f.message.lines().next().unwrap_or("")
                        ),
                    });
                    return false;
                }
                _ => {}
            }
        }
        if let Some(evidence) = f.evidence.as_mut() {
            evidence.deferred = false;
            evidence.persistence_note =
                Some("the run of this test alone for its evidence did not see it grow".into());
        }
        f.message.push_str("\n  the run of this test alone for its evidence did not see it grow");
        true
    });
    dismissed
}

/// The findings of one run (its counts are [`count`]'s). `log` is the run's combined output.
pub fn evaluate(events: &[Event], exit: &Exit, log: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for e in events {
        match e {
            Event::End { test, outcome: TestOutcome::Failed, longrepr, .. } => {
                findings.push(Finding::new(
                    FindingKind::TestFailure,
                    Some(test.clone()),
                    longrepr.clone().unwrap_or_else(|| "failed".to_owned()),
                ));
            }
            Event::CollectError { node, longrepr } => findings.push(Finding::new(
                FindingKind::CollectionError,
                Some(node.clone()),
                longrepr.clone(),
            )),
            Event::Leak { test, refs, blocks, types, evidence, signals } => {
                let mut finding =
                    Finding::new(FindingKind::RefLeak, Some(test.clone()), String::new());
                finding.evidence = evidence.clone();
                finding.message = leak_message(refs, blocks, signals, types, evidence.as_deref());
                findings.push(finding);
            }
            _ => {}
        }
    }
    let failed = count(events).failed;
    let collect_errors = events.iter().any(|e| matches!(e, Event::CollectError { .. }));
    let started = events.iter().any(|e| matches!(e, Event::Session { .. }));
    let finished = events.iter().any(|e| matches!(e, Event::Finish {}));
    let unfinished = unfinished_test(events);
    // faulthandler's own reports of a signal are the crash itself, not a separate finding.
    const SIGNAL_REPORTS: &[&str] = &[
        "Fatal Python error: Segmentation fault",
        "Fatal Python error: Aborted",
        "Fatal Python error: Bus error",
        "Fatal Python error: Floating-point exception",
        "Fatal Python error: Illegal instruction",
    ];
    let fatal: Vec<String> = log_lines(log, &["Fatal Python error:", "ERROR: AddressSanitizer:"])
        .into_iter()
        .filter(|l| !SIGNAL_REPORTS.iter().any(|s| l.starts_with(s)))
        .collect();
    for line in &fatal {
        let kind = if line.contains("AddressSanitizer") {
            FindingKind::Sanitizer
        } else {
            FindingKind::FatalError
        };
        findings.push(Finding::new(
            kind,
            unfinished.clone(),
            format!(
                "{line}
{}",
                context_after(log, line, 12)
            ),
        ));
    }
    match exit {
        Exit::Signal(_) if !fatal.is_empty() => {}
        Exit::Signal(sig) => findings.push(Finding::new(
            FindingKind::Crash,
            unfinished.clone(),
            format!(
                "killed by signal {sig}{}; output:\n{}",
                signal_name(*sig),
                report_or_tail(log, SIGNAL_REPORTS)
            ),
        )),
        Exit::TimedOut => findings.push(Finding::new(
            FindingKind::Hang,
            unfinished.clone(),
            format!("the run exceeded its time limit; last output:\n{}", process::tail(log, 15)),
        )),
        Exit::Code(code) if log.contains("Timeout (0:") && unfinished.is_some() => {
            // faulthandler.dump_traceback_later(exit=True) exits with code 1 after the dump.
            findings.push(Finding::new(
                FindingKind::Hang,
                unfinished.clone(),
                format!(
                    "the test exceeded its timeout (exit {code}); traceback:\n{}",
                    report_or_tail(log, &["Timeout (0:"])
                ),
            ))
        }
        Exit::Code(code) if *code != 0 && unfinished.is_some() && fatal.is_empty() => findings
            .push(Finding::new(
                FindingKind::Crash,
                unfinished.clone(),
                format!(
                    "the process exited with {code} during the test; last output:\n{}",
                    process::tail(log, 15)
                ),
            )),
        // Interrupted by collection errors: those are the findings.
        Exit::Code(2) if collect_errors => {}
        Exit::Code(3) => findings.push(Finding::new(
            FindingKind::Setup,
            None,
            format!("pytest failed internally (exit 3):\n{}", pytest_error(log, "INTERNALERROR>")),
        )),
        Exit::Code(4) => findings.push(Finding::new(
            FindingKind::Setup,
            None,
            format!("pytest refused its command line (exit 4):\n{}", pytest_error(log, "ERROR:")),
        )),
        // The process left before its session ended (`os._exit(0)` in a test): the tests not
        // yet ended never ran, whatever the exit code says.
        Exit::Code(code) if started && !finished && fatal.is_empty() => {
            findings.push(Finding::new(
                FindingKind::Crash,
                unfinished.clone(),
                format!(
                    "the test process exited with {code} before its session ended{}: the \
                     tests collected after it never ran; last output:\n{}",
                    unfinished.as_ref().map_or(String::new(), |t| format!(", during {t}")),
                    process::tail(log, 15)
                ),
            ))
        }
        // pytest died before our plugin started its session: a conftest, a plugin of the
        // project's addopts, a coverage plugin failed to import.
        Exit::Code(code) if *code != 0 && !started && fatal.is_empty() => {
            findings.push(Finding::new(
                FindingKind::Setup,
                None,
                format!(
                    "pytest stopped before any test ran (exit {code}); its output:\n{}",
                    process::tail(log, 30)
                ),
            ))
        }
        Exit::Code(5) => findings.push(Finding::new(
            FindingKind::Setup,
            None,
            format!("pytest collected no tests (exit 5):\n{}", process::tail(log, 15)),
        )),
        Exit::Code(code) if !matches!(code, 0 | 1) && failed == 0 && fatal.is_empty() => findings
            .push(Finding::new(
                FindingKind::TestFailure,
                None,
                format!("the tests exited with {code}; last output:\n{}", process::tail(log, 15)),
            )),
        Exit::Code(_) => {}
    }
    findings
}

/// pytest's own error text: every line from the first one starting with `marker` on (its
/// usage errors start with `ERROR:`, internal errors with `INTERNALERROR>`), or the tail.
fn pytest_error(log: &str, marker: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    match lines.iter().position(|l| l.trim_start().starts_with(marker)) {
        Some(i) => lines[i..].iter().take(60).copied().collect::<Vec<_>>().join("\n"),
        None => process::tail(log, 15),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        _ => "",
    }
}

fn log_lines(log: &str, needles: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// The first line starting with one of `starts` and the lines after it (the traceback
/// faulthandler prints), or else the log's tail.
fn report_or_tail(log: &str, starts: &[&str]) -> String {
    match log.lines().find(|l| starts.iter().any(|s| l.trim_start().starts_with(s))) {
        Some(line) => format!("{}\n{}", line.trim(), context_after(log, line, 12)),
        None => process::tail(log, 15),
    }
}

/// Test outcomes of one run, every `end` event counted: items may share a node id (PyYAML's
/// legacy collector makes three `test_yaml.py::test_yaml.py`). A suite's counts add up its
/// runs: a restart after a crash leaves out the tests that already ended.
pub fn count(events: &[Event]) -> Counts {
    let mut counts = Counts::default();
    for event in events {
        let Event::End { outcome, leak_check, not_judged, .. } = event else { continue };
        match outcome {
            TestOutcome::Passed => counts.passed += 1,
            TestOutcome::Skipped => counts.skipped += 1,
            TestOutcome::Failed => counts.failed += 1,
        }
        if leak_check.is_some() {
            counts.leak_judged += 1;
        }
        if let Some(reason) = not_judged {
            counts.leak_not_judged += 1;
            if reason.starts_with("not re-runnable") {
                counts.not_rerunnable += 1;
            }
        }
    }
    counts
}

/// What the `gil` events say (free-threaded interpreters only; `None` elsewhere): whether the
/// GIL was on while tests ran, and a [`FindingKind::GilEnabled`] finding for the first time
/// it was turned on (importing a module that does not declare `Py_mod_gil`).
pub fn gil(events: &[Event]) -> (Option<bool>, Option<Finding>) {
    let mut state = None;
    let mut finding = None;
    for e in events {
        let Event::Gil { enabled, test, modules } = e else { continue };
        state = Some(state.unwrap_or(false) || *enabled);
        if !*enabled || finding.is_some() {
            continue;
        }
        let when = match test {
            Some(test) => format!("during {test}"),
            None if modules.is_empty() => "from the start (PYTHON_GIL=1 or -X gil=1?)".to_owned(),
            None => "while the tests were collected".to_owned(),
        };
        let what = match modules.as_slice() {
            [] => String::new(),
            m => format!(", after importing {}", m.join(", ")),
        };
        finding = Some(Finding::new(
            FindingKind::GilEnabled,
            test.clone(),
            format!(
                "the GIL was turned on {when}{what}: an extension module that does not declare Py_mod_gil (Py_MOD_GIL_NOT_USED, or PyUnstable_Module_SetGIL for single-phase init) re-enables it for the whole process, so the tests after it ran with the GIL and tested nothing free-threaded"
            ),
        ));
    }
    (state, finding)
}

/// What the suite's compiled modules say about the run: each must have been loaded from
/// the venv (`compiled`: name → installed file); one never loaded while a pure-Python twin
/// of it was means the tests ran against the fallback. Setup findings naming both paths.
pub fn module_findings(
    events: &[Event],
    compiled: &BTreeMap<String, String>,
    twins: &BTreeMap<String, Vec<String>>,
) -> Vec<Finding> {
    let loaded: BTreeMap<&str, Option<&str>> = events
        .iter()
        .filter_map(|e| match e {
            Event::Module { name, file } => Some((name.as_str(), file.as_deref())),
            _ => None,
        })
        .collect();
    let mut findings = Vec::new();
    let tests_ran = events.iter().any(|e| matches!(e, Event::End { .. }));
    if tests_ran
        && !compiled.is_empty()
        && !compiled.keys().any(|n| loaded.contains_key(n.as_str()))
    {
        let names: Vec<&str> = compiled.keys().map(String::as_str).collect();
        findings.push(Finding::new(
            FindingKind::Setup,
            None,
            format!(
                "the tests ran without ever importing the suite's compiled modules ({}): they \
                 did not test the C code",
                names.join(", ")
            ),
        ));
        return findings;
    }
    for (name, installed) in compiled {
        match loaded.get(name.as_str()) {
            Some(Some(file)) if file != installed => findings.push(Finding::new(
                FindingKind::Setup,
                None,
                format!(
                    "the tests loaded {name} from {file}, not from the venv's {installed}: \
                     they did not test this cell's build"
                ),
            )),
            Some(_) => {}
            None => {
                for twin in twins.get(name).into_iter().flatten() {
                    if let Some(file) = loaded.get(twin.as_str()) {
                        findings.push(Finding::new(
                            FindingKind::Setup,
                            None,
                            format!(
                                "the tests never loaded the compiled {name} ({installed}) but \
                                 loaded its pure-Python twin {twin} ({}): they tested the \
                                 fallback, not the C code",
                                file.unwrap_or("?")
                            ),
                        ));
                    }
                }
            }
        }
    }
    findings
}

/// Up to `lines` lines of `log` after the first line containing `line`.
fn context_after(log: &str, line: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    let start = all.iter().position(|l| l.contains(line.trim())).map_or(all.len(), |i| i + 1);
    all[start..(start + lines).min(all.len())].join("\n")
}

#[cfg(test)]
mod tests;
