//! What a suite run found: [`Finding`] and its [`FindingKind`], as report.json stores them and
//! `[[expected]]` entries name them. Pure.

use serde::{Deserialize, Serialize};

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// On a free-threaded interpreter, importing the extension turned the GIL back on (a
    /// module without `Py_mod_gil`): the tests after it ran with the GIL, not free-threaded.
    GilEnabled,
    /// A test that passes when run alone but fails when its copies run concurrently in
    /// several threads (pytest-run-parallel, free-threaded cells).
    ThreadSafety,
    /// The process died by a signal during a test.
    Crash,
    /// A test exceeded its timeout.
    Hang,
    /// A test failed.
    TestFailure,
    /// A test file could not be collected (an import error, a syntax error), with pytest's
    /// own text.
    CollectionError,
    /// The suite could not be set up: venv, build, or the compiled module is not loaded.
    Setup,
    /// An `[[expected]]` finding did not appear although its test ran (strict, like xfail).
    ExpectedMissing,
    /// A test failed in the leak-hunting run but passed when run again plainly: it depends on
    /// what earlier (repeated) tests left. A note: it does not make the suite unclean.
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

    /// The kind's name as report.json and `[[expected]]` entries spell it (`ref-leak`); every
    /// rendering shows this name.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The test it belongs to (pytest node id), if known.
    pub test: Option<String>,
    /// What happened, with the evidence (deltas, stack, message).
    pub message: String,
    /// The command that reproduces it (filled in by the caller, who knows how the suite was
    /// named on the command line).
    #[serde(default)]
    pub repro: String,
    /// Why the finding is expected (an `[[expected]]` entry's reason); an expected finding
    /// does not make its suite unclean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// A `ref-leak` finding's evidence: what grew, whether it stays linear, the pure-Python
    /// twin's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<crate::evidence::LeakEvidence>>,
}

impl Finding {
    /// A finding.
    pub fn new(kind: FindingKind, test: Option<String>, message: String) -> Finding {
        Finding { kind, test, message, repro: String::new(), expected: None, evidence: None }
    }
}

#[cfg(test)]
mod tests;
