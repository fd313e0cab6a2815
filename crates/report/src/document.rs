//! The results document, `<work>/report/report.json`: one entry per cell with its build,
//! its interpreter check, its phases (sources, build, check, CPython's tests, extension
//! suites) and its extension suites' findings (each with the command that reproduces it).
//! Versioned by [`SCHEMA_VERSION`]; commands update the cells they ran and keep the others,
//! so the document describes the latest state of every cell. Reading and moving the file
//! aside is in `file.rs`; this module is pure.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use matrix::{Cell, CellId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    outcome::{BuildStatus, CellBuild, CheckStatus, CpythonRun},
    phase::{CellStatus, Phase, PhaseKey, PhaseStatus},
    repro,
    reproducibility::Reproducibility,
    suite::SuiteResult,
};

/// Bumped on every incompatible change of [`Document`].
pub const SCHEMA_VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// One entry per cell, in version order (3.13.5 before 3.13.15), then by variant name.
    pub cells: Vec<CellResults>,
    /// Fields this version does not know (a newer version wrote them): kept as read and
    /// written back, never dropped (issue 18).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Everything known about one cell.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CellResults {
    /// `3.13.5+debug`.
    #[schemars(schema_with = "crate::schema::cell_id")]
    pub cell: CellId,
    /// `3.13.5`.
    pub version: String,
    /// `debug`.
    pub variant: String,
    /// The build's cache key.
    pub key: String,
    /// The archive's sha256.
    pub source_sha256: String,
    /// How the build ended.
    pub build: BuildStatus,
    /// Whether the interpreter keeps its promise.
    pub check: CheckStatus,
    /// Extension suites run on the cell, with their findings.
    #[serde(default)]
    pub suites: Vec<SuiteResult>,
    /// Each phase's status and time, in pipeline order.
    #[serde(default)]
    pub phases: BTreeMap<PhaseKey, Phase>,
    /// The last `build --check` of this build (also the phase `reproducible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproducibility: Option<Reproducibility>,
    /// Fields this version does not know, kept as read (see [`Document::extra`]).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A phase that failed, as every rendering shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseFailure {
    /// Which phase.
    pub phase: PhaseKey,
    /// How it ended (`failed`, `error`, `cancelled`).
    pub status: PhaseStatus,
    /// One line: what failed.
    pub summary: String,
    /// The whole text (a diff, a log's tail, regrtest's summary); may be empty.
    pub detail: String,
    /// The log to read, if there is one.
    pub log: Option<Utf8PathBuf>,
    /// The command that runs the phase again.
    pub repro: String,
}

impl Default for Document {
    fn default() -> Self {
        Document { schema_version: SCHEMA_VERSION, cells: Vec::new(), extra: BTreeMap::new() }
    }
}

impl Document {
    /// Takes every cell of `other`, replacing this document's entry for the same cell: how the
    /// per-cell documents of a CI matrix become one. Top-level fields this version does not
    /// know are kept; `other`'s fill in those this document lacks.
    pub fn merge(&mut self, other: Document) {
        for (key, value) in other.extra {
            self.extra.entry(key).or_insert(value);
        }
        for cell in other.cells {
            self.cells.retain(|c| c.cell != cell.cell);
            self.cells.push(cell);
        }
        self.cells.sort_by(|a, b| a.cell.cmp(&b.cell));
    }

    /// Cells whose [`CellResults::status`] is a problem, as `cell (status)`.
    pub fn problems(&self) -> Vec<String> {
        self.cells
            .iter()
            .filter(|c| c.status().is_problem())
            .map(|c| format!("{} ({})", c.cell, c.status()))
            .collect()
    }

    /// Records `cell`'s build and interpreter check (phases `build` and `check`), creating
    /// its entry if needed and keeping its other phases and suites unless the build key
    /// changed (then what was recorded about the old build is dropped).
    pub fn record_build(&mut self, cell: &Cell<'_>, outcome: &CellBuild) {
        self.entry(cell, outcome);
    }

    /// Records the build and how the release's sources were fetched and verified.
    pub fn record_sources(
        &mut self,
        cell: &Cell<'_>,
        outcome: &CellBuild,
        fetch: Phase,
        verify: Phase,
    ) {
        let entry = self.entry(cell, outcome);
        entry.phases.insert(PhaseKey::Fetch, fetch);
        entry.phases.insert(PhaseKey::Verify, verify);
    }

