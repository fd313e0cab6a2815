//! The verdict: regrtest's summary (module states) + the JUnit XML (test case counts) +
//! the environment's known failures → per-module results and whether the cell passes.
//!
//! Module states come from the log's summary, because the XML misses crashed modules and
//! failing subtests (see [`crate::junit`]). A module the summary lists as re-run and not as
//! failing at the end is flaky: it failed, then passed on its re-run. A re-run that ran no
//! tests is a failure: 3.11.2's regrtest re-runs a crashed module with a stale test filter,
//! runs nothing, and would otherwise call the crash a pass.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{
    KnownFailure, junit,
    junit::{Cases, ModuleCases},
    summary,
    summary::Summary,
};

/// The verdict of a finished run from its log and its JUnit XML: [`evaluate`], with each
/// failing module that has no failing case in the XML (a crash, an import error, a timeout)
/// explained by regrtest's progress line about it.
pub fn judge(
    log: &str,
    xml: &str,
    requested: &[String],
    known: &[KnownFailure],
) -> Result<Evaluation, String> {
    let summary = summary::parse(log).map_err(|e| e.to_string())?;
    let cases = junit::parse(xml).map_err(|e| e.to_string())?;
    let mut evaluation = evaluate(&summary, &cases, requested, known);
    for m in &mut evaluation.modules {
        if m.status.is_failure() && m.cases.failing.is_empty() && m.note.is_none() {
            m.note = summary::last_progress(log, &m.module).map(str::to_owned);
        }
    }
    Ok(evaluation)
}

/// What happened to one test module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleStatus {
    /// Passed the first time.
    Passed,
    /// Failed, then passed on its re-run.
    Flaky,
    /// Failed (or crashed, or timed out), also on its re-run.
    Failed,
    /// Altered the execution environment (a failure under `--fail-env-changed`).
    EnvChanged,
    /// Skipped as a whole (e.g. a platform it does not run on).
    Skipped,
    /// Skipped for want of a resource not enabled with `-u`.
    ResourceDenied,
    /// Its test filter matched no test.
    RunNoTests,
    /// Selected but never run (the run was interrupted).
    Omitted,
}

impl ModuleStatus {
    /// Whether the status fails a cell, unless the module is a known failure.
    pub fn is_failure(self) -> bool {
        matches!(self, ModuleStatus::Failed | ModuleStatus::EnvChanged | ModuleStatus::Omitted)
    }

    /// Whether the module did not run its tests.
    pub fn is_skip(self) -> bool {
        matches!(
            self,
            ModuleStatus::Skipped | ModuleStatus::ResourceDenied | ModuleStatus::RunNoTests
        )
    }
}

/// One test module's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleResult {
    /// `test_sys`.
    pub module: String,
    /// What happened to it.
    pub status: ModuleStatus,
    /// Its test cases, from the JUnit XML (all zero when the XML has none of them).
    pub cases: ModuleCases,
    /// Why it is a known failure in this environment, if it failed and is one.
    pub known_failure: Option<String>,
    /// Anything else worth saying about the status.
    pub note: Option<String>,
}

impl ModuleResult {
    /// Whether this module fails the cell: a failure that is not a known one.
    pub fn fails_cell(&self) -> bool {
        self.status.is_failure() && self.known_failure.is_none()
    }
}

/// The per-module results of one regrtest run and what they mean for the cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// regrtest's own final state (`SUCCESS`, `FAILURE then SUCCESS`, …).
    pub state: String,
    /// Every module, by name.
    pub modules: Vec<ModuleResult>,
    /// Known failures of this environment that ran and did not fail: the entry may be stale.
    pub known_but_passed: Vec<String>,
    /// Run-level problems that fail the cell whatever the modules say (interrupted, worker bug).
    pub problems: Vec<String>,
}

impl Evaluation {
    /// The modules that fail the cell.
    pub fn failing(&self) -> Vec<&ModuleResult> {
        self.modules.iter().filter(|m| m.fails_cell()).collect()
    }

