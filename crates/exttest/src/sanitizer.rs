//! ThreadSanitizer and UndefinedBehaviorSanitizer reports: splitting what a run's sanitizer
//! logs hold into reports, attributing them to tests, and keeping those whose stacks touch the
//! extension as findings. Pure.
//!
//! The sanitizers write to `log_path` files (`PREFIX.<pid>`), out of reach of pytest's fd
//! capture; the plugin reads what they gained after each test (`sanitizer` events). What a
//! halting sanitizer wrote after the plugin's last look is given to the test that was running
//! ([`leftovers`]).

use std::collections::BTreeMap;

use crate::events::Event;
use crate::{Finding, FindingKind};

/// One report and the test it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The test that was running; `None` outside tests.
    pub test: Option<String>,
    /// The report's text, whole.
    pub text: String,
}

/// The texts of the `sanitizer` events, with their tests.
pub fn from_events(events: &[Event]) -> Vec<(Option<String>, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sanitizer { test, report, .. } => Some((test.clone(), report.clone())),
            _ => None,
        })
        .collect()
}

/// What each log file holds past the last byte the plugin reported (`files`: path → whole
/// text), given to `unfinished` (the test that was running when the process ended).
pub fn leftovers(
    events: &[Event],
    files: &BTreeMap<String, String>,
    unfinished: Option<&str>,
) -> Vec<(Option<String>, String)> {
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        if let Event::Sanitizer { file, end, .. } = e {
            let v = seen.entry(file.as_str()).or_default();
            *v = (*v).max(*end);
        }
    }
    let mut out = Vec::new();
    for (path, text) in files {
        let from = seen.get(path.as_str()).copied().unwrap_or(0) as usize;
        if let Some(rest) = text.get(from.min(text.len())..)
            && !rest.trim().is_empty()
        {
            out.push((unfinished.map(str::to_owned), rest.to_owned()));
        }
    }
    out
}

/// Splits log text into reports: ThreadSanitizer's between its `==================` rules,
/// UBSan's from a `runtime error:` line through the stack that follows it.
pub fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("WARNING: ThreadSanitizer:") {
            let mut block = vec![line];
            i += 1;
            while i < lines.len() && !lines[i].starts_with("==================") {
                block.push(lines[i]);
                i += 1;
            }
            out.push(block.join("\n").trim_end().to_owned());
        } else if line.contains(": runtime error: ") {
            let mut block = vec![line];
            i += 1;
            while i < lines.len()
                && (lines[i].trim_start().starts_with('#') || lines[i].starts_with("SUMMARY:"))
            {
                block.push(lines[i]);
                i += 1;
            }
            out.push(block.join("\n"));
            continue;
        }
        i += 1;
    }
    out
}

