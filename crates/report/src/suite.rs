//! An extension suite's results on a cell, as report.json records them: [`SuiteResult`] with
//! its [`Counts`], its [`Finding`]s (each of a [`FindingKind`], with its repro line and, for
//! a `ref-leak`, its [`LeakEvidence`](crate::LeakEvidence)), the growth leak hunting did not
//! judge ([`NotJudged`]), `--leak-loop`'s deltas ([`LeakLoop`]) and what the tests ran with
//! ([`Environment`]: every [`Package`] in the venv and the build environment). These are report.json's
//! types; `exttest`'s are converted to them in one place (`pipeline::results`). Pure.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::evidence::LeakEvidence;

/// The outcome of one suite on one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteResult {
    /// The cell, `3.13.5+debug`.
    #[schemars(schema_with = "crate::schema::cell_id")]
    pub cell: matrix::CellId,
    /// The suite.
    pub suite: String,
    /// Test counts.
    pub counts: Counts,
    /// Problems found (and expected findings, and notes).
    pub findings: Vec<Finding>,
    /// The suite's compiled modules the test process loaded, with the file each was loaded
    /// from (a suite's own test command: the compiled modules it installed).
    pub modules: BTreeMap<String, String>,
    /// Which detectors ran, and notes such as `not exercised: NAME (FILE)`.
    pub detectors: Vec<String>,
    /// The test run's log.
    #[schemars(with = "String")]
    pub log: Utf8PathBuf,
    /// Wall-clock seconds for set-up, build and tests.
    pub seconds: u64,
    /// Free-threaded cells: whether the GIL was on while the tests ran; absent on others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil_enabled: Option<bool>,
    /// Tests that grew in every measured call but whose growth is the test's own state, each
    /// with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grew_not_judged: Vec<NotJudged>,
    /// `--leak-loop`: each judged test run alone N more times, its deltas per call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leak_loops: Vec<LeakLoop>,
    /// What the tests ran with: the venv's packages, pip, pytest, the build environment,
    /// the constraints files; absent where the set-up failed before it was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

/// What a suite's tests ran with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    /// The venv's pip (the one the cell's CPython release bundles).
    pub pip: String,
    /// The pytest the tests ran with; absent when none is installed.
    pub pytest: Option<String>,
    /// The suite's own distribution (never pinned by the constraints).
    pub project: String,
    /// The constraints files that pinned the installs (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub constraints: Vec<Utf8PathBuf>,
    /// Every distribution in the venv, by name.
    pub packages: Vec<Package>,
    /// What pip installed into the isolated build environment of the suite's project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build: Vec<Package>,
}

impl Environment {
    /// One line: `pip 25.1.1, pytest 9.2.0, 9 packages (1 built here), 1 in the build
    /// environment, pinned by matrix/constraints.txt`.
    pub fn summary(&self) -> String {
        let built = self.packages.iter().filter(|p| p.source.built_here()).count();
        let mut out = format!(
            "pip {}, pytest {}, {} packages ({built} built here)",
            self.pip,
            self.pytest.as_deref().unwrap_or("none"),
            self.packages.len()
        );
        if !self.build.is_empty() {
            out.push_str(&format!(", {} in the build environment", self.build.len()));
        }
        if !self.constraints.is_empty() {
            let files: Vec<&str> = self.constraints.iter().map(|c| c.as_str()).collect();
            out.push_str(&format!(", pinned by {}", files.join(" and ")));
        }
        out
    }

    /// `name==version (source)` for every package, then the build environment's.
    pub fn listing(&self) -> Vec<String> {
        let line = |p: &Package| format!("{}=={} ({})", p.name, p.version, p.source);
        let mut out: Vec<String> = self.packages.iter().map(line).collect();
        out.extend(self.build.iter().map(|p| format!("build: {}", line(p))));
        out
    }
}

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Package {
    /// Its name as its metadata spells it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it came from.
    pub source: PackageSource,
}

/// Where an installed distribution came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PackageSource {
    /// A wheel (from the index, a find-links directory or pip's cache).
    Wheel,
    /// Built here from an sdist (or a VCS checkout).
    Sdist,
    /// Built here from a local project directory.
    Local,
    /// Already in the venv when it was made (`ensurepip`).
    Venv,
}

impl PackageSource {
    /// Whether pip built it here.
    pub fn built_here(self) -> bool {
        matches!(self, PackageSource::Sdist | PackageSource::Local)
    }
}

impl std::fmt::Display for PackageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PackageSource::Wheel => "wheel",
            PackageSource::Sdist => "sdist",
            PackageSource::Local => "local",
            PackageSource::Venv => "venv",
        })
    }
}

