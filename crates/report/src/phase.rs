//! The phases of a cell and their states, as types: [`PhaseKey`] (which phase),
//! [`PhaseStatus`] (how it ended), [`Phase`] (both with time and detail), and [`CellStatus`],
//! the one word a cell is summed up by, derived from every phase.
//!
//! Keys and statuses serialize as the strings report.json has always held (`test-cpython-smoke`,
//! `not-run`, …), so documents written before these types existed still parse.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which phase of a cell: the stages of the pipeline in their order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PhaseKey {
    /// Getting the release's archive (`fetch`).
    Fetch,
    /// Checking its pin and signature (`verify`).
    Verify,
    /// configure, make, install (`build`).
    Build,
    /// The interpreter's promise check (`check`).
    Check,
    /// A rebuild installed the same files (`reproducible`, from `build --check`).
    Reproducible,
    /// CPython's own tests with a profile (`test-cpython-<profile>`).
    TestCpython {
        /// `smoke`, `full`, …
        profile: String,
    },
    /// The extension suites (`extension-suites`).
    ExtensionSuites,
}

impl PhaseKey {
    const TEST_CPYTHON: &'static str = "test-cpython-";
}

impl fmt::Display for PhaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhaseKey::Fetch => f.write_str("fetch"),
            PhaseKey::Verify => f.write_str("verify"),
            PhaseKey::Build => f.write_str("build"),
            PhaseKey::Check => f.write_str("check"),
            PhaseKey::Reproducible => f.write_str("reproducible"),
            PhaseKey::TestCpython { profile } => write!(f, "{}{profile}", PhaseKey::TEST_CPYTHON),
            PhaseKey::ExtensionSuites => f.write_str("extension-suites"),
        }
    }
}

impl JsonSchema for PhaseKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PhaseKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Which phase: `fetch`, `verify`, `build`, `check`, `reproducible`, \
                `test-cpython-<profile>`, `extension-suites`.",
            "type": "string",
            "pattern": "^(fetch|verify|build|check|reproducible|extension-suites|test-cpython-.+)$"
        })
    }
}

impl From<PhaseKey> for String {
    fn from(key: PhaseKey) -> String {
        key.to_string()
    }
}

impl TryFrom<String> for PhaseKey {
    type Error = String;

    fn try_from(s: String) -> Result<PhaseKey, String> {
        Ok(match s.as_str() {
            "fetch" => PhaseKey::Fetch,
            "verify" => PhaseKey::Verify,
            "build" => PhaseKey::Build,
            "check" => PhaseKey::Check,
            "reproducible" => PhaseKey::Reproducible,
            "extension-suites" => PhaseKey::ExtensionSuites,
            _ => match s.strip_prefix(PhaseKey::TEST_CPYTHON) {
                Some(profile) if !profile.is_empty() => {
                    PhaseKey::TestCpython { profile: profile.to_owned() }
                }
                _ => return Err(format!("unknown phase `{s}`")),
            },
        })
    }
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseStatus {
    /// Already there (an archive in the cache, a finished build).
    Cached,
    /// Downloaded or copied from a mirror.
    Fetched,
    /// Pin (and signature, if any) checked.
    Verified,
    /// Built in this run.
    Built,
    /// Checked or tested, and fine.
    Passed,
    /// Ran and failed (a build step, a broken promise, failing tests).
    Failed,
    /// Gave no verdict (could not run, timed out, left no results).
    Error,
    /// Not run (an earlier phase failed, or the run was interrupted before it).
    NotRun,
    /// Interrupted.
    Cancelled,
    /// Extension suites without unexpected findings.
    Clean,
    /// Extension suites with unexpected findings (each reported on its own).
    Findings,
}

impl PhaseStatus {
    /// Whether the phase failed: `failed`, `error` or `cancelled`. `findings` is not a
    /// failure of the phase (the suites ran; their findings are reported one by one), and
    /// `not-run` says only that the phase did not happen.
    pub fn is_failure(self) -> bool {
        matches!(self, PhaseStatus::Failed | PhaseStatus::Error | PhaseStatus::Cancelled)
    }

    /// The kebab-case word report.json holds.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Cached => "cached",
            PhaseStatus::Fetched => "fetched",
            PhaseStatus::Verified => "verified",
            PhaseStatus::Built => "built",
            PhaseStatus::Passed => "passed",
            PhaseStatus::Failed => "failed",
            PhaseStatus::Error => "error",
            PhaseStatus::NotRun => "not-run",
            PhaseStatus::Cancelled => "cancelled",
            PhaseStatus::Clean => "clean",
            PhaseStatus::Findings => "findings",
        }
    }
}

impl fmt::Display for PhaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of one phase of a cell, with its time where it took any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Phase {
    /// How it ended.
    pub status: PhaseStatus,
    /// Wall-clock seconds, if measured.
    pub seconds: Option<u64>,
    /// One line of detail (a source, a diff, the suites run, regrtest's summary).
    #[serde(default)]
    pub detail: String,
}

impl Phase {
    /// A phase.
    pub fn new(status: PhaseStatus, seconds: Option<u64>, detail: &str) -> Phase {
        Phase { status, seconds, detail: detail.to_owned() }
    }
}

/// The one-word state of a cell, worst first (the derived order compares them): the worst
/// state any of its phases or findings puts it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CellStatus {
    /// Its sources could not be fetched or verified.
    SourcesFailed,
    /// Its build failed.
    BuildFailed,
    /// A phase was interrupted.
    Cancelled,
    /// The interpreter does not keep its promise (or could not be checked).
    BrokenPromise,
    /// A rebuild installed different files (`build --check`).
    NotReproducible,
    /// CPython's own tests failed or gave no verdict.
    CpythonTestsFailed,
    /// The extension suites could not run.
    SuitesFailed,
    /// Extension suites with findings no `[[expected]]` entry accepts.
    Findings,
    /// Built and checked, but no test (regrtest or extension suite) ran on it: not a problem,
    /// but not shown as ok either.
    NotTested,
    /// Everything that ran passed.
    Ok,
}

impl CellStatus {
    /// Whether `report --check` fails on it: every state worse than [`CellStatus::NotTested`].
    pub fn is_problem(self) -> bool {
        self < CellStatus::NotTested
    }

    /// The state a failure of `key` puts a cell in.
    pub fn of_failed(key: &PhaseKey) -> CellStatus {
        match key {
            PhaseKey::Fetch | PhaseKey::Verify => CellStatus::SourcesFailed,
            PhaseKey::Build => CellStatus::BuildFailed,
            PhaseKey::Check => CellStatus::BrokenPromise,
            PhaseKey::Reproducible => CellStatus::NotReproducible,
            PhaseKey::TestCpython { .. } => CellStatus::CpythonTestsFailed,
            PhaseKey::ExtensionSuites => CellStatus::SuitesFailed,
        }
    }

    /// The kebab-case word (also the HTML grid's CSS class).
    pub fn as_str(self) -> &'static str {
        match self {
            CellStatus::SourcesFailed => "sources-failed",
            CellStatus::BuildFailed => "build-failed",
            CellStatus::Cancelled => "cancelled",
            CellStatus::BrokenPromise => "broken-promise",
            CellStatus::NotReproducible => "not-reproducible",
            CellStatus::CpythonTestsFailed => "cpython-tests-failed",
            CellStatus::SuitesFailed => "suites-failed",
            CellStatus::Findings => "findings",
            CellStatus::NotTested => "not-tested",
            CellStatus::Ok => "ok",
        }
    }
}

impl fmt::Display for CellStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
