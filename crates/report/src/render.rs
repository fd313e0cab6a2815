//! Renderings of the results [`Document`]: Markdown (for `$GITHUB_STEP_SUMMARY`), JUnit XML
//! (one testsuite per cell), GitHub annotations, and one self-contained HTML page with the
//! version × variant grid. Pure: strings in, strings out.

use std::collections::BTreeSet;

use build::{BuildStatus, CheckStatus};

use crate::{CellResults, Document};

/// The one-word state of a cell, worst first.
pub fn status(cell: &CellResults) -> &'static str {
    match (&cell.build, &cell.check) {
        (BuildStatus::Failed { .. }, _) => "build-failed",
        (BuildStatus::Cancelled, _) => "cancelled",
        (_, CheckStatus::Mismatch { .. } | CheckStatus::Error { .. }) => "broken-promise",
        _ if cell.suites.iter().any(|s| !s.clean()) => "findings",
        _ => "ok",
    }
}

/// The findings no `[[expected]]` entry accepts.
fn findings_count(cell: &CellResults) -> usize {
    cell.suites.iter().map(|s| s.unexpected().count()).sum()
}

fn versions_and_variants(doc: &Document) -> (Vec<String>, Vec<String>) {
    let mut versions: Vec<String> = Vec::new();
    let mut variants: Vec<String> = Vec::new();
    for c in &doc.cells {
        if !versions.contains(&c.version) {
            versions.push(c.version.clone());
        }
        if !variants.contains(&c.variant) {
            variants.push(c.variant.clone());
        }
    }
    (versions, variants)
}

fn cell<'d>(doc: &'d Document, version: &str, variant: &str) -> Option<&'d CellResults> {
    doc.cells.iter().find(|c| c.version == version && c.variant == variant)
}

/// Markdown: the grid, then every finding with its repro command.
pub fn markdown(doc: &Document) -> String {
    let (versions, variants) = versions_and_variants(doc);
    let mut out = String::from("# debug-matrix results\n\n");
    out.push_str(&format!("| version | {} |\n", variants.join(" | ")));
    out.push_str(&format!("|---|{}\n", "---|".repeat(variants.len())));
    for v in &versions {
        let row: Vec<String> = variants
            .iter()
            .map(|var| match cell(doc, v, var) {
                None => " ".to_owned(),
                Some(c) => match status(c) {
                    "findings" => format!("findings: {}", findings_count(c)),
                    s => s.to_owned(),
                },
            })
            .collect();
        out.push_str(&format!("| {v} | {} |\n", row.join(" | ")));
    }
    for c in &doc.cells {
        let mut lines: Vec<String> = problems(c).into_iter().map(|p| format!("- {p}")).collect();
        for s in &c.suites {
            for f in s.findings.iter().filter(|f| f.expected.is_some()) {
                lines.push(format!(
                    "- expected {:?} in {} `{}` ({})",
                    f.kind,
                    s.suite,
                    f.test.as_deref().unwrap_or("-"),
                    f.expected.as_deref().unwrap_or("")
                ));
            }
            for f in s.findings.iter().filter(|f| f.expected.is_none() && f.kind.is_note()) {
                lines.push(format!(
                    "- note {:?} in {} `{}`: {}",
                    f.kind,
                    s.suite,
                    f.test.as_deref().unwrap_or("-"),
                    first_line(&f.message)
                ));
            }
        }
        if !lines.is_empty() {
            out.push_str(&format!("\n## {}\n\n{}\n", c.cell, lines.join("\n")));
        }
    }
    out
}