/// The findings among `reports`: a ThreadSanitizer report ([`FindingKind::DataRace`] for a
/// data race, else [`FindingKind::Sanitizer`]) or an UBSan report
/// ([`FindingKind::UndefinedBehavior`]) whose text names one of `needles` (the extension's
/// module files, `_x.cpython-313t-x86_64-linux-gnu.so`, and C sources, `_x.c:`). The rest
/// touch only CPython or other libraries: returned as their number.
pub fn findings(reports: &[(Option<String>, String)], needles: &[String]) -> (Vec<Finding>, usize) {
    let mut found = Vec::new();
    let mut elsewhere = 0;
    for (test, text) in reports {
        for report in split(text) {
            if !needles.iter().any(|n| report.contains(n.as_str())) {
                elsewhere += 1;
                continue;
            }
            let kind = if report.starts_with("WARNING: ThreadSanitizer: data race") {
                FindingKind::DataRace
            } else if report.starts_with("WARNING: ThreadSanitizer:") {
                FindingKind::Sanitizer
            } else {
                FindingKind::UndefinedBehavior
            };
            found.push(Finding::new(kind, test.clone(), report));
        }
    }
    (found, elsewhere)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    const TSAN: &str = "==================
WARNING: ThreadSanitizer: data race (pid=4242)
  Read of size 8 at 0x7f0000001000 by thread T2:
    #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a1b)
    #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

  Previous write of size 8 at 0x7f0000001000 by thread T1:
    #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a2c)
    #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

SUMMARY: ThreadSanitizer: data race /w/src/src/refbugs/_refbugs.c:180 in racy_increment
==================
==================
WARNING: ThreadSanitizer: data race (pid=4242)
  Write of size 8 at 0x7f0000002000 by thread T3:
    #0 _PyObject_GC_Link Python/gc_free_threading.c:10 (python3.13t+0x1)

  Previous read of size 8 at 0x7f0000002000 by main thread:
    #0 gc_collect_main Python/gc_free_threading.c:20 (python3.13t+0x2)

SUMMARY: ThreadSanitizer: data race Python/gc_free_threading.c:10 in _PyObject_GC_Link
==================
";

    const UBSAN: &str = "/w/src/src/refbugs/_refbugs.c:201:14: runtime error: signed integer overflow: 9223372036854775807 + 1 cannot be represented in type 'long int'
    #0 0x7f12 in overflow_add /w/src/src/refbugs/_refbugs.c:201
    #1 0x5612 in cfunction_vectorcall_O Objects/methodobject.c:512
Objects/longobject.c:1:1: runtime error: shift exponent 64 is too large
";

    #[test]
    fn reports_touching_the_extension_are_findings() {
        let needles =
            vec!["_refbugs.cpython-313t-x86_64-linux-gnu.so".to_owned(), "_refbugs.c:".to_owned()];
        let reports = vec![
            (Some("tests/test_refbugs.py::test_racy_counter".to_owned()), TSAN.to_owned()),
            (Some("tests/test_refbugs.py::test_overflow".to_owned()), UBSAN.to_owned()),
        ];
        let (found, elsewhere) = findings(&reports, &needles);
        let mut out = format!("elsewhere: {elsewhere}\n");
        for f in found {
            out.push_str(&format!("{:?} in {:?}:\n{}\n", f.kind, f.test, f.message));
        }
        expect![[r#"
            elsewhere: 2
            DataRace in Some("tests/test_refbugs.py::test_racy_counter"):
            WARNING: ThreadSanitizer: data race (pid=4242)
              Read of size 8 at 0x7f0000001000 by thread T2:
                #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a1b)
                #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

              Previous write of size 8 at 0x7f0000001000 by thread T1:
                #0 racy_increment /w/src/src/refbugs/_refbugs.c:180 (_refbugs.cpython-313t-x86_64-linux-gnu.so+0x2a2c)
                #1 cfunction_vectorcall_O Objects/methodobject.c:512 (python3.13t+0x1c9f2e)

            SUMMARY: ThreadSanitizer: data race /w/src/src/refbugs/_refbugs.c:180 in racy_increment
            UndefinedBehavior in Some("tests/test_refbugs.py::test_overflow"):
            /w/src/src/refbugs/_refbugs.c:201:14: runtime error: signed integer overflow: 9223372036854775807 + 1 cannot be represented in type 'long int'
                #0 0x7f12 in overflow_add /w/src/src/refbugs/_refbugs.c:201
                #1 0x5612 in cfunction_vectorcall_O Objects/methodobject.c:512
        "#]].assert_eq(&out);
    }

    #[test]
    fn a_halting_sanitizer_leaves_its_report_to_the_running_test() {
        let events = crate::events::parse_events(
            r#"{"event":"sanitizer","test":"t.py::a","file":"/s/run-0.1","start":0,"end":5,"report":"early"}"#,
        );
        let files = BTreeMap::from([
            ("/s/run-0.1".to_owned(), "earlyLATE".to_owned()),
            ("/s/run-0.2".to_owned(), "child".to_owned()),
        ]);
        expect![[r#"[(Some("t.py::b"), "LATE"), (Some("t.py::b"), "child")]"#]]
            .assert_eq(&format!("{:?}", leftovers(&events, &files, Some("t.py::b"))));
    }
}
