//! A suite's test runs on a cell, and what they found: [`run_suite`] sets the suite up
//! ([`crate::setup`]), runs its tests with restarts after crashes and hangs ([`next_run`]
//! decides, purely, what follows a run), confirms leak-hunting failures plainly, hunts races
//! on free-threaded cells, and gathers each run's findings (events and log, valgrind,
//! sanitizer logs) once, de-duplicated, into a [`SuiteResult`]. Every process is an
//! [`crate::invocation::Invocation`] built by [`TestRuns::invocation`].

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::process::ExitStatusExt as _,
    time::Instant,
};

use camino::{Utf8Path, Utf8PathBuf};
use process::RunError;

use crate::{
    detect::Detectors,
    events::{self, Event, Exit},
    finding::{Finding, FindingKind},
    invocation::{Invocation, PARALLEL_THREADS, RunKind, TestRuns, sanitizer_prefix},
    prepared::Prepared,
    result::{Counts, LeakLoop, NotJudged, SuiteResult},
    sanitizer,
    setup::{CellEnv, hunts_races, prepare},
    suite::Suite,
    twin, valgrind,
};

/// The most crashes (or hangs) a suite run survives: each restart goes on after the tests
/// that already ended, without the one that crashed.
pub(crate) const MAX_RESTARTS: usize = 10;

/// Sets up, builds and tests `suite` on the cell. Set-up failures are findings of kind
/// [`FindingKind::Setup`], not errors: the matrix goes on.
pub fn run_suite(env: &CellEnv<'_>, suite: &Suite, detectors: &Detectors) -> SuiteResult {
    let started = Instant::now();
    let dir = env.cell_dirs.suite(&suite.name).root;
    let mut result = SuiteResult::new(
        env.cell.clone(),
        suite.name.clone(),
        detectors.names(),
        dir.join("test.log"),
    );
    match prepare(env, suite, detectors, &dir) {
        Ok(prepared) => {
            let outcome = test(env, suite, detectors, &dir, &prepared);
            // A suite's own test command has no module events: what it installed is all
            // there is to say.
            result.modules = outcome.modules.unwrap_or_else(|| prepared.installed.compiled.clone());
            result.counts = outcome.counts;
            result.findings = outcome.findings;
            result.ran = outcome.ran;
            result.detectors.extend(outcome.notes);
            result.gil_enabled = outcome.gil_enabled;
            result.grew_not_judged = outcome.grew_not_judged;
            result.leak_loops = outcome.leak_loops;
            result.environment = Some(prepared.environment.clone());
        }
        Err(err) => {
            result.findings.push(Finding::new(FindingKind::Setup, None, format!("{err:#}")))
        }
    }
    result.seconds = started.elapsed().as_secs();
    result
}

/// What the test runs of a suite found.
struct TestOutcome {
    counts: Counts,
    findings: Vec<Finding>,
    ran: BTreeSet<String>,
    /// How the detectors adapted or what they saw beside the findings.
    notes: Vec<String>,
    gil_enabled: Option<bool>,
    grew_not_judged: Vec<NotJudged>,
    leak_loops: Vec<LeakLoop>,
    /// The compiled modules the test process loaded (pytest runs only).
    modules: Option<BTreeMap<String, String>>,
}

/// What names the extension in valgrind's and the sanitizers' stacks.
struct Needles {
    /// The compiled modules' file names and `(file.c:` for each C source of the project.
    valgrind: Vec<String>,
    /// The compiled modules' file names (`_x.cpython-313t-….so+0x…`) and `/file.c:`.
    sanitizer: Vec<String>,
}

impl Needles {
    fn of(prepared: &Prepared) -> Needles {
        let modules: Vec<String> = prepared
            .installed
            .compiled
            .values()
            .filter_map(|f| Utf8Path::new(f).file_name().map(str::to_owned))
            .collect();
        let sources = c_sources(&prepared.src);
        let mut sanitizer = modules.clone();
        sanitizer.extend(sources.iter().map(|n| format!("/{}", n.trim_start_matches('('))));
        let mut valgrind = modules;
        valgrind.extend(sources);
        Needles { valgrind, sanitizer }
    }
}

