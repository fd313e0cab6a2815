//! A cell's build as report.json records it: [`CellBuild`] (the build's key, how the build
//! ended, [`BuildStatus`], and whether the interpreter keeps its promise, [`CheckStatus`]),
//! and [`CpythonRun`], one run of CPython's own tests. These are report.json's types; the
//! stages' own results are converted to them in one place (`pipeline::results`).

use camino::Utf8PathBuf;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::phase::PhaseStatus;

/// What a command knows of a cell's build when it records anything about the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellBuild {
    /// The build's cache key.
    pub key: String,
    /// How the build ended.
    pub build: BuildStatus,
    /// The interpreter check.
    pub check: CheckStatus,
}

/// The step of a build that failed, as report.json spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStep {
    /// `./configure` (and what prepares it).
    Configure,
    /// `make`.
    Make,
    /// `make install` (and recording the installed interpreter).
    Install,
}

impl std::fmt::Display for BuildStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BuildStep::Configure => "configure",
            BuildStep::Make => "make",
            BuildStep::Install => "install",
        })
    }
}

/// How a cell's build ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum BuildStatus {
    /// A complete build with the same key already existed.
    Cached,
    /// Built in this run.
    Built {
        /// Wall-clock seconds for configure + make + install.
        seconds: u64,
    },
    /// A step failed.
    Failed {
        /// The step that failed: `configure`, `make` or `install`.
        phase: BuildStep,
        /// Why.
        message: String,
        /// The step's log.
        #[schemars(with = "String")]
        log: Utf8PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// The run was interrupted; nothing was marked complete.
    Cancelled,
}

/// Whether a cell's interpreter keeps its promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Every promised fact holds.
    Passed,
    /// Some do not: the rendered diff.
    Mismatch {
        /// One line per broken promise.
        diff: String,
    },
    /// The interpreter could not be probed.
    Error {
        /// Why.
        message: String,
    },
    /// Not checked because the build did not complete.
    NotRun,
}

/// One run of CPython's tests on a cell, as its phase `test-cpython-<profile>` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpythonRun {
    /// The profile (`smoke`, `full`, …).
    pub profile: String,
    /// `passed` (regrtest's verdict is a pass), `failed`, `error` (no verdict) or `not-run`.
    pub status: PhaseStatus,
    /// Wall-clock seconds.
    pub seconds: u64,
    /// One line: regrtest's summary.
    pub line: String,
}
