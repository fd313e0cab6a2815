//! regrtest's JUnit XML (`--junit-xml`) to per-module test case results.
//!
//! The file is `<testsuites>` holding one `<testsuite>` per test module run, each holding
//! `<testcase name="test.test_int.IntTestCases.test_basic">` elements with an optional
//! `<failure>`, `<error>`, `<skipped>`, `<output>` (an expected failure) or `<outcome>`
//! (`UNEXPECTED_SUCCESS`) child. What it does not hold, and why [`crate::summary`] exists:
//!
//! - modules that produced no result: a worker that crashed (`SIGABRT` from a failed C
//!   assertion, the very thing a debug build is for), timed out, or a module skipped at import;
//! - failing `subTest`s: regrtest's result class does not record them, so the test case
//!   silently lacks its element;
//! - which module a suite belongs to: only the case names tell.
//!
//! A module re-run after failing (`-w`) appears again, with only the re-run cases; which
//! modules were re-run only the summary says, so [`Cases::module`] is told.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The test case counts of one module (see [`Cases::module`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleCases {
    /// Passed (including expected failures).
    pub passed: u32,
    /// Failed or errored in their last run (including unexpected successes).
    pub failed: u32,
    /// Skipped.
    pub skipped: u32,
    /// The cases failing in their last run.
    pub failing: Vec<String>,
    /// The cases that failed and then passed on a re-run.
    pub flaky: Vec<String>,
}

/// Why the XML could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not regrtest JUnit XML: {0}")]
pub struct JunitError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// Every test case result in a JUnit XML document, by module, in document order.
#[derive(Debug, Clone, Default)]
pub struct Cases {
    by_module: BTreeMap<String, Vec<(String, Outcome)>>,
}

impl Cases {
    /// The modules that have cases.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.by_module.keys().map(String::as_str)
    }

    /// The cases of `module`. When regrtest re-ran it (`rerun`), a case's last result
    /// replaces its earlier ones, and a case that failed and then passed is flaky; otherwise
    /// every result counts (a module's doctests may run twice, against its C and its Python
    /// implementation).
    pub fn module(&self, module: &str, rerun: bool) -> ModuleCases {
        let mut m = ModuleCases::default();
        let Some(cases) = self.by_module.get(module) else { return m };
        for (i, (name, outcome)) in cases.iter().enumerate() {
            // A re-run module's case with a later result: the later one counts.
            let later = cases[i + 1..].iter().rev().find(|(n, _)| n == name).filter(|_| rerun);
            if let Some((_, last)) = later {
                if *outcome == Outcome::Failed
                    && *last == Outcome::Passed
                    && !m.flaky.contains(name)
                {
                    m.flaky.push(name.clone());
                }
                continue;
            }
            match outcome {
                Outcome::Passed => m.passed += 1,
                Outcome::Failed => {
                    m.failed += 1;
                    m.failing.push(name.clone());
                }
                Outcome::Skipped => m.skipped += 1,
            }
        }
        m.flaky.sort();
        m.failing.sort();
        m
    }
}

/// Reads a regrtest JUnit XML document.
pub fn parse(xml: &str) -> Result<Cases, JunitError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| JunitError(e.to_string()))?;
    let root = doc.root_element();
    let suites: Vec<_> = match root.tag_name().name() {
        "testsuites" => root.children().filter(|n| n.has_tag_name("testsuite")).collect(),
        "testsuite" => vec![root],
        other => {
            return Err(JunitError(format!("the root element is <{other}>, not <testsuites>")));
        }
    };
    let mut cases = Cases::default();
    for suite in suites {
        let named: Vec<(&str, roxmltree::Node<'_, '_>)> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .filter_map(|n| Some((n.attribute("name")?, n)))
            .collect();
        // Cases whose names do not say (doctests of the module under test, `json.encoder…`;
        // a package's failed submodule import, `unittest.loader._FailedTest.…`) go to the
        // suite's module.
        let suite_module = named.iter().find_map(|(name, _)| module_of(name)).map(str::to_owned);
        for (name, case) in named {
            let Some(module) = module_of(name).map(str::to_owned).or_else(|| suite_module.clone())
            else {
                continue;
            };
            cases.by_module.entry(module).or_default().push((name.to_owned(), outcome_of(case)));
        }
    }
    Ok(cases)
}

fn outcome_of(case: roxmltree::Node<'_, '_>) -> Outcome {
    let mut outcome = Outcome::Passed;
    for child in case.children().filter(roxmltree::Node::is_element) {
        match child.tag_name().name() {
            "failure" | "error" => return Outcome::Failed,
            "outcome" if child.text().is_some_and(|t| t.trim() == "UNEXPECTED_SUCCESS") => {
                return Outcome::Failed;
            }
            "skipped" => outcome = Outcome::Skipped,
            _ => {}
        }
    }
    outcome
}

/// The regrtest module a case id belongs to: `test.test_int.IntTestCases.test_basic` and
/// `test_int.IntTestCases.test_basic` (`--testdir`) are `test_int`;
/// `test.test_asyncio.test_tasks.…` is `test_asyncio`; `setUpClass (test.test_x.Foo)` is
/// `test_x`. `None` when the id names no test module.
pub fn module_of(case: &str) -> Option<&str> {
    // Class and module fixtures: `setUpClass (test.test_x.Foo)`, `setUpModule (test.test_x)`.
    let id = match (case.find(" ("), case.strip_suffix(')')) {
        (Some(open), Some(inner)) => &inner[open + 2..],
        _ => case,
    };
    let id = id.strip_prefix("test.").unwrap_or(id);
    let first = id.split('.').next()?;
    first.starts_with("test").then_some(first)
}