/// Adds the findings of `found` that `findings` does not have yet (same kind and test): a
/// finding is reported once, though restarts and a hang's traceback may repeat it.
fn add_once(findings: &mut Vec<Finding>, found: impl IntoIterator<Item = Finding>) {
    for f in found {
        if !findings.iter().any(|g| g.kind == f.kind && g.test == f.test) {
            findings.push(f);
        }
    }
}

/// One test run, read back.
struct Ran {
    /// How it ended; an error where it did not end by itself or by its time limit.
    exit: Result<Exit, RunError>,
    /// Its events.
    events: Vec<Event>,
    /// Its output.
    text: String,
}

/// Runs `cmd`, whose events go to `results` and output to `log`; the output of a run that
/// ended (by itself or by its time limit) is appended to the suite's `test.log` in `dir`.
fn run_once(
    env: &CellEnv<'_>,
    cmd: &Invocation,
    dir: &Utf8Path,
    results: &Utf8Path,
    log: &Utf8Path,
) -> Ran {
    let _ = fs::remove_file(results);
    let _ = fs::remove_file(log);
    let exit = exit_of(cmd.run(log, env.cancel));
    let text = fs::read_to_string(log).unwrap_or_default();
    if exit.is_ok() {
        append(&dir.join("test.log"), &text);
    }
    let events = events::parse_events(&fs::read_to_string(results).unwrap_or_default());
    Ran { exit, events, text }
}

/// What follows a test run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Next {
    /// The run ended by itself, or without a test in progress: no more runs.
    Done,
    /// It crashed or hung in a test: run again without these tests (the ones that ended
    /// in every run so far, and each that crashed).
    Restart {
        /// The next run's `--deselect`s.
        deselect: Vec<String>,
    },
    /// It crashed or hung again after [`MAX_RESTARTS`] restarts: stop, with a
    /// [`FindingKind::Setup`] finding saying the tests after it did not run.
    GiveUp {
        /// What the next run would have left out (race hunting leaves it out too).
        deselect: Vec<String>,
        /// The finding.
        finding: Finding,
    },
}

/// What follows run number `attempt` (0 for the first), which ran without `deselect`,
/// ended with `exit`, wrote `events` and printed `log`. Pure.
pub(crate) fn next_run(
    attempt: usize,
    exit: &Exit,
    events: &[Event],
    log: &str,
    deselect: &[String],
) -> Next {
    // pytest's own exits are 0 to 5; anything else (a signal, our time limit, a fatal
    // error's abort) ended the process during a test.
    let crashed = !matches!(exit, Exit::Code(0..=5));
    // faulthandler's per-test timeout exits with 1 after its traceback.
    let hung = *exit == Exit::Code(1) && log.contains("Timeout (0:");
    let Some(unfinished) = events::unfinished_test(events) else { return Next::Done };
    if !(crashed || hung) {
        return Next::Done;
    }
    let mut next = deselect.to_vec();
    next.push(unfinished);
    next.extend(events.iter().filter_map(|e| match e {
        Event::End { test, .. } => Some(test.clone()),
        _ => None,
    }));
    if attempt >= MAX_RESTARTS {
        let finding = Finding::new(
            FindingKind::Setup,
            None,
            format!(
                "the tests crashed or hung {} times; stopped restarting: the tests after the \
                 last crash did not run (see each crash finding)",
                MAX_RESTARTS + 1
            ),
        );
        Next::GiveUp { deselect: next, finding }
    } else {
        Next::Restart { deselect: next }
    }
}