/// Problems of a cell as one line each (with the repro command).
fn problems(c: &CellResults) -> Vec<String> {
    let mut out = Vec::new();
    if let BuildStatus::Failed { phase, message, log, .. } = &c.build {
        out.push(format!(
            "{phase} failed: {message} (log `{log}`; repro `cargo xtask build {}`)",
            c.cell
        ));
    }
    match &c.check {
        CheckStatus::Mismatch { diff } => out.push(format!(
            "promise broken: {} (repro `cargo xtask build {}`)",
            first_line(diff),
            c.cell
        )),
        CheckStatus::Error { message } => out.push(format!("check error: {}", first_line(message))),
        _ => {}
    }
    for s in &c.suites {
        for f in s.unexpected() {
            let mut line = format!(
                "**{:?}** in {} `{}`: {} — repro `{}`",
                f.kind,
                s.suite,
                f.test.as_deref().unwrap_or("-"),
                first_line(&f.message),
                f.repro
            );
            if f.message.lines().nth(1).is_some() {
                // The whole message, as pytest, valgrind or faulthandler wrote it.
                let fence = if f.message.contains("```") { "~~~~" } else { "```" };
                line.push_str(&format!("\n\n  {fence}\n"));
                for l in f.message.lines() {
                    line.push_str(&format!("  {l}\n"));
                }
                line.push_str(&format!("  {fence}"));
            }
            out.push(line);
        }
    }
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JUnit XML: one testsuite per cell; its build, its promise check, and one case per suite
/// test with a finding (plus one passing case per clean suite).
pub fn junit(doc: &Document) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"debug-matrix\">\n",
    );
    for c in &doc.cells {
        let mut cases: Vec<(String, Option<String>)> = Vec::new();
        let build_failure = match &c.build {
            BuildStatus::Failed { phase, message, .. } => Some(format!("{phase}: {message}")),
            BuildStatus::Cancelled => Some("cancelled".to_owned()),
            _ => None,
        };
        cases.push(("build".to_owned(), build_failure));
        let check_failure = match &c.check {
            CheckStatus::Mismatch { diff } => Some(diff.clone()),
            CheckStatus::Error { message } => Some(message.clone()),
            _ => None,
        };
        cases.push(("interpreter-check".to_owned(), check_failure));
        for s in &c.suites {
            if s.clean() {
                cases.push((s.suite.clone(), None));
            }
            for f in s.unexpected() {
                let name = format!("{}::{}", s.suite, f.test.as_deref().unwrap_or("-"));
                cases
                    .push((name, Some(format!("{:?}: {}\nrepro: {}", f.kind, f.message, f.repro))));
            }
        }
        let failures = cases.iter().filter(|(_, f)| f.is_some()).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
            xml(&c.cell),
            cases.len()
        ));
        for (name, failure) in cases {
            match failure {
                None => out.push_str(&format!("    <testcase classname=\"{}\" name=\"{}\"/>\n", xml(&c.cell), xml(&name))),
                Some(text) => out.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml(&c.cell),
                    xml(&name),
                    xml(first_line(&text)),
                    xml(&text)
                )),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn escape_annotation(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_annotation(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub workflow commands, one `::error …::` line per problem; a finding in a test names
/// the test file (relative to the suite's project) so GitHub places it.
pub fn annotations(doc: &Document) -> String {
    let mut out = String::new();
    for c in &doc.cells {
        for s in &c.suites {
            for f in s.unexpected() {
                let file = f.test.as_deref().and_then(|t| t.split("::").next()).unwrap_or("");
                let title = format!("{} {:?}", c.cell, f.kind);
                let message = format!(
                    "{}: {}\nrepro: {}",
                    f.test.as_deref().unwrap_or("-"),
                    f.message,
                    f.repro
                );
                let file = if file.is_empty() {
                    String::new()
                } else {
                    format!("file={},", escape_property(file))
                };
                out.push_str(&format!(
                    "::error {file}title={}::{}\n",
                    escape_property(&title),
                    escape_annotation(&message)
                ));
            }
        }
        if matches!(c.build, BuildStatus::Failed { .. })
            || matches!(c.check, CheckStatus::Mismatch { .. } | CheckStatus::Error { .. })
        {
            let p = problems(c).into_iter().next().unwrap_or_default();
            out.push_str(&format!(
                "::error title={}::{}\n",
                escape_property(&c.cell),
                escape_annotation(&p)
            ));
        }
    }
    out
}

/// One self-contained page: the version × variant grid coloured by status; each cell opens
/// its findings, logs and repro lines.
pub fn html(doc: &Document) -> String {
    let (versions, variants) = versions_and_variants(doc);
    let h = |s: &str| xml(s);
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>debug-matrix results</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em;color:#222}\n\
         table{border-collapse:collapse}td,th{border:1px solid #999;padding:.6em 1em;text-align:center}\n\
         td.ok{background:#c8f0c8}td.findings{background:#ffe08a}td.build-failed,td.broken-promise,td.cancelled{background:#f4a6a6}\n\
         td.none{background:#eee}details{margin:.5em 0}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}\n\
         </style></head><body>\n<h1>debug-matrix results</h1>\n<table id=\"grid\">\n<tr><th>version</th>",
    );
    for v in &variants {
        out.push_str(&format!("<th>{}</th>", h(v)));
    }
    out.push_str("</tr>\n");
    for ver in &versions {
        out.push_str(&format!("<tr><th>{}</th>", h(ver)));
        for var in &variants {
            match cell(doc, ver, var) {
                None => out.push_str("<td class=\"none\">–</td>"),
                Some(c) => {
                    let st = status(c);
                    let label = if st == "findings" {
                        format!("{} findings", findings_count(c))
                    } else {
                        st.to_owned()
                    };
                    out.push_str(&format!(
                        "<td class=\"{st}\"><a href=\"#{}\">{}</a></td>",
                        h(&anchor(&c.cell)),
                        h(&label)
                    ));
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    for c in &doc.cells {
        out.push_str(&format!(
            "<details id=\"{}\"{}><summary>{} — {}</summary>\n<p>build key <code>{}</code>, source sha256 <code>{}</code></p>\n",
            h(&anchor(&c.cell)),
            if status(c) == "ok" { "" } else { " open" },
            h(&c.cell),
            status(c),
            h(&c.key[..c.key.len().min(16)]),
            h(&c.source_sha256)
        ));
        if let BuildStatus::Failed { phase, message, log, tail } = &c.build {
            out.push_str(&format!(
                "<p>{} failed: {} — log <code>{}</code></p><pre>{}</pre>\n",
                h(phase),
                h(message),
                h(log.as_str()),
                h(tail)
            ));
        }
        if let CheckStatus::Mismatch { diff } = &c.check {
            out.push_str(&format!("<p>promise broken</p><pre>{}</pre>\n", h(diff)));
        }
        for s in &c.suites {
            out.push_str(&format!(
                "<h3>{}: {} passed, {} failed, {} skipped ({})</h3>\n<p>log <code>{}</code></p>\n",
                h(&s.suite),
                s.counts.passed,
                s.counts.failed,
                s.counts.skipped,
                h(&s.detectors.join(", ")),
                h(s.log.as_str())
            ));
            for f in &s.findings {
                let (open, expected) = match &f.expected {
                    Some(reason) => ("", format!(" — expected: {}", h(reason))),
                    None => (" open", String::new()),
                };
                out.push_str(&format!(
                    "<details{open}><summary>{:?} in <code>{}</code>{expected}</summary><pre>{}</pre><p>repro: <code>{}</code></p></details>\n",
                    f.kind,
                    h(f.test.as_deref().unwrap_or("-")),
                    h(&f.message),
                    h(&f.repro)
                ));
            }
        }
        out.push_str("</details>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn anchor(cell: &str) -> String {
    cell.replace(['+', '.'], "-")
}

/// The distinct finding kinds in the document, for summaries.
pub fn kinds(doc: &Document) -> BTreeSet<String> {
    doc.cells
        .iter()
        .flat_map(|c| c.suites.iter())
        .flat_map(|s| s.findings.iter())
        .map(|f| format!("{:?}", f.kind))
        .collect()
}
