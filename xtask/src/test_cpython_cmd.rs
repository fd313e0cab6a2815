//! `test-cpython`: CPython's own test suite (regrtest) on every selected cell, built first.

use std::sync::atomic::Ordering;

use anyhow::bail;
use build::{BuildStatus, CellOutcome, CheckStatus};
use regrtest::{Files, Outcome, Request, TestRun, TestsFile};

use crate::{
    Context,
    build_cmd::{build_cells, cancel_flag},
    flags::TestCpython,
};

impl TestCpython {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let tests = TestsFile::load(&ctx.matrix.dir.join("cpython-tests.toml"))?;
        let profile = tests.profile(&self.profile)?;
        let cells = ctx.named_cells(&self.cells)?;
        let cancel = cancel_flag()?;
        // The same builds as `cargo xtask build` (cheap when cached), each interpreter checked.
        let (builder, jobs, outcomes) = build_cells(ctx, &cells, self.make_jobs, 1, &cancel)?;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

        let mut failed = Vec::new();
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if cancel.load(Ordering::SeqCst) {
                break;
            }
            let name = job.cell.name();
            let cell_dir = ctx.layout.cell_dir(&job.cell);
            let files = Files::in_dir(&cell_dir, &profile.name);
            let known = tests.known_failures_in(&self.environment, &job.cell.variant.name);
            let record = if outcome.ok() {
                eprintln!("{name}: regrtest, profile {} …", profile.name);
                let runtime_env = builder.plan(&job.cell).runtime_env;
                regrtest::run(&Request {
                    cell: &name,
                    python: &outcome.dirs.python(),
                    runtime_env: &runtime_env,
                    profile,
                    environment: &self.environment,
                    known_failures: &known,
                    jobs: self.jobs.unwrap_or(cpus),
                    cell_dir: &cell_dir,
                    cancel: &cancel,
                })?
            } else {
                let reason = not_testable(outcome);
                let record =
                    TestRun::not_run(&name, &profile.name, &self.environment, &files, reason);
                record.write(&files.results)?;
                record
            };
            println!("{name:26} {}", record.line());
            ctx.update_report(|doc| {
                ctx.record_cell(doc, &job.cell, outcome);
                doc.record_cpython_tests(&job.cell, outcome, &record);
            })?;
            explain(&record);
            if !record.ok() {
                let modules = record.failing_modules();
                failed.push(if modules.is_empty() {
                    name
                } else {
                    format!("{name} ({})", modules.join(", "))
                });
            }
        }
        if cancel.load(Ordering::SeqCst) {
            bail!("interrupted; rerun the same command to test again");
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} cells failed CPython's tests (profile {}, environment {}): {}",
                failed.len(),
                outcomes.len(),
                profile.name,
                self.environment,
                failed.join(", ")
            );
        }
        Ok(())
    }
}

/// Why a cell cannot be tested.
fn not_testable(o: &CellOutcome) -> String {
    match (&o.build, &o.check) {
        (BuildStatus::Failed { phase, log, .. }, _) => {
            format!("its build failed in {phase}; log: {log}")
        }
        (BuildStatus::Cancelled, _) => "its build was interrupted".to_owned(),
        (_, CheckStatus::Mismatch { .. }) => "its interpreter does not keep its promise".to_owned(),
        (_, CheckStatus::Error { message }) => {
            format!("its interpreter could not be checked: {message}")
        }
        _ => "its interpreter was not checked".to_owned(),
    }
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
