//! Expected findings: `[[expected]]` in `matrix/extensions.toml` accepts a known finding (the
//! example extension's deliberate bugs, or a bug a user is fixing) on the cells it names.
//! Strict, like xfail: an expected finding marks its finding as expected (the suite stays
//! clean); one that no longer appears where its test ran is a finding of its own. Pure.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::finding::{Finding, FindingKind};

/// One `[[expected]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expected {
    /// The suite's name.
    pub suite: String,
    /// The test: a pytest node id, or its last part (`test_leak_new_ref`).
    pub test: String,
    /// The finding's kind.
    pub kind: FindingKind,
    /// Cells it is expected on: a cell (`3.13.5+debug`), a variant (`debug`), or a version
    /// prefix and a variant (`3.13+debug`); empty: every cell.
    #[serde(default)]
    pub cells: Vec<String>,
    /// Why it is accepted (shown beside the finding).
    pub reason: String,
}

impl Expected {
    /// Whether this entry applies to `suite` on the cell `version`+`variant`.
    pub fn applies(&self, suite: &str, version: &str, variant: &str) -> bool {
        self.suite == suite
            && (self.cells.is_empty()
                || self.cells.iter().any(|pattern| match pattern.split_once('+') {
                    Some((v, var)) => var == variant && version_matches(version, v),
                    None => pattern == variant,
                }))
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

    /// The variant names this entry's patterns mention.
    pub fn variants(&self) -> impl Iterator<Item = &str> {
        self.cells.iter().map(|p| p.split_once('+').map_or(p.as_str(), |(_, v)| v))
    }
}

fn version_matches(version: &str, prefix: &str) -> bool {
    version == prefix || version.starts_with(&format!("{prefix}."))
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
                     fixed, remove its [[expected]] entry from matrix/extensions.toml",
                    kind_name(entry.kind),
                    entry.reason
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
mod tests {
    use expect_test::expect;

    use super::*;

    fn entry(cells: &[&str]) -> Expected {
        Expected {
            suite: "refbugs".to_owned(),
            test: "test_leak".to_owned(),
            kind: FindingKind::RefLeak,
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
            reason: "on purpose".to_owned(),
        }
    }

    #[test]
    fn which_cells_and_tests() {
        let e = entry(&["debug", "3.13+trace-refs", "3.11.2+valgrind"]);
        assert!(e.applies("refbugs", "3.13.5", "debug"));
        assert!(e.applies("refbugs", "3.13.5", "trace-refs"));
        assert!(!e.applies("refbugs", "3.11.2", "trace-refs"));
        assert!(e.applies("refbugs", "3.11.2", "valgrind"));
        assert!(!e.applies("refbugs", "3.13.5", "valgrind"));
        assert!(!e.applies("other", "3.13.5", "debug"));
        assert!(!entry(&["3.1+debug"]).applies("refbugs", "3.13.5", "debug"));
        assert!(entry(&[]).applies("refbugs", "3.13.5", "asan"));
        assert!(e.names("tests/test_x.py::test_leak"));
        assert!(e.names("tests/test_x.py::test_leak[a-1]"));
        assert!(e.names("test_leak"));
        assert!(!e.names("tests/test_x.py::test_leak_not"));
        assert_eq!(e.variants().collect::<Vec<_>>(), ["debug", "trace-refs", "valgrind"]);
    }

    #[test]
    fn strict_like_xfail() {
        let e = entry(&[]);
        let leak = Finding::new(FindingKind::RefLeak, Some("t.py::test_leak".into()), "m".into());
        let other = Finding::new(FindingKind::Crash, Some("t.py::test_leak".into()), "c".into());
        let ran: BTreeSet<String> = ["t.py::test_leak".to_owned()].into();

        let mut found = vec![leak.clone(), other];
        apply(&mut found, &[&e], &ran);
        let summary: Vec<String> =
            found.iter().map(|f| format!("{:?} expected={:?}", f.kind, f.expected)).collect();
        expect![[r#"["RefLeak expected=Some(\"on purpose\")", "Crash expected=None"]"#]]
            .assert_eq(&format!("{summary:?}"));

        // The test ran and did not leak: the entry is stale.
        let mut found = Vec::new();
        apply(&mut found, &[&e], &ran);
        expect![[r#"[Finding { kind: ExpectedMissing, test: Some("test_leak"), message: "the expected ref-leak finding did not appear (expected because: on purpose); if it is fixed, remove its [[expected]] entry from matrix/extensions.toml", repro: "", expected: None, evidence: None }]"#]]
        .assert_eq(&format!("{found:?}"));

        // The test did not run (deselected with -k): nothing to say.
        let mut found = Vec::new();
        apply(&mut found, &[&e], &BTreeSet::new());
        assert!(found.is_empty());
    }
}