/// The findings of one run of the suite's tests: from its events, exit and log
/// ([`events::evaluate`]), valgrind's reports, and the sanitizers' (which replace the crash
/// of a test they halted). Also returns the sanitizer reports that were not the extension's.
fn run_findings(
    detectors: &Detectors,
    ran: &Ran,
    exit: &Exit,
    results: &Utf8Path,
    needles: &Needles,
) -> (Vec<Finding>, sanitizer::Outside) {
    let mut found = events::evaluate(&ran.events, exit, &ran.text);
    if detectors.valgrind {
        found.extend(valgrind::findings(&ran.text, &needles.valgrind));
    }
    let mut outside = sanitizer::Outside::default();
    if detectors.tsan || detectors.ubsan {
        let (reported, elsewhere) = sanitizer_findings(results, &ran.events, &needles.sanitizer);
        outside = elsewhere;
        // A sanitizer that halts the process makes it exit mid-test: the report is the
        // finding, not the exit.
        found.retain(|c| {
            !(c.kind == FindingKind::Crash && reported.iter().any(|r| r.test == c.test))
        });
        found.extend(reported);
    }
    (found, outside)
}

/// Runs the tests, restarting after a crash where it stopped: without the crashing test and
/// the tests that already ended (their results are kept).
fn test(
    env: &CellEnv<'_>,
    suite: &Suite,
    detectors: &Detectors,
    dir: &Utf8Path,
    prepared: &Prepared,
) -> TestOutcome {
    let switch = if detectors.leaks && suite.test_command.is_none() {
        twin::switch(suite, &prepared.installed.dist)
    } else {
        Vec::new()
    };
    let runs =
        TestRuns { cpython_source: &env.cpython_source, suite, detectors, prepared, twin: &switch };
    let mut all_events = Vec::new();
    let mut counts = Counts::default();
    let mut ran = BTreeSet::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut deselect: Vec<String> = Vec::new();
    let _ = fs::remove_file(dir.join("test.log"));
    let needles = Needles::of(prepared);
    let mut sanitizer_outside = sanitizer::Outside::default();
    let mut notes: Vec<String> = Vec::new();
    let mut grew_not_judged = Vec::new();
    let _ = fs::remove_dir_all(dir.join("sanitizer"));
    if detectors.tsan || detectors.ubsan {
        // The runtimes do not make log_path's directory.
        let _ = fs::create_dir_all(dir.join("sanitizer"));
    }
    let mut attempt = 0;
    loop {
        let results = dir.join(format!("events-{attempt}.jsonl"));
        let attempt_log = dir.join(format!("test-{attempt}.log"));
        let cmd = runs.invocation(RunKind::Tests { deselect: &deselect }, &results);
        let run = run_once(env, &cmd, dir, &results, &attempt_log);
        let exit = match &run.exit {
            Ok(exit) => exit.clone(),
            Err(RunError::Cancelled) => {
                findings.push(Finding::new(FindingKind::Setup, None, "interrupted".to_owned()));
                break;
            }
            Err(e) => {
                findings.push(Finding::new(
                    FindingKind::Setup,
                    None,
                    format!("could not run the tests: {e}"),
                ));
                break;
            }
        };
        let (found, outside) = run_findings(detectors, &run, &exit, &results, &needles);
        sanitizer_outside.add(outside);
        add_once(&mut findings, found);
        counts.add(&events::count(&run.events));
        ran.extend(run.events.iter().filter_map(|e| match e {
            Event::End { test, .. } => Some(test.clone()),
            _ => None,
        }));
        let next = next_run(attempt, &exit, &run.events, &run.text, &deselect);
        all_events.extend(run.events);
        match next {
            Next::Done => break,
            Next::Restart { deselect: next } => deselect = next,
            Next::GiveUp { deselect: next, finding } => {
                deselect = next;
                findings.push(finding);
                break;
            }
        }
        attempt += 1;
    }
    if detectors.leaks && suite.test_command.is_none() {
        confirm_failures(env, &runs, dir, &mut findings);
        grew_not_judged = events::grew_not_judged(&all_events);
        grew_not_judged.extend(ask_the_twin(
            env,
            &runs,
            dir,
            &all_events,
            &mut findings,
            &mut counts,
        ));
    }
    let mut modules = None;
    let mut not_exercised = Vec::new();
    if suite.test_command.is_none() {
        // Only pytest runs carry the plugin's module events.
        findings.extend(events::module_findings(
            &all_events,
            &prepared.installed.compiled,
            &prepared.installed.twins,
        ));
        let (loaded, notes) = loaded_modules(&all_events, &prepared.installed.compiled);
        modules = Some(loaded);
        not_exercised = notes;
    }
    if hunts_races(detectors, suite) {
        let (found, note) = hunt_races(env, &runs, dir, &all_events, &deselect, &needles);
        add_once(&mut findings, found);
        notes.push(note);
    }
    let (gil_enabled, gil_finding) = events::gil(&all_events);
    findings.extend(gil_finding);
    // How the detectors adapted during the run, once each.
    match gil_enabled {
        Some(true) => notes.push("GIL on while the tests ran".to_owned()),
        Some(false) => notes.push("GIL off (free-threaded)".to_owned()),
        None => {}
    }
    notes.extend(sanitizer_outside.note(&dir.join("sanitizer")));
    for e in &all_events {
        if let Event::Signals { signals, reason } = e {
            let note = format!("leak-signals={} ({reason})", signals.join(","));
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let leak_loops = all_events
        .iter()
        .filter_map(|e| match e {
            Event::Loop { test, refs, blocks } => {
                Some(LeakLoop { test: test.clone(), refs: refs.clone(), blocks: blocks.clone() })
            }
            _ => None,
        })
        .collect();
    notes.extend(not_exercised);
    TestOutcome { counts, findings, ran, notes, gil_enabled, grew_not_judged, leak_loops, modules }
}

/// The suite's compiled modules (`compiled`: name → installed file) that the test process
/// loaded, by its `module` events, with the file each was loaded from; and a note,
/// `not exercised: NAME (FILE)`, for each installed one that no test imported (a note, not a
/// finding: [`events::module_findings`] judges a suite that loaded none, or a twin). Pure.
pub(crate) fn loaded_modules(
    events: &[Event],
    compiled: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut loaded = BTreeMap::new();
    for e in events {
        if let Event::Module { name, file } = e
            && let Some(installed) = compiled.get(name)
        {
            // The last report wins, as in `events::module_findings`.
            loaded.insert(name.clone(), file.clone().unwrap_or_else(|| installed.clone()));
        }
    }
    let notes = compiled
        .iter()
        .filter(|(name, _)| !loaded.contains_key(*name))
        .map(|(name, file)| format!("not exercised: {name} ({file})"))
        .collect();
    (loaded, notes)
}

/// How a test run ended, from what `run_logged` returned; an error only where the run did not
/// end by itself or by its time limit (cancelled, could not be started).
fn exit_of(result: Result<(), RunError>) -> Result<Exit, RunError> {
    match result {
        Ok(()) => Ok(Exit::Code(0)),
        Err(RunError::Failed(status)) => Ok(match (status.code(), status.signal()) {
            (_, Some(sig)) => Exit::Signal(sig),
            (Some(code), None) => Exit::Code(code),
            (None, None) => Exit::Code(-1),
        }),
        Err(RunError::TimedOut(_)) => Ok(Exit::TimedOut),
        Err(e) => Err(e),
    }
}

/// The sanitizer reports of one test run (`results`: its events file, beside which its
/// `log_path` files are): those the plugin gave to tests, then what the logs hold past them
/// (given to the test that was running when the process ended), sorted into the extension's
/// findings and the rest.
fn sanitizer_findings(
    results: &Utf8Path,
    evs: &[Event],
    needles: &[String],
) -> (Vec<Finding>, sanitizer::Outside) {
    let files = sanitizer_logs(&sanitizer_prefix(results));
    let mut reports = sanitizer::from_events(evs);
    reports.extend(sanitizer::leftovers(evs, &files, events::unfinished_test(evs).as_deref()));
    sanitizer::findings(&reports, needles)
}

/// Race hunting on a free-threaded cell: the suite once more with every test run by
/// [`PARALLEL_THREADS`] threads at once (pytest-run-parallel), without the tests that crashed
/// in the plain run. A test that passed plainly but fails (or crashes, or hangs) here is a
/// [`FindingKind::ThreadSafety`] finding; sanitizer reports of this run are findings as in
/// the plain one. Returns the findings and a note for the suite's detectors.
fn hunt_races(
    env: &CellEnv<'_>,
    runs: &TestRuns<'_>,
    dir: &Utf8Path,
    plain_events: &[Event],
    deselect: &[String],
    needles: &Needles,
) -> (Vec<Finding>, String) {
    let results = dir.join("events-parallel.jsonl");
    let log = dir.join("test-parallel.log");
    let cmd = runs.invocation(RunKind::Races { deselect }, &results);
    let run = run_once(env, &cmd, dir, &results, &log);
    let exit = match run.exit {
        Ok(exit) => exit,
        Err(e) => return (Vec::new(), format!("race hunting did not run: {e:?}")),
    };
    let mut out = thread_safety_findings(plain_events, &run.events, &exit, &run.text);
    let mut sanitizer_outside = sanitizer::Outside::default();
    if runs.detectors.tsan || runs.detectors.ubsan {
        let (found, outside) = sanitizer_findings(&results, &run.events, &needles.sanitizer);
        out.extend(found);
        sanitizer_outside = outside;
    }
    let ran = events::count(&run.events);
    let mut note = format!(
        "race hunting: {} test(s) run by {PARALLEL_THREADS} threads at once ({} passed, {} failed)",
        ran.passed + ran.failed + ran.skipped,
        ran.passed,
        ran.failed
    );
    if let Some(outside) = sanitizer_outside.note(&dir.join("sanitizer")) {
        note.push_str(&format!("; {outside}"));
    }
    (out, note)
}

/// The race-hunting run's failures, crashes and hangs of tests that passed in the plain run
/// (`plain_events`), as [`FindingKind::ThreadSafety`] findings. Pure.
fn thread_safety_findings(
    plain_events: &[Event],
    events: &[Event],
    exit: &Exit,
    log: &str,
) -> Vec<Finding> {
    let passed: BTreeSet<&str> = plain_events
        .iter()
        .filter_map(|e| match e {
            Event::End { test, outcome: events::TestOutcome::Passed, .. } => Some(test.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for f in events::evaluate(events, exit, log) {
        let only_here = f.test.as_deref().is_some_and(|t| passed.contains(t));
        if only_here
            && matches!(f.kind, FindingKind::TestFailure | FindingKind::Crash | FindingKind::Hang)
        {
            out.push(Finding::new(
                FindingKind::ThreadSafety,
                f.test.clone(),
                format!(
                    "passes alone, fails when {PARALLEL_THREADS} threads run it at once (pytest-run-parallel --parallel-threads={PARALLEL_THREADS}): {}: {}",
                    f.kind, f.message
                ),
            ));
        }
    }
    out
}

/// Every `<prefix>.<pid>` file and its text.
fn sanitizer_logs(prefix: &Utf8Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (Some(dir), Some(name)) = (prefix.parent(), prefix.file_name()) else { return out };
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else { continue };
        if path.file_name().is_some_and(|f| f.starts_with(&format!("{name}.")))
            && let Ok(text) = fs::read(&path)
        {
            out.insert(path.into_string(), String::from_utf8_lossy(&text).into_owned());
        }
    }
    out
}

/// Leak hunting repeats tests, and a later test may depend on what an earlier one left
/// (zope.interface counts `gc.get_objects()` around a loop, and the caches the leak hunt
/// cleared refill). A test that failed in the hunting run is run again plainly, alone with
/// the other failures: one that passes there failed only because of the repetitions, and is
/// a note, not a finding.
fn confirm_failures(
    env: &CellEnv<'_>,
    runs: &TestRuns<'_>,
    dir: &Utf8Path,
    findings: &mut [Finding],
) {
    let failed: Vec<String> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::TestFailure)
        .filter_map(|f| f.test.clone())
        .collect();
    if failed.is_empty() {
        return;
    }
    let results = dir.join("events-plain.jsonl");
    let log = dir.join("test-plain.log");
    let cmd = runs.invocation(RunKind::Confirm { targets: &failed }, &results);
    let run = run_once(env, &cmd, dir, &results, &log);
    mark_order_dependent(findings, &run.events);
}

/// Runs the `ref-leak` findings' tests again on the project's pure-Python implementation,
/// where it has a switch to one ([`crate::twin`]), and applies what the twin did: growth
/// there too is the test's own state (no longer a finding; returned as notes).
fn ask_the_twin(
    env: &CellEnv<'_>,
    runs: &TestRuns<'_>,
    dir: &Utf8Path,
    events: &[Event],
    findings: &mut Vec<Finding>,
    counts: &mut Counts,
) -> Vec<NotJudged> {
    let leaks: Vec<String> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::RefLeak)
        .filter_map(|f| f.test.clone())
        .collect();
    if leaks.is_empty() {
        return Vec::new();
    }
    let switch = runs.twin.to_vec();
    if switch.is_empty() {
        return Vec::new();
    }
    let results = dir.join("events-twin.jsonl");
    let log = dir.join("test-twin.log");
    let cmd = runs.invocation(RunKind::Twin { targets: &leaks, switch: &switch }, &results);
    let run = run_once(env, &cmd, dir, &results, &log);
    // The signals that decided in the plain run (release-ABI modules leave blocks alone).
    let decided = events.iter().rev().find_map(|e| match e {
        Event::Signals { signals, .. } => Some(signals.clone()),
        _ => None,
    });
    let signals: Vec<&str> = match &decided {
        Some(s) => s.iter().map(String::as_str).collect(),
        None if runs.detectors.leak_signals.is_empty() => vec!["refs", "blocks"],
        None => runs.detectors.leak_signals.iter().map(String::as_str).collect(),
    };
    let found = twin::results(&twin::describe(&switch), &leaks, &run.events, &signals);
    let mut dismissed = twin::apply(findings, counts, &found);
    // The leaks the twin did not explain, alone, with the whole judgement.
    let leaks: Vec<String> = findings
        .iter()
        .filter(|f| {
            f.kind == FindingKind::RefLeak && f.evidence.as_ref().is_some_and(|e| e.deferred)
        })
        .filter_map(|f| f.test.clone())
        .collect();
    if !leaks.is_empty() {
        let results = dir.join("events-evidence.jsonl");
        let log = dir.join("test-evidence.log");
        let cmd = runs.invocation(RunKind::Evidence { targets: &leaks }, &results);
        let run = run_once(env, &cmd, dir, &results, &log);
        dismissed.extend(events::apply_evidence(findings, counts, &run.events));
    }
    dismissed
}

/// Turns the test failures of `findings` whose test passed in the plain re-run (`events`)
/// into [`FindingKind::OrderDependent`] notes. Pure.
fn mark_order_dependent(findings: &mut [Finding], events: &[Event]) {
    for e in events {
        let Event::End { test, outcome, .. } = e else { continue };
        if *outcome != events::TestOutcome::Passed {
            continue;
        }
        for f in findings.iter_mut() {
            if f.kind == FindingKind::TestFailure && f.test.as_deref() == Some(test) {
                f.kind = FindingKind::OrderDependent;
                f.message = format!(
                    "failed only in the leak-hunting run (other tests repeated before it), passed \
                     when run again plainly: a test that depends on what earlier tests left, not \
                     a failure of the build; the hunting run said:\n{}",
                    f.message
                );
            }
        }
    }
}

fn append(log: &Utf8Path, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Source file names of the project (C, C++ and their headers, Rust), to recognise the extension
/// in valgrind and sanitizer stacks.
fn c_sources(src: &Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else { continue };
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension(),
                Some("c" | "cc" | "cpp" | "cxx" | "h" | "hh" | "hpp" | "hxx" | "rs")
            ) && let Some(name) = path.file_name()
            {
                out.push(format!("({name}:"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
