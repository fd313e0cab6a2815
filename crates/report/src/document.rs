//! The results document, `<work>/report/report.json`: one entry per cell with its build,
//! its interpreter check and its extension suites' findings (each with the command that
//! reproduces it). Versioned by [`SCHEMA_VERSION`]; commands update the cells they ran and
//! keep the others, so the document describes the latest state of every cell.

use std::collections::BTreeMap;

use anyhow::Context as _;
use build::{BuildStatus, CellOutcome, CheckStatus};
use camino::Utf8Path;
use exttest::SuiteResult;
use matrix::Cell;
use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change of [`Document`].
pub const SCHEMA_VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// One entry per cell, sorted by name.
    pub cells: Vec<CellResults>,
}

/// Everything known about one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResults {
    /// `3.13.5+debug`.
    pub cell: String,
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
    /// Each phase's status and time, by phase name.
    #[serde(default)]
    pub phases: BTreeMap<String, Phase>,
}

impl Default for Document {
    fn default() -> Self {
        Document { schema_version: SCHEMA_VERSION, cells: Vec::new() }
    }
}

impl Document {
    /// Reads `path`; a missing file is an empty document, one of another schema is replaced.
    pub fn read(path: &Utf8Path) -> anyhow::Result<Document> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Document::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        };
        match serde_json::from_str::<Document>(&text) {
            Ok(doc) if doc.schema_version == SCHEMA_VERSION => Ok(doc),
            _ => Ok(Document::default()),
        }
    }

    /// Takes every cell of `other`, replacing this document's entry for the same cell: how the
    /// per-cell documents of a CI matrix become one.
    pub fn merge(&mut self, other: Document) {
        for cell in other.cells {
            self.cells.retain(|c| c.cell != cell.cell);
            self.cells.push(cell);
        }
        self.cells.sort_by(|a, b| a.cell.cmp(&b.cell));
    }

    /// Cells that are not `ok` (see [`crate::render::status`]), with their status.
    pub fn problems(&self) -> Vec<String> {
        self.cells
            .iter()
            .filter(|c| crate::render::status(c) != "ok")
            .map(|c| format!("{} ({})", c.cell, crate::render::status(c)))
            .collect()
    }

    /// Records `cell`'s build and interpreter check (phases `build` and `check`), creating
    /// its entry if needed and keeping its other phases and suites.
    pub fn record_build(&mut self, cell: &Cell<'_>, outcome: &CellOutcome) -> &mut CellResults {
        let name = cell.name();
        let index = match self.cells.iter().position(|c| c.cell == name) {
            Some(i) => i,
            None => {
                self.cells.push(CellResults {
                    cell: name.clone(),
                    version: cell.release.version.to_string(),
                    variant: cell.variant.name.clone(),
                    key: outcome.key.clone(),
                    source_sha256: cell.release.sha256.clone(),
                    build: outcome.build.clone(),
                    check: outcome.check.clone(),
                    suites: Vec::new(),
                    phases: BTreeMap::new(),
                });
                self.cells.sort_by(|a, b| a.cell.cmp(&b.cell));
                self.cells.iter().position(|c| c.cell == name).unwrap_or(0)
            }
        };
        let entry = &mut self.cells[index];
        if entry.key != outcome.key {
            // Another build: what was recorded about the old one no longer holds.
            entry.suites.clear();
            entry.phases.clear();
        }
        entry.key = outcome.key.clone();
        entry.build = outcome.build.clone();
        entry.check = outcome.check.clone();
        let (status, seconds) = match &outcome.build {
            BuildStatus::Cached => ("cached", Some(0)),
            BuildStatus::Built { seconds } => ("built", Some(*seconds)),
            BuildStatus::Failed { .. } => ("failed", None),
            BuildStatus::Cancelled => ("cancelled", None),
        };
        entry.phases.insert("build".to_owned(), Phase::new(status, seconds, ""));
        let check = match &outcome.check {
            CheckStatus::Passed => Phase::new("passed", None, ""),
            CheckStatus::Mismatch { diff } => Phase::new("failed", None, diff),
            CheckStatus::Error { message } => Phase::new("error", None, message),
            CheckStatus::NotRun => Phase::new("not-run", None, ""),
        };
        entry.phases.insert("check".to_owned(), check);
        entry
    }

    /// Records `cell`'s build and the extension suites that ran on it (phase
    /// `extension-suites`), replacing the suites recorded before.
    pub fn record_suites(
        &mut self,
        cell: &Cell<'_>,
        outcome: &CellOutcome,
        suites: Vec<SuiteResult>,
    ) {
        let entry = self.record_build(cell, outcome);
        let seconds = suites.iter().map(|s| s.seconds).sum();
        let status = if suites.iter().all(|s| s.clean()) { "clean" } else { "findings" };
        let names: Vec<&str> = suites.iter().map(|s| s.suite.as_str()).collect();
        entry.phases.insert(
            "extension-suites".to_owned(),
            Phase::new(status, Some(seconds), &names.join(", ")),
        );
        entry.suites = suites;
    }
}

/// The status of one phase of a cell (fetch, verify, build, check, test-cpython,
/// extension-suites), with its time where it took any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// `built`, `cached`, `passed`, `failed`, `clean`, `findings`, …
    pub status: String,
    /// Wall-clock seconds, if measured.
    pub seconds: Option<u64>,
    /// One line of detail (a source, a diff, the suites run).
    #[serde(default)]
    pub detail: String,
}

impl Phase {
    /// A phase.
    pub fn new(status: &str, seconds: Option<u64>, detail: &str) -> Phase {
        Phase { status: status.to_owned(), seconds, detail: detail.to_owned() }
    }
}