    /// Records the build and a run of CPython's tests (phase `test-cpython-<profile>`):
    /// `passed` if regrtest's verdict is a pass, `failed` if not, `error` without a verdict,
    /// `not-run` if it did not run.
    pub fn record_cpython_tests(&mut self, cell: &Cell<'_>, outcome: &CellBuild, run: &CpythonRun) {
        let key = PhaseKey::TestCpython { profile: run.profile.clone() };
        let phase = Phase::new(run.status, Some(run.seconds), &run.line);
        self.entry(cell, outcome).phases.insert(key, phase);
    }

    /// Records the build and the extension suites that ran on it. Each suite's results
    /// replace only that suite's earlier results in the cell; the `extension-suites` phase
    /// then sums up all the cell's suites. No suite ran (an empty `suites`): nothing but the
    /// build is recorded, so a cell that was not tested never reads `clean`.
    pub fn record_suites(
        &mut self,
        cell: &Cell<'_>,
        outcome: &CellBuild,
        suites: Vec<SuiteResult>,
    ) {
        let entry = self.entry(cell, outcome);
        if suites.is_empty() {
            return;
        }
        for suite in suites {
            match entry.suites.iter_mut().find(|s| s.suite == suite.suite) {
                Some(earlier) => *earlier = suite,
                None => entry.suites.push(suite),
            }
        }
        let seconds = entry.suites.iter().map(|s| s.seconds).sum();
        let status = if entry.suites.iter().all(|s| s.clean()) {
            PhaseStatus::Clean
        } else {
            PhaseStatus::Findings
        };
        let names: Vec<&str> = entry.suites.iter().map(|s| s.suite.as_str()).collect();
        entry.phases.insert(
            PhaseKey::ExtensionSuites,
            Phase::new(status, Some(seconds), &names.join(", ")),
        );
    }

    /// Records the build and any phase: for a phase none of the `record_*` methods above
    /// covers. `build` and `check` are derived from `outcome` and cannot be set here.
    pub fn record_phase(
        &mut self,
        cell: &Cell<'_>,
        outcome: &CellBuild,
        key: PhaseKey,
        phase: Phase,
    ) {
        let entry = self.entry(cell, outcome);
        if !matches!(key, PhaseKey::Build | PhaseKey::Check) {
            entry.phases.insert(key, phase);
        }
    }

    /// Records the build and a `build --check` of it (phase `reproducible`).
    pub fn record_reproducibility(
        &mut self,
        cell: &Cell<'_>,
        outcome: &CellBuild,
        reproducibility: Reproducibility,
    ) {
        let entry = self.entry(cell, outcome);
        entry.phases.insert(PhaseKey::Reproducible, reproducibility.phase());
        entry.reproducibility = Some(reproducibility);
    }

    /// `cell`'s entry with its build and check recorded from `outcome`.
    fn entry(&mut self, cell: &Cell<'_>, outcome: &CellBuild) -> &mut CellResults {
        let id = cell.id();
        let index = match self.cells.iter().position(|c| c.cell == id) {
            Some(i) => i,
            None => {
                let at = self.cells.partition_point(|c| c.cell < id);
                self.cells.insert(
                    at,
                    CellResults {
                        cell: id.clone(),
                        version: cell.release.version.to_string(),
                        variant: cell.variant.name.clone(),
                        key: outcome.key.clone(),
                        source_sha256: cell.release.sha256.clone(),
                        build: outcome.build.clone(),
                        check: outcome.check.clone(),
                        suites: Vec::new(),
                        phases: BTreeMap::new(),
                        reproducibility: None,
                        extra: BTreeMap::new(),
                    },
                );
                at
            }
        };
        let entry = &mut self.cells[index];
        if entry.key != outcome.key {
            // Another build: what was recorded about the old one no longer holds.
            entry.suites.clear();
            entry.phases.clear();
            entry.reproducibility = None;
        }
        entry.key = outcome.key.clone();
        entry.source_sha256 = cell.release.sha256.clone();
        entry.build = outcome.build.clone();
        entry.check = outcome.check.clone();
        let build = match &outcome.build {
            BuildStatus::Cached => Phase::new(PhaseStatus::Cached, Some(0), ""),
            BuildStatus::Built { seconds } => Phase::new(PhaseStatus::Built, Some(*seconds), ""),
            BuildStatus::Failed { phase, message, .. } => {
                Phase::new(PhaseStatus::Failed, None, &format!("{phase}: {message}"))
            }
            BuildStatus::Cancelled => Phase::new(PhaseStatus::Cancelled, None, ""),
        };
        entry.phases.insert(PhaseKey::Build, build);
        let check = match &outcome.check {
            CheckStatus::Passed => Phase::new(PhaseStatus::Passed, None, ""),
            CheckStatus::Mismatch { diff } => Phase::new(PhaseStatus::Failed, None, diff),
            CheckStatus::Error { message } => Phase::new(PhaseStatus::Error, None, message),
            CheckStatus::NotRun => Phase::new(PhaseStatus::NotRun, None, ""),
        };
        entry.phases.insert(PhaseKey::Check, check);
        entry
    }
}