    /// Whether the cell passes.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.failing().is_empty()
    }

    /// `15 modules, 1234 tests passed, 2 skipped modules, 0 failed (known: test_socket),
    /// 1 flaky (test_x)`.
    pub fn line(&self) -> String {
        let count =
            |f: &dyn Fn(&ModuleResult) -> bool| self.modules.iter().filter(|m| f(m)).count();
        let names = |f: &dyn Fn(&ModuleResult) -> bool| {
            self.modules
                .iter()
                .filter(|m| f(m))
                .map(|m| m.module.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let passed: u32 = self.modules.iter().map(|m| m.cases.passed).sum();
        let mut line = format!(
            "{} modules, {passed} tests passed, {} skipped modules, {} failed",
            self.modules.len(),
            count(&|m| m.status.is_skip()),
            count(&|m| m.fails_cell()),
        );
        let failing = names(&|m| m.fails_cell());
        if !failing.is_empty() {
            line.push_str(&format!(" ({failing})"));
        }
        let known = names(&|m| m.known_failure.is_some());
        if !known.is_empty() {
            line.push_str(&format!(" (known: {known})"));
        }
        let flaky = names(&|m| m.status == ModuleStatus::Flaky);
        if !flaky.is_empty() {
            line.push_str(&format!(
                ", {} flaky ({flaky})",
                count(&|m| m.status == ModuleStatus::Flaky)
            ));
        }
        for p in &self.problems {
            line.push_str(&format!("; {p}"));
        }
        line
    }
}

/// Combines a run's summary and XML with the environment's known failures. `requested` is
/// the profile's module list (empty for regrtest's default selection): requested modules
/// that appear nowhere else passed without JUnit cases (regrtest only counts passing modules).
pub fn evaluate(
    summary: &Summary,
    cases: &Cases,
    requested: &[String],
    known: &[KnownFailure],
) -> Evaluation {
    let listed = |list: &[String], m: &str| list.iter().any(|x| x == m);
    let mut names: BTreeSet<&str> = cases.modules().collect();
    for list in [
        &summary.failed,
        &summary.env_changed,
        &summary.skipped,
        &summary.resource_denied,
        &summary.run_no_tests,
        &summary.rerun,
        &summary.omitted,
    ] {
        names.extend(list.iter().map(String::as_str));
    }
    names.extend(requested.iter().map(String::as_str));

    let modules: Vec<ModuleResult> = names
        .into_iter()
        .map(|m| {
            let rerun = listed(&summary.rerun, m);
            let mut note = None;
            let status = if listed(&summary.failed, m) {
                ModuleStatus::Failed
            } else if listed(&summary.env_changed, m) {
                ModuleStatus::EnvChanged
            } else if listed(&summary.omitted, m) {
                ModuleStatus::Omitted
            } else if listed(&summary.run_no_tests, m) && rerun {
                note = Some("failed, and its re-run ran no tests".to_owned());
                ModuleStatus::Failed
            } else if listed(&summary.resource_denied, m) {
                ModuleStatus::ResourceDenied
            } else if listed(&summary.skipped, m) {
                ModuleStatus::Skipped
            } else if listed(&summary.run_no_tests, m) {
                ModuleStatus::RunNoTests
            } else if rerun {
                ModuleStatus::Flaky
            } else {
                ModuleStatus::Passed
            };
            let known_failure = status
                .is_failure()
                .then(|| known.iter().find(|k| k.test == m).map(|k| k.reason.clone()))
                .flatten();
            ModuleResult {
                module: m.to_owned(),
                status,
                cases: cases.module(m, rerun),
                known_failure,
                note,
            }
        })
        .collect();

    let mut problems = Vec::new();
    if summary.interrupted {
        problems.push("regrtest was interrupted".to_owned());
    }
    if summary.state.contains("WORKER BUG") {
        problems.push("regrtest reports a worker bug".to_owned());
    }
    if summary.state.contains("NO TESTS RAN") {
        problems.push("regrtest ran no tests".to_owned());
    }
    let known_but_passed = known
        .iter()
        .filter(|k| {
            modules
                .iter()
                .any(|m| m.module == k.test && !m.status.is_failure() && !m.status.is_skip())
        })
        .map(|k| k.test.clone())
        .collect();
    Evaluation { state: summary.state.clone(), modules, known_but_passed, problems }
}
