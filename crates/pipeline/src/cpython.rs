//! Stage 3: CPython's own test suite (regrtest) on every built cell.

use regrtest::{Outcome, Request, TestRun, TestsFile};

use crate::{Built, Session};

/// Which regrtest run.
#[derive(Debug, Clone)]
pub struct RegrtestOptions {
    /// A profile of `matrix/cpython-tests.toml` (`smoke`, `full`).
    pub profile: String,
    /// Whose known failures apply (`local`, `sandbox`, …).
    pub environment: String,
    /// regrtest `-j` [default: the number of CPUs].
    pub jobs: Option<usize>,
}

/// One cell's regrtest run: run, or recorded as not run with the reason.
#[derive(Debug, Clone)]
pub struct CellRun {
    /// Index into [`Built::cells`].
    pub index: usize,
    /// The judged run.
    pub run: TestRun,
}

/// Runs regrtest with `tests` (`matrix/cpython-tests.toml`, loaded and checked before
/// anything was built) on every cell of `built`; a cell that is not usable gets a not-run
/// record saying why. Stops early (returning what ran) when the session is cancelled.
pub fn run(
    session: &Session,
    tests: &TestsFile,
    built: &Built<'_>,
    options: &RegrtestOptions,
) -> anyhow::Result<Vec<CellRun>> {
    let profile = tests.profile(&options.profile)?;
    let _polling = crate::Polling::start();
    let mut runs = Vec::new();
    for (index, cell) in built.cells.iter().enumerate() {
        if session.cancelled() {
            break;
        }
        let name = cell.cell.id();
        let _lock = session.lock_cell(&cell.cell)?;
        let files = session.layout.cell(&cell.cell).regrtest(&profile.name);
        let known = tests.known_failures_in(&options.environment, &cell.cell.variant.name);
        let run = if cell.usable() {
            eprintln!("{name}: regrtest, profile {} …", profile.name);
            regrtest::run(&Request {
                cell: &name,
                python: &cell.outcome.dirs.python(),
                runtime_env: &cell.plan.runtime_env,
                profile,
                environment: &options.environment,
                known_failures: &known,
                jobs: options.jobs.unwrap_or_else(|| session.cpus()),
                files: &files,
                cancel: session.cancel_flag(),
            })?
        } else {
            let record = TestRun::not_run(
                &name,
                &profile.name,
                &options.environment,
                &files,
                cell.why_unusable(),
            );
            record.write(&files.results)?;
            record
        };
        println!("{name:26} {}", run.line());
        explain(&run);
        runs.push(CellRun { index, run });
    }
    Ok(runs)
}

/// Details for people on stderr: failing cases, stale known failures, the log's tail.
fn explain(record: &TestRun) {
    match &record.outcome {
        Outcome::Evaluated(e) => {
            for m in e.failing() {
                let cases = &m.cases.failing;
                let mut what: Vec<String> = cases.iter().take(5).cloned().collect();
                if cases.len() > 5 {
                    what.push(format!("and {} more", cases.len() - 5));
                }
                what.extend(m.note.clone());
                eprintln!("  {} {:?}: {}", m.module, m.status, what.join(", "));
            }
            if !e.ok() {
                eprintln!("  log: {}", record.log);
            }
            for t in &e.known_but_passed {
                eprintln!(
                    "  note: {t} is a known failure in {} but passed; is its entry in cpython-tests.toml stale?",
                    record.environment
                );
            }
        }
        Outcome::Error { tail, .. } => eprintln!("{tail}"),
        Outcome::NotRun { .. } => {}
    }
}
