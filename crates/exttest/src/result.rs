//! [`SuiteResult`]: the outcome of one suite on one cell, what report.json stores for it.

use std::collections::{BTreeMap, BTreeSet};

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::{environment::Environment, finding::Finding};

/// A test leak hunting saw growing and did not judge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotJudged {
    /// Its node id.
    pub test: String,
    /// Why its growth is not a lost reference, with the evidence.
    pub reason: String,
}

/// A test run alone in a loop (`--leak-loop`): its deltas per call, calibrated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakLoop {
    /// Its node id.
    pub test: String,
    /// Reference deltas per call.
    pub refs: Vec<i64>,
    /// Block deltas per call.
    pub blocks: Vec<i64>,
}

/// The outcome of one suite on one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResult {
    /// The cell.
    pub cell: matrix::CellId,
    /// The suite.
    pub suite: String,
    /// Test counts.
    pub counts: Counts,
    /// Problems found.
    pub findings: Vec<Finding>,
    /// The suite's compiled modules the test process loaded (the plugin's `module` events),
    /// with the file each was loaded from; those installed but never imported are named in
    /// `detectors` (`not exercised: NAME (FILE)`). A suite's own test command reports no
    /// events: there, the compiled modules it installed.
    pub modules: BTreeMap<String, String>,
    /// Which detectors ran ([`crate::detect::Detectors::names`]).
    pub detectors: Vec<String>,
    /// The test run's log.
    pub log: Utf8PathBuf,
    /// Wall-clock seconds for set-up, build and tests.
    pub seconds: u64,
    /// Free-threaded cells: whether the GIL was on while the tests ran (`sys._is_gil_enabled()`
    /// read by the plugin); `None` on other cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil_enabled: Option<bool>,
    /// Tests that grew in every measured call but whose growth is the test's own state, not
    /// a lost reference: state it keeps reachable, a cache that stops growing, a structure
    /// whose growth flattens, the same growth on the pure-Python twin. Each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grew_not_judged: Vec<NotJudged>,
    /// `--leak-loop`: each judged test run alone N more times, its deltas per call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leak_loops: Vec<LeakLoop>,
    /// What the tests ran with: the venv's packages (name, version, wheel or built here),
    /// pip's and pytest's versions, the build environment, the constraints files. `None`
    /// where the set-up failed before it was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// The node ids of the tests that ran (for [`crate::expect::apply`]; not recorded).
    #[serde(skip)]
    pub ran: BTreeSet<String>,
}

impl SuiteResult {
    /// A result with nothing found yet: the suite's detectors, its log, no tests.
    pub fn new(
        cell: matrix::CellId,
        suite: String,
        detectors: Vec<String>,
        log: Utf8PathBuf,
    ) -> Self {
        SuiteResult {
            cell,
            suite,
            counts: Counts::default(),
            findings: Vec::new(),
            modules: BTreeMap::new(),
            detectors,
            log,
            seconds: 0,
            gil_enabled: None,
            grew_not_judged: Vec::new(),
            leak_loops: Vec::new(),
            environment: None,
            ran: BTreeSet::new(),
        }
    }

    /// Whether nothing unexpected was found.
    pub fn clean(&self) -> bool {
        self.unexpected().next().is_none()
    }

    /// The findings that are problems: not accepted by an `[[expected]]` entry, not notes.
    pub fn unexpected(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.expected.is_none() && !f.kind.is_note())
    }
}

/// Counts of test outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Passed tests.
    pub passed: u64,
    /// Failed tests.
    pub failed: u64,
    /// Skipped tests (xfailed ones included).
    pub skipped: u64,
    /// Tests leak hunting judged (leak hunting cells only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leak_judged: u64,
    /// Tests leak hunting ran but did not judge: skipped, xfailed, failed, or not re-runnable.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leak_not_judged: u64,
    /// Of those, the tests that passed once but could not be re-run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_rerunnable: u64,
}

impl Counts {
    /// Adds another run's counts (a restart after a crash goes on with other tests).
    pub fn add(&mut self, other: &Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.leak_judged += other.leak_judged;
        self.leak_not_judged += other.leak_not_judged;
        self.not_rerunnable += other.not_rerunnable;
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