impl SuiteResult {
    /// Whether nothing unexpected was found.
    pub fn clean(&self) -> bool {
        self.unexpected().next().is_none()
    }

    /// The findings that are problems: not accepted by an `[[expected]]` entry, not notes.
    pub fn unexpected(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.expected.is_none() && !f.kind.is_note())
    }
}

/// Counts of test outcomes, added up over a suite's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A test leak hunting saw growing and did not judge, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotJudged {
    /// Its node id.
    pub test: String,
    /// Why its growth is not a lost reference, with the evidence.
    pub reason: String,
}

/// A test run alone in a loop (`--leak-loop`): its deltas per call, calibrated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeakLoop {
    /// Its node id.
    pub test: String,
    /// Reference deltas per call.
    pub refs: Vec<i64>,
    /// Block deltas per call.
    pub blocks: Vec<i64>,
}

/// What kind of problem a finding is; report.json and `[[expected]]` entries spell it in
/// kebab case (`ref-leak`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A test's reference count or allocated blocks grow on every run.
    RefLeak,
    /// valgrind: an invalid read or write, use of freed or uninitialised memory.
    InvalidMemory,
    /// valgrind: memory definitely lost, allocated by the extension.
    MemoryLeak,
    /// `Fatal Python error: …` (debug hooks, refcount checks, assertions).
    FatalError,
    /// An AddressSanitizer report.
    Sanitizer,
    /// A ThreadSanitizer data race whose stacks touch the extension, with both stacks.
    DataRace,
    /// An UndefinedBehaviorSanitizer report at a line of the extension, with its stack.
    UndefinedBehavior,
    /// On a free-threaded interpreter, importing the extension turned the GIL back on.
    GilEnabled,
    /// A test that fails only when its copies run concurrently in several threads.
    ThreadSafety,
    /// The process died by a signal during a test.
    Crash,
    /// A test exceeded its timeout.
    Hang,
    /// A test failed.
    TestFailure,
    /// A test file could not be collected, with pytest's own text.
    CollectionError,
    /// The suite could not be set up: venv, build, or the compiled module is not loaded.
    Setup,
    /// An `[[expected]]` finding did not appear although its test ran.
    ExpectedMissing,
    /// A test failed in the leak-hunting run but passed when run again plainly. A note.
    OrderDependent,
}

impl FindingKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [FindingKind; 16] = [
        FindingKind::RefLeak,
        FindingKind::InvalidMemory,
        FindingKind::MemoryLeak,
        FindingKind::FatalError,
        FindingKind::Sanitizer,
        FindingKind::DataRace,
        FindingKind::UndefinedBehavior,
        FindingKind::GilEnabled,
        FindingKind::ThreadSafety,
        FindingKind::Crash,
        FindingKind::Hang,
        FindingKind::TestFailure,
        FindingKind::CollectionError,
        FindingKind::Setup,
        FindingKind::ExpectedMissing,
        FindingKind::OrderDependent,
    ];

    /// The kind's name as report.json spells it (`ref-leak`); every rendering shows it.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::RefLeak => "ref-leak",
            FindingKind::InvalidMemory => "invalid-memory",
            FindingKind::MemoryLeak => "memory-leak",
            FindingKind::FatalError => "fatal-error",
            FindingKind::Sanitizer => "sanitizer",
            FindingKind::DataRace => "data-race",
            FindingKind::UndefinedBehavior => "undefined-behavior",
            FindingKind::GilEnabled => "gil-enabled",
            FindingKind::ThreadSafety => "thread-safety",
            FindingKind::Crash => "crash",
            FindingKind::Hang => "hang",
            FindingKind::TestFailure => "test-failure",
            FindingKind::CollectionError => "collection-error",
            FindingKind::Setup => "setup",
            FindingKind::ExpectedMissing => "expected-missing",
            FindingKind::OrderDependent => "order-dependent",
        }
    }

    /// Whether this kind is only a note: shown, recorded, but not a problem of the cell.
    pub fn is_note(self) -> bool {
        matches!(self, FindingKind::OrderDependent)
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem found on a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The test it belongs to (pytest node id), if known.
    pub test: Option<String>,
    /// What happened, with the evidence (deltas, stack, message).
    pub message: String,
    /// The command that reproduces it.
    #[serde(default)]
    pub repro: String,
    /// Why the finding is expected (an `[[expected]]` entry's reason); an expected finding
    /// does not make its suite unclean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// A `ref-leak` finding's evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<LeakEvidence>>,
}

impl Finding {
    /// A finding, not expected, without evidence or repro line.
    pub fn new(kind: FindingKind, test: Option<String>, message: String) -> Finding {
        Finding { kind, test, message, repro: String::new(), expected: None, evidence: None }
    }
}

#[cfg(test)]
mod tests;
