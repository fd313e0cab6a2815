//! Expected findings: `[[expected]]` in `matrix/extensions.toml`, or
//! `[[tool.debug-matrix.expected]]` in a project ([`crate::config`]), accepts a known finding
//! (the example extension's deliberate bugs, or a bug a user is fixing) on the cells it names.
//! Strict, like xfail: an expected finding marks its finding as expected (the suite stays
//! clean); one that no longer appears where its test ran is a finding of its own. Pure.

use std::collections::BTreeSet;

use matrix::{Cell, Matrix, Pattern};
use serde::{Deserialize, Deserializer};

use crate::finding::{Finding, FindingKind};

/// One `[[expected]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expected {
    /// The suite's name: written in `matrix/extensions.toml`; a project's own entries leave it
    /// out and get the project's name.
    #[serde(default)]
    pub suite: String,
    /// The test: a pytest node id, or its last part (`test_leak_new_ref`).
    pub test: String,
    /// The finding's kind.
    pub kind: FindingKind,
    /// Cells it is expected on, in [`Pattern`]'s one grammar: a cell (`3.13.5+debug`), a
    /// variant (`debug`), a version prefix and a variant (`3.13+debug`), or a version prefix
    /// (`3.13`); empty: every cell.
    #[serde(default, deserialize_with = "patterns")]
    pub cells: Vec<Pattern>,
    /// Why it is accepted (shown beside the finding).
    pub reason: String,
    /// The file that declared it (named by its `expected-missing` finding).
    #[serde(skip)]
    pub origin: String,
}

/// `cells = ["3.13+debug", …]`, each parsed where it is written (an error points at it).
pub(crate) fn patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Pattern>, D::Error> {
    struct Text(Pattern);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
            let text = String::deserialize(d)?;
            text.parse().map(Text).map_err(serde::de::Error::custom)
        }
    }
    Ok(Vec::<Text>::deserialize(d)?.into_iter().map(|t| t.0).collect())
}

impl Expected {
    /// Whether this entry applies to `suite` on `cell`.
    pub fn applies(&self, suite: &str, cell: &Cell<'_>) -> bool {
        self.suite == suite
            && (self.cells.is_empty() || self.cells.iter().any(|p| p.matches_cell(cell)))
    }

    /// Checks that every version and variant its cells name is in `matrix`.
    pub fn check(&self, matrix: &Matrix) -> Result<(), String> {
        for pattern in &self.cells {
            matrix.check_pattern(pattern).map_err(|e| {
                format!(
                    "{}: [[expected]] for suite `{}`, test `{}`: cells = \"{pattern}\": {e}",
                    self.origin, self.suite, self.test
                )
            })?;
        }
        Ok(())
    }

    /// Whether `test` (a node id) is this entry's test.
    pub fn names(&self, test: &str) -> bool {
        test == self.test
            || test.ends_with(&format!("::{}", self.test))
            || test.rsplit("::").next().is_some_and(|last| {
                // A parametrized test matches its base name.
                last.split_once('[').is_some_and(|(base, _)| base == self.test)
            })
    }
}

/// Marks the findings `expected` accepts (by suite, cell, test and kind; sets
/// [`Finding::expected`]) and adds an [`FindingKind::ExpectedMissing`] finding for each
/// entry whose test ran (`ran`: node ids) without its finding.
pub fn apply(findings: &mut Vec<Finding>, expected: &[&Expected], ran: &BTreeSet<String>) {
    let mut missing = Vec::new();
    for entry in expected {
        let mut seen = false;
        for f in findings.iter_mut() {
            if f.kind == entry.kind && f.test.as_deref().is_some_and(|t| entry.names(t)) {
                f.expected = Some(entry.reason.clone());
                seen = true;
            }
        }
        if !seen && ran.iter().any(|t| entry.names(t)) {
            missing.push(Finding::new(
                FindingKind::ExpectedMissing,
                Some(entry.test.clone()),
                format!(
                    "the expected {} finding did not appear (expected because: {}); if it is \
                     fixed, remove its [[expected]] entry from {}",
                    kind_name(entry.kind),
                    entry.reason,
                    entry.origin
                ),
            ));
        }
    }
    findings.extend(missing);
}

/// The kebab-case name of a kind, as written in TOML and report.json.
pub fn kind_name(kind: FindingKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

#[cfg(test)]
mod tests;