impl CellResults {
    /// The cell's state: the worst that its build, its check, every recorded phase
    /// (CPython's tests included) and its suites' findings put it in.
    pub fn status(&self) -> CellStatus {
        let mut worst = CellStatus::Ok;
        for f in self.failed_phases() {
            let status = match f.status {
                PhaseStatus::Cancelled => CellStatus::Cancelled,
                _ => CellStatus::of_failed(&f.phase),
            };
            worst = worst.min(status);
        }
        let findings = self.suites.iter().any(|s| !s.clean())
            || self.phases.get(&PhaseKey::ExtensionSuites).map(|p| p.status)
                == Some(PhaseStatus::Findings);
        if findings {
            worst = worst.min(CellStatus::Findings);
        }
        if worst == CellStatus::Ok && !self.tested() {
            return CellStatus::NotTested;
        }
        worst
    }

    /// Whether any test (regrtest or an extension suite) ran on the cell.
    fn tested(&self) -> bool {
        !self.suites.is_empty()
            || self.phases.iter().any(|(key, phase)| {
                matches!(key, PhaseKey::TestCpython { .. } | PhaseKey::ExtensionSuites)
                    && phase.status != PhaseStatus::NotRun
            })
    }

    /// Every failed phase, in pipeline order: the build and the check from their typed
    /// results (with log, tail and diff), every other phase from its recorded status.
    pub fn failed_phases(&self) -> Vec<PhaseFailure> {
        let build_repro = repro::build(&self.cell);
        let mut out = Vec::new();
        match &self.build {
            BuildStatus::Failed { phase, message, log, tail } => out.push(PhaseFailure {
                phase: PhaseKey::Build,
                status: PhaseStatus::Failed,
                summary: format!("{phase} failed: {message}"),
                detail: tail.clone(),
                log: Some(log.clone()),
                repro: build_repro.clone(),
            }),
            BuildStatus::Cancelled => out.push(PhaseFailure {
                phase: PhaseKey::Build,
                status: PhaseStatus::Cancelled,
                summary: "build cancelled".to_owned(),
                detail: String::new(),
                log: None,
                repro: build_repro.clone(),
            }),
            BuildStatus::Cached | BuildStatus::Built { .. } => {}
        }
        match &self.check {
            CheckStatus::Mismatch { diff } => out.push(PhaseFailure {
                phase: PhaseKey::Check,
                status: PhaseStatus::Failed,
                summary: format!("promise broken: {}", first_line(diff)),
                detail: diff.clone(),
                log: None,
                repro: build_repro.clone(),
            }),
            CheckStatus::Error { message } => out.push(PhaseFailure {
                phase: PhaseKey::Check,
                status: PhaseStatus::Error,
                summary: format!("check error: {}", first_line(message)),
                detail: message.clone(),
                log: None,
                repro: build_repro.clone(),
            }),
            CheckStatus::Passed | CheckStatus::NotRun => {}
        }
        for (key, phase) in &self.phases {
            if !phase.status.is_failure() || out.iter().any(|f| &f.phase == key) {
                continue;
            }
            let repro = match key {
                PhaseKey::Fetch | PhaseKey::Verify => repro::fetch(self.cell.version),
                PhaseKey::Build | PhaseKey::Check => build_repro.clone(),
                PhaseKey::Reproducible => repro::build_check(&self.cell),
                PhaseKey::TestCpython { profile } => repro::test_cpython(&self.cell, profile),
                PhaseKey::ExtensionSuites => repro::test(&self.cell),
            };
            let summary = match first_line(&phase.detail) {
                "" => format!("{key} {}", phase.status),
                line => format!("{key} {}: {line}", phase.status),
            };
            out.push(PhaseFailure {
                phase: key.clone(),
                status: phase.status,
                summary,
                detail: phase.detail.clone(),
                log: None,
                repro,
            });
        }
        out.sort_by(|a, b| a.phase.cmp(&b.phase));
        out
    }
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests;
