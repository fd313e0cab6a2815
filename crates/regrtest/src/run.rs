//! The process boundary: run regrtest on one cell and record what it means.

use std::{
    collections::BTreeMap,
    fs,
    process::Command,
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use process::RunError;
use serde::{Deserialize, Serialize};

use crate::{Evaluation, Invocation, KnownFailure, Profile, evaluate::judge, summary};

/// The files of one profile's run: `workdir` names them.
pub use workdir::RegrtestFiles as Files;

/// What to run.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `3.13.5+debug`.
    pub cell: &'a matrix::CellId,
    /// The installed interpreter.
    pub python: &'a Utf8Path,
    /// The variant's runtime environment (`PYTHONMALLOC=…`); every other `PYTHON*` variable
    /// is removed.
    pub runtime_env: &'a BTreeMap<String, String>,
    /// The profile.
    pub profile: &'a Profile,
    /// The environment's name, for the record.
    pub environment: &'a str,
    /// The environment's known failures.
    pub known_failures: &'a [KnownFailure],
    /// regrtest `-j`.
    pub jobs: usize,
    /// Where the log, the JUnit XML and the judged results go (`workdir::CellDirs::regrtest`).
    pub files: &'a Files,
    /// Set on Ctrl-C: the run's process group is killed.
    pub cancel: &'a AtomicBool,
}

/// One regrtest run of one cell, as written to `test-cpython-<profile>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestRun {
    /// `3.13.5+debug`.
    pub cell: matrix::CellId,
    /// `smoke`, `full`.
    pub profile: String,
    /// Whose known failures applied.
    pub environment: String,
    /// The command line (empty if it never ran).
    pub command: Vec<String>,
    /// The runtime environment it ran with.
    pub runtime_env: BTreeMap<String, String>,
    /// Wall-clock seconds.
    pub seconds: u64,
    /// regrtest's output.
    pub log: Utf8PathBuf,
    /// regrtest's JUnit XML.
    pub junit: Utf8PathBuf,
    /// What came of it.
    pub outcome: Outcome,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// regrtest finished; its results, judged.
    Evaluated(Evaluation),
    /// No verdict: regrtest could not run, timed out, or left no summary or XML.
    Error {
        /// Why.
        message: String,
        /// The log's last lines.
        tail: String,
    },
    /// Not run: the cell's build or promise check failed, or the run was interrupted.
    NotRun {
        /// Why.
        reason: String,
    },
}

impl TestRun {
    /// A record for a cell that was not tested.
    pub fn not_run(
        cell: &matrix::CellId,
        profile: &str,
        environment: &str,
        files: &Files,
        reason: String,
    ) -> TestRun {
        TestRun {
            cell: cell.clone(),
            profile: profile.to_owned(),
            environment: environment.to_owned(),
            command: Vec::new(),
            runtime_env: BTreeMap::new(),
            seconds: 0,
            log: files.log.clone(),
            junit: files.junit.clone(),
            outcome: Outcome::NotRun { reason },
        }
    }

    /// Whether the cell passes.
    pub fn ok(&self) -> bool {
        matches!(&self.outcome, Outcome::Evaluated(e) if e.ok())
    }

    /// The modules failing the cell (empty unless evaluated).
    pub fn failing_modules(&self) -> Vec<String> {
        match &self.outcome {
            Outcome::Evaluated(e) => e.failing().iter().map(|m| m.module.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// One line for people: `smoke: 15 modules, 1234 tests passed, … in 31s; junit: <path>`.
    pub fn line(&self) -> String {
        match &self.outcome {
            Outcome::Evaluated(e) => {
                format!(
                    "{}: {} in {}s; junit: {}",
                    self.profile,
                    e.line(),
                    self.seconds,
                    self.junit
                )
            }
            Outcome::Error { message, .. } => {
                format!("{}: ERROR {message}; log: {}", self.profile, self.log)
            }
            Outcome::NotRun { reason } => format!("{}: not tested: {reason}", self.profile),
        }
    }

    /// Writes the record to `path` (atomically).
    pub fn write(&self, path: &Utf8Path) -> anyhow::Result<()> {
        process::write_json_atomically(path, self)
    }
}

/// Runs regrtest as `req` says, in a fresh temporary directory, with output to the log, and
/// writes the [`TestRun`] beside it. Errors only when the run could not be set up; a run
/// that went wrong is a [`TestRun`] with an [`Outcome::Error`].
pub fn run(req: &Request<'_>) -> anyhow::Result<TestRun> {
    let files = req.files.clone();
    if let Some(dir) = files.results.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    }
    for stale in [&files.log, &files.junit, &files.results] {
        match fs::remove_file(stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {stale}"));
            }
            _ => {}
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("debug-matrix-regrtest-")
        .tempdir()
        .context("creating a temporary directory")?;
    let tempdir =
        Utf8Path::from_path(tmp.path()).context("the temporary directory's path is not UTF-8")?;
    let command = req.profile.command_line(
        req.python,
        &Invocation { jobs: req.jobs.max(1), junit: &files.junit, tempdir },
    );
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]).current_dir(tempdir);
    process::scrub_python_env(&mut cmd);
    cmd.envs(req.runtime_env);

    let started = Instant::now();
    let timeout = Duration::from_secs(req.profile.run_timeout_minutes * 60);
    let result = process::run_logged(cmd, &files.log, req.cancel, Some(timeout));
    let seconds = started.elapsed().as_secs();
    let error =
        |message: String| Outcome::Error { message, tail: process::tail_of_file(&files.log, 30) };
    let outcome = match result {
        Err(RunError::Cancelled) => Outcome::NotRun { reason: "interrupted".to_owned() },
        Err(RunError::TimedOut(t)) => {
            error(format!("regrtest ran past {} minutes and was killed", t.as_secs() / 60))
        }
        Err(RunError::Io(e)) => error(format!("could not run {}: {e}", req.python)),
        Ok(()) => verdict(req, &files, "exit status: 0".to_owned()),
        Err(RunError::Failed(status)) => verdict(req, &files, status.to_string()),
    };
    let record = TestRun {
        cell: req.cell.clone(),
        profile: req.profile.name.clone(),
        environment: req.environment.to_owned(),
        command,
        runtime_env: req.runtime_env.clone(),
        seconds,
        log: files.log.clone(),
        junit: files.junit.clone(),
        outcome,
    };
    record.write(&files.results)?;
    Ok(record)
}

/// The verdict of a finished run. regrtest's exit status is not the verdict (it is non-zero
/// for known failures too); it is only quoted when there is nothing else to go on.
fn verdict(req: &Request<'_>, files: &Files, status: String) -> Outcome {
    let error =
        |message: String| Outcome::Error { message, tail: process::tail_of_file(&files.log, 30) };
    let log = match fs::read(&files.log) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return error(format!("reading {}: {e}", files.log)),
    };
    if let Err(e) = summary::parse(&log) {
        return error(format!("{e} ({status})"));
    }
    let xml = match fs::read_to_string(&files.junit) {
        Ok(xml) => xml,
        Err(e) => {
            return error(format!("regrtest wrote no JUnit XML {} ({e}; {status})", files.junit));
        }
    };
    match judge(&log, &xml, &req.profile.tests, req.known_failures) {
        Ok(evaluation) => Outcome::Evaluated(evaluation),
        Err(e) => error(format!("{}: {e}", files.junit)),
    }
}
