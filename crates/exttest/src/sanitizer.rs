//! ThreadSanitizer and UndefinedBehaviorSanitizer reports: splitting what a run's sanitizer
//! logs hold into reports, attributing them to tests, and keeping those the extension made
//! (an access of its own, see [`made_by_extension`]) as findings. Pure.
//!
//! The sanitizers write to `log_path` files (`PREFIX.<pid>`), out of reach of pytest's fd
//! capture; the plugin reads what they gained after each test (`sanitizer` events). What a
//! halting sanitizer wrote after the plugin's last look is given to the test that was running
//! ([`leftovers`]).

use std::collections::BTreeMap;

use crate::events::Event;
use crate::finding::{Finding, FindingKind};

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
/// ([`FindingKind::UndefinedBehavior`]) made by the extension (see [`made_by_extension`];
/// `needles` are the extension's module files, `_x.cpython-313t-x86_64-linux-gnu.so`, and C
/// sources, `/_x.c:`). The rest are CPython's or other libraries', even when the extension
/// called the API inside which they happened: returned as their number.
pub fn findings(
    reports: &[(Option<String>, String)],
    needles: &[String],
) -> (Vec<Finding>, Outside) {
    let mut found = Vec::new();
    let mut outside = Outside::default();
    for (test, text) in reports {
        for report in split(text) {
            if !made_by_extension(&report, needles) {
                outside.reports += 1;
                if needles.iter().any(|n| names(&report, n)) {
                    outside.through_extension += 1;
                }
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
    (found, outside)
}

/// The reports that are not the extension's findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outside {
    /// How many.
    pub reports: usize,
    /// How many of them name the extension further out in a stack: CPython's code, called by
    /// the extension, raced or misbehaved (worth a look, not the extension's finding).
    pub through_extension: usize,
}

impl Outside {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Outside) {
        self.reports += other.reports;
        self.through_extension += other.through_extension;
    }

    /// A note for the suite's detectors, if there were any: how many, and where the logs are.
    pub fn note(&self, logs: &camino::Utf8Path) -> Option<String> {
        (self.reports > 0).then(|| {
            format!(
                "{} sanitizer report(s) outside the extension (CPython or other libraries; {} \
                 of them inside CPython code the extension called), in {logs}",
                self.reports, self.through_extension
            )
        })
    }
}

/// Whether the extension itself made what a report is about: the innermost frame of one of
/// its access stacks (a TSan `Read of size …`/`Previous write …`/`Mutex … acquired here`
/// block, not where a thread, mutex or heap block was created), skipping the sanitizer
/// runtime's and libc's interceptors (`memcpy` called by the extension is the extension's),
/// is in the extension's module (inlined `Py_INCREF` from CPython's headers included) or
/// sources; for UBSan, the report's location. A race inside CPython whose stacks only pass
/// through the extension further out (it called `PyUnicode_InternInPlace`, and CPython's
/// interning raced with itself) is not the extension's.
pub fn made_by_extension(report: &str, needles: &[String]) -> bool {
    let ours = |line: &str| needles.iter().any(|n| names(line, n));
    let is_frame = |l: &&str| l.trim_start().starts_with('#');
    let mut lines = report.lines();
    if let Some(first) = lines.next()
        && let Some((location, _)) = first.split_once(": runtime error: ")
    {
        return ours(location) || lines.next().filter(is_frame).is_some_and(ours);
    }
    let mut rest = report.lines().peekable();
    while let Some(line) = rest.next() {
        let header = line.trim();
        if header.starts_with('#') || !rest.peek().is_some_and(is_frame) {
            continue;
        }
        let access = !(header.contains("created") || header.contains("allocated by"));
        let mut stack = Vec::new();
        while let Some(frame) = rest.next_if(is_frame) {
            stack.push(frame);
        }
        let innermost = stack.into_iter().find(|f| !INTERCEPTORS.iter().any(|m| f.contains(m)));
        if access && innermost.is_some_and(ours) {
            return true;
        }
    }
    false
}

/// Modules whose frames are interceptors standing for the caller.
const INTERCEPTORS: &[&str] = &["(libtsan.so", "(libubsan.so", "(libc.so", "(libstdc++.so"];

/// Whether `text` names `needle`: a module file anywhere, or a source file `/x.c:` also as
/// a path relative to where it was compiled (`x.c:12:3` at the start, ` x.c:12` in a frame).
fn names(text: &str, needle: &str) -> bool {
    if text.contains(needle) {
        return true;
    }
    match needle.strip_prefix('/') {
        Some(file) => text.starts_with(file) || text.contains(&format!(" {file}")),
        None => false,
    }
}

#[cfg(test)]
mod tests;
