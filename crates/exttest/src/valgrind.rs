//! valgrind memcheck's text output, read into the errors that touch an extension. Pure.
//!
//! memcheck writes to the same stderr as the test run, and our pytest plugin writes a line
//! `debug-matrix: start <test id>` there before each test, so every error block is attributed
//! to the test that was running. Errors are kept only if a frame of their stacks (where it
//! happened, where the block was freed or allocated) names one of the extension's compiled
//! modules or C source files: CPython's own noise is left out (its known false positives are
//! also suppressed by the cell's `Misc/valgrind-python.supp`).

use crate::finding::{Finding, FindingKind};

/// The marker our plugin writes before each test.
pub const TEST_MARKER: &str = "debug-matrix: start ";

const MEMORY_ERRORS: &[&str] = &[
    "Invalid read",
    "Invalid write",
    "Invalid free",
    "Mismatched free",
    "Use of uninitialised value",
    "Conditional jump or move depends on uninitialised value",
    "Syscall param",
    "Source and destination overlap",
];

/// The errors in `log` that touch the extension, whose files are recognised by any of
/// `needles` (compiled module file names, C source file names).
pub fn findings(log: &str, needles: &[String]) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut test: Option<String> = None;
    let mut block: Vec<String> = Vec::new();
    let mut block_test: Option<String> = None;
    let mut finish = |block: &mut Vec<String>, block_test: &Option<String>| {
        if let Some(finding) = classify(block, block_test, needles) {
            found.push(finding);
        }
        block.clear();
    };
    for line in log.lines() {
        if let Some(id) = line.strip_prefix(TEST_MARKER) {
            test = Some(id.trim().to_owned());
            continue;
        }
        let Some(content) = memcheck_content(line) else { continue };
        if content.trim().is_empty() {
            finish(&mut block, &block_test);
        } else {
            if block.is_empty() {
                block_test = test.clone();
            }
            block.push(content.to_owned());
        }
    }
    finish(&mut block, &block_test);
    found
}

/// `==123== text` → `text`.
fn memcheck_content(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("==")?;
    let end = rest.find("==")?;
    if end == 0 || !rest[..end].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let content = &rest[end + 2..];
    Some(content.strip_prefix(' ').unwrap_or(content))
}

fn classify(block: &[String], test: &Option<String>, needles: &[String]) -> Option<Finding> {
    let title = block.first()?;
    let kind = if MEMORY_ERRORS.iter().any(|e| title.starts_with(e)) {
        FindingKind::InvalidMemory
    } else if title.contains("are definitely lost") {
        FindingKind::MemoryLeak
    } else {
        return None;
    };
    let touches = block.iter().skip(1).any(|l| needles.iter().any(|n| l.contains(n.as_str())));
    if !touches {
        return None;
    }
    // Leaks are reported at exit, not during a test.
    let test = if kind == FindingKind::MemoryLeak { None } else { test.clone() };
    Some(Finding::new(kind, test, block.join("\n")))
}

#[cfg(test)]
mod tests;
