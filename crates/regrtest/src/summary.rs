//! The summary regrtest prints at the end of its log: the module-level verdicts.
//!
//! regrtest prints a block starting `== Tests result: STATE ==` after the run, and again after
//! re-running failed modules (`-w`); the last block is the final word. It lists modules by
//! what happened to them:
//!
//! ```text
//! == Tests result: FAILURE then SUCCESS ==
//!
//! 1 test skipped:
//!     test_winreg
//!
//! 1 re-run test:
//!     test_flaky
//!
//! 2 tests OK.
//! ```
//!
//! The block is the same in 3.11.2 (whose regrtest calls env changed "altered the execution
//! environment:" and folds resource-denied modules into "skipped") and in 3.13 (which adds
//! "(env changed)" and a separate "skipped (resource denied)" list). Passing modules are only
//! counted ("N tests OK."), never named; their names come from the JUnit XML.

use serde::{Deserialize, Serialize};

/// regrtest's final summary block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The state in the block's title: `SUCCESS`, `FAILURE then SUCCESS`, `ENV CHANGED`, …
    pub state: String,
    /// Modules failing after any re-run (a crash counts: "worker non-zero exit code").
    pub failed: Vec<String>,
    /// Modules that altered the execution environment (a failure under `--fail-env-changed`).
    pub env_changed: Vec<String>,
    /// Modules skipped as a whole.
    pub skipped: Vec<String>,
    /// Modules skipped for a resource not enabled with `-u` (3.13; 3.11 counts them as skipped).
    pub resource_denied: Vec<String>,
    /// Modules whose test filter matched no test.
    pub run_no_tests: Vec<String>,
    /// Modules re-run after failing.
    pub rerun: Vec<String>,
    /// Modules selected but never run (the run was interrupted).
    pub omitted: Vec<String>,
    /// How many modules passed.
    pub ok: usize,
    /// Whether regrtest says it was interrupted.
    pub interrupted: bool,
}

/// Why the summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The log has no `== Tests result: … ==` line: regrtest did not finish (killed, crashed,
    /// timed out) or did not start (bad option).
    #[error("the log has no `== Tests result: … ==` summary: regrtest did not finish")]
    Missing,
    /// A list's length disagrees with its title.
    #[error("the summary says `{title}` but lists {listed}")]
    Inconsistent {
        /// The list's title line.
        title: String,
        /// How many names it lists.
        listed: usize,
    },
}

/// Reads the last summary block of a regrtest log.
pub fn parse(log: &str) -> Result<Summary, SummaryError> {
    let lines: Vec<&str> = log.lines().collect();
    let start =
        lines.iter().rposition(|l| title_state(l).is_some()).ok_or(SummaryError::Missing)?;
    let mut summary = Summary {
        state: title_state(lines[start]).unwrap_or_default().to_owned(),
        ..Summary::default()
    };
    let mut i = start + 1;
    while i < lines.len() {
        let line = lines[i].trim_end();
        i += 1;
        if line.starts_with("Total duration:") || title_state(line).is_some() {
            break;
        }
        if line == "Test suite interrupted by signal SIGINT." {
            summary.interrupted = true;
            continue;
        }
        if let Some(n) = ok_count(line) {
            summary.ok = n;
            continue;
        }
        let Some((count, list)) = list_title(line) else { continue };
        let mut names = Vec::new();
        while i < lines.len() && lines[i].starts_with(' ') && !lines[i].trim().is_empty() {
            names.extend(lines[i].split_whitespace().map(str::to_owned));
            i += 1;
        }
        let Some(list) = list else { continue };
        if names.len() != count {
            return Err(SummaryError::Inconsistent { title: line.to_owned(), listed: names.len() });
        }
        let target = match list {
            List::Failed => &mut summary.failed,
            List::EnvChanged => &mut summary.env_changed,
            List::Skipped => &mut summary.skipped,
            List::ResourceDenied => &mut summary.resource_denied,
            List::RunNoTests => &mut summary.run_no_tests,
            List::Rerun => &mut summary.rerun,
            List::Omitted => &mut summary.omitted,
        };
        *target = names;
    }
    Ok(summary)
}

/// What regrtest's last progress line about `module` says after its name: `failed
/// (uncaught exception)`, `worker non-zero exit code (Exit code -6 (SIGABRT))` (3.13),
/// `crashed (Exit code -6)` (3.11.2). Progress lines look like
/// `0:00:05 load avg: 5.06 [ 4/18/1] test_x failed (2 errors) (1 min 2 sec) -- running (1): …`.
pub fn last_progress<'a>(log: &'a str, module: &str) -> Option<&'a str> {
    log.lines().rev().find_map(|line| {
        let (head, rest) = line.split_once("] ")?;
        let counter = &head[head.rfind('[')? + 1..];
        if counter.is_empty()
            || !counter.bytes().all(|b| b.is_ascii_digit() || b == b'/' || b == b' ')
        {
            return None;
        }
        let what = rest.strip_prefix(module)?.strip_prefix(' ')?;
        Some(what.split(" -- ").next().unwrap_or(what).trim())
    })
}

enum List {
    Failed,
    EnvChanged,
    Skipped,
    ResourceDenied,
    RunNoTests,
    Rerun,
    Omitted,
}

/// `== Tests result: FAILURE then SUCCESS ==` → `FAILURE then SUCCESS`.
fn title_state(line: &str) -> Option<&str> {
    line.trim_end().strip_prefix("== Tests result: ")?.strip_suffix(" ==")
}

/// `All 15 tests OK.`, `1 test OK.` → the count.
fn ok_count(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("All ").unwrap_or(line);
    let (n, tail) = rest.split_once(' ')?;
    matches!(tail, "test OK." | "tests OK.").then(|| n.parse().ok()).flatten()
}

/// `3 tests failed:` → (3, Some(Failed)). Lists the summary does not keep (`10 slowest
/// tests:`, whose items are `- test_x: 1 sec` lines) give `None` so their lines are skipped.
fn list_title(line: &str) -> Option<(usize, Option<List>)> {
    let (n, rest) = line.split_once(' ')?;
    let n: usize = n.parse().ok()?;
    let rest = rest.strip_suffix(':')?;
    let what = rest
        .strip_prefix("tests ")
        .or_else(|| rest.strip_prefix("test "))
        .or_else(|| rest.strip_prefix("re-run tests").map(|_| "re-run"))
        .or_else(|| rest.strip_prefix("re-run test").map(|_| "re-run"))?;
    let list = match what {
        "failed" => Some(List::Failed),
        "altered the execution environment" | "altered the execution environment (env changed)" => {
            Some(List::EnvChanged)
        }
        "skipped" => Some(List::Skipped),
        "skipped (resource denied)" => Some(List::ResourceDenied),
        "run no tests" => Some(List::RunNoTests),
        "re-run" => Some(List::Rerun),
        "omitted" => Some(List::Omitted),
        _ => None,
    };
    Some((n, list))
}
