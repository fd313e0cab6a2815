//! Renderings of the results [`Document`]: Markdown (for `$GITHUB_STEP_SUMMARY`), JUnit XML
//! (one testsuite per cell, written by `quick-junit`), GitHub annotations, the console's
//! grid and new findings ([`console`]), and one
//! self-contained HTML page with the version × variant grid (a `minijinja` template,
//! `report.html`, with HTML auto-escaping). Every rendering shows every failed phase
//! ([`CellResults::failed_phases`]) and every unexpected finding. Pure: strings in, strings
//! out.

mod console;

use matrix::PyVersion;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

pub use self::console::console;
use crate::{
    CellResults, CellStatus, CheckStatus, Document, NotJudged, PhaseFailure, PhaseKey, PhaseStatus,
    document::first_line,
};

/// The findings no `[[expected]]` entry accepts.
fn findings_count(cell: &CellResults) -> usize {
    cell.suites.iter().map(|s| s.unexpected().count()).sum()
}

/// The grid's label of a cell: its status, with the number of findings.
fn label(cell: &CellResults) -> String {
    match cell.status() {
        CellStatus::Findings => format!("findings: {}", findings_count(cell)),
        s => s.to_string(),
    }
}

/// The order every rendering shows cells in: versions as versions (3.13.5 before 3.13.15),
/// and variants as `variants.toml` lists them (`Matrix::variant_order`); a variant it does
/// not list (a document merged from another matrix) comes after those, by name. The
/// document does not carry the order: the caller passes the matrix's.
#[derive(Debug, Clone, Default)]
pub struct Order {
    variants: Vec<String>,
}

impl Order {
    /// The order of `variants` (names, as `variants.toml` lists them).
    pub fn new(variants: Vec<String>) -> Order {
        Order { variants }
    }

    fn variant_rank<'v>(&self, variant: &'v str) -> (usize, &'v str) {
        let rank = self.variants.iter().position(|v| v == variant).unwrap_or(usize::MAX);
        (rank, variant)
    }

    fn cell_rank<'c>(&self, c: &'c CellResults) -> (PyVersion, (usize, &'c str)) {
        (c.cell.version, self.variant_rank(&c.cell.variant))
    }

    /// The document's cells in this order.
    pub fn cells<'d>(&self, doc: &'d Document) -> Vec<&'d CellResults> {
        let mut cells: Vec<&CellResults> = doc.cells.iter().collect();
        cells.sort_by(|a, b| self.cell_rank(a).cmp(&self.cell_rank(b)));
        cells
    }

    /// The grid's rows (versions) and columns (variants) in this order.
    fn versions_and_variants(&self, doc: &Document) -> (Vec<PyVersion>, Vec<String>) {
        let mut versions: Vec<PyVersion> = doc.cells.iter().map(|c| c.cell.version).collect();
        versions.sort();
        versions.dedup();
        let mut variants: Vec<&str> = doc.cells.iter().map(|c| c.cell.variant.as_str()).collect();
        variants.sort_by_key(|v| self.variant_rank(v));
        variants.dedup();
        (versions, variants.into_iter().map(str::to_owned).collect())
    }
}

fn cell<'d>(doc: &'d Document, version: PyVersion, variant: &str) -> Option<&'d CellResults> {
    doc.cells.iter().find(|c| c.cell.version == version && c.cell.variant == variant)
}

/// A failed phase on one line: what failed, its log, the command that runs it again.
fn failure_line(f: &PhaseFailure) -> String {
    match &f.log {
        Some(log) => format!("{} (log `{log}`; repro `{}`)", f.summary, f.repro),
        None => format!("{} (repro `{}`)", f.summary, f.repro),
    }
}

/// Markdown: the grid, then every failed phase and finding with its repro command.
pub fn markdown(doc: &Document, order: &Order) -> String {
    let (versions, variants) = order.versions_and_variants(doc);
    let mut out = String::from("# debug-matrix results\n\n");
    out.push_str(&format!("| version | {} |\n", variants.join(" | ")));
    out.push_str(&format!("|---|{}\n", "---|".repeat(variants.len())));
    for v in &versions {
        let row: Vec<String> = variants
            .iter()
            .map(|var| cell(doc, *v, var).map_or_else(|| " ".to_owned(), label))
            .collect();
        out.push_str(&format!("| {v} | {} |\n", row.join(" | ")));
    }
    for c in order.cells(doc) {
        let mut lines: Vec<String> = problems(c).into_iter().map(|p| format!("- {p}")).collect();
        for s in &c.suites {
            for f in s.findings.iter().filter(|f| f.expected.is_some()) {
                lines.push(format!(
                    "- expected {} in {} `{}` ({})",
                    f.kind,
                    s.suite,
                    f.test.as_deref().unwrap_or("-"),
                    f.expected.as_deref().unwrap_or("")
                ));
            }
            for f in s.findings.iter().filter(|f| f.expected.is_none() && f.kind.is_note()) {
                lines.push(format!(
                    "- note {} in {} `{}`: {}",
                    f.kind,
                    s.suite,
                    f.test.as_deref().unwrap_or("-"),
                    first_line(&f.message)
                ));
            }
            for n in &s.grew_not_judged {
                lines.push(format!("- grew, not judged in {} `{}`: {}", s.suite, n.test, n.reason));
            }
            if let Some(env) = &s.environment {
                lines.push(format!("- environment of {}: {}", s.suite, env.summary()));
            }
        }
        if !lines.is_empty() {
            out.push_str(&format!("\n## {}\n\n{}\n", c.cell, lines.join("\n")));
        }
    }
    out
}

/// Problems of a cell as one Markdown item each (with the repro command): its failed
/// phases, then its unexpected findings with their whole message.
fn problems(c: &CellResults) -> Vec<String> {
    let mut out: Vec<String> = c.failed_phases().iter().map(failure_line).collect();
    for s in &c.suites {
        for f in s.unexpected() {
            let mut line = format!(
                "**{}** in {} `{}`: {} — repro `{}`",
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

/// A failed phase's detail, or nothing if its summary already says it all.
fn more_than_the_summary(f: &PhaseFailure) -> &str {
    let detail = f.detail.trim_end();
    if f.summary.contains(detail) { "" } else { detail }
}

/// A failed phase's whole text: its line, then its detail unless the line already says it.
fn failure_text(f: &PhaseFailure) -> String {
    let mut text = failure_line(f);
    let more = more_than_the_summary(f);
    if !more.is_empty() {
        text.push('\n');
        text.push_str(more);
    }
    text
}

/// A failing JUnit status with a one-line message and the whole text.
fn failure(message: &str, text: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(first_line(message)).set_description(text);
    status
}

/// JUnit XML: one testsuite per cell; its build, its promise check, every other recorded
/// phase (CPython's tests, …; a failing case per failed phase, a skipped one per phase that
/// did not run), and one case per suite test with a finding (plus one passing case per clean
/// suite). `quick-junit` writes it, dropping characters XML cannot carry.
pub fn junit(doc: &Document, order: &Order) -> anyhow::Result<String> {
    let mut report = Report::new("debug-matrix");
    for c in order.cells(doc) {
        let failures = c.failed_phases();
        let failed = |key: &PhaseKey| failures.iter().find(|f| &f.phase == key);
        let not_run = |key: &PhaseKey| match key {
            PhaseKey::Check => matches!(c.check, CheckStatus::NotRun),
            _ => c.phases.get(key).map(|p| p.status) == Some(PhaseStatus::NotRun),
        };
        let phase_status = |key: &PhaseKey| match failed(key) {
            Some(f) => failure(&f.summary, &format!("{}\n", failure_text(f))),
            None if not_run(key) => TestCaseStatus::skipped(),
            None => TestCaseStatus::success(),
        };
        let mut cases = vec![
            TestCase::new("build", phase_status(&PhaseKey::Build)),
            TestCase::new("interpreter-check", phase_status(&PhaseKey::Check)),
        ];
        for key in c.phases.keys() {
            let shown_otherwise = match key {
                PhaseKey::Build | PhaseKey::Check => true,
                // The suites are cases of their own, unless the phase itself failed.
                PhaseKey::ExtensionSuites => failed(key).is_none(),
                _ => false,
            };
            if !shown_otherwise {
                cases.push(TestCase::new(key.to_string(), phase_status(key)));
            }
        }
        for s in &c.suites {
            if s.clean() {
                cases.push(TestCase::new(s.suite.as_str(), TestCaseStatus::success()));
            }
            for f in s.unexpected() {
                let name = format!("{}::{}", s.suite, f.test.as_deref().unwrap_or("-"));
                let kind = f.kind.to_string();
                let text = format!("{kind}: {}\nrepro: {}\n", f.message, f.repro);
                cases.push(TestCase::new(name, failure(&format!("{kind}: {}", f.message), &text)));
            }
        }
        let name = c.cell.to_string();
        let mut suite = TestSuite::new(name.as_str());
        for mut case in cases {
            case.set_classname(name.as_str());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

fn escape_annotation(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_annotation(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub workflow commands, one `::error …::` line per problem: each unexpected finding (a
/// finding in a test names the test file, relative to the suite's project, so GitHub places
/// it) and each failed phase, with its detail.
pub fn annotations(doc: &Document, order: &Order) -> String {
    let mut out = String::new();
    for c in order.cells(doc) {
        for s in &c.suites {
            for f in s.unexpected() {
                let file = f.test.as_deref().and_then(|t| t.split("::").next()).unwrap_or("");
                let title = format!("{} {}", c.cell, f.kind);
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
        for f in c.failed_phases() {
            let message = failure_text(&f);
            out.push_str(&format!(
                "::error title={}::{}\n",
                escape_property(&format!("{} {}", c.cell, f.phase)),
                escape_annotation(&message)
            ));
        }
    }
    out
}

/// The page's data; the template (`report.html`) escapes every string in it.
#[derive(Serialize)]
struct Page {
    variants: Vec<String>,
    rows: Vec<Row>,
    cells: Vec<CellView>,
}

#[derive(Serialize)]
struct Row {
    version: String,
    cells: Vec<Option<GridCell>>,
}

#[derive(Serialize)]
struct GridCell {
    /// The CSS class: the status word.
    status: String,
    anchor: String,
    label: String,
}

#[derive(Serialize)]
struct CellView {
    anchor: String,
    name: String,
    status: String,
    open: bool,
    key: String,
    source_sha256: String,
    failures: Vec<FailureView>,
    phases: Vec<PhaseView>,
    suites: Vec<SuiteView>,
}

#[derive(Serialize)]
struct FailureView {
    summary: String,
    log: Option<String>,
    repro: String,
    detail: String,
}

#[derive(Serialize)]
struct PhaseView {
    key: String,
    status: String,
    seconds: String,
    detail: String,
}

#[derive(Serialize)]
struct SuiteView {
    suite: String,
    passed: u64,
    failed: u64,
    skipped: u64,
    detectors: String,
    log: String,
    findings: Vec<FindingView>,
    grew_not_judged: Vec<NotJudged>,
    /// The environment's one-line summary, and its packages.
    environment: Option<String>,
    packages: Vec<String>,
}

#[derive(Serialize)]
struct FindingView {
    kind: String,
    test: String,
    expected: Option<String>,
    message: String,
    repro: String,
}

fn page(doc: &Document, order: &Order) -> Page {
    let (versions, variants) = order.versions_and_variants(doc);
    let rows = versions
        .iter()
        .map(|ver| Row {
            version: ver.to_string(),
            cells: variants
                .iter()
                .map(|var| {
                    cell(doc, *ver, var).map(|c| GridCell {
                        status: c.status().to_string(),
                        anchor: anchor(&c.cell),
                        label: match c.status() {
                            CellStatus::Findings => format!("{} findings", findings_count(c)),
                            s => s.to_string(),
                        },
                    })
                })
                .collect(),
        })
        .collect();
    let cells = order
        .cells(doc)
        .into_iter()
        .map(|c| CellView {
            anchor: anchor(&c.cell),
            name: c.cell.to_string(),
            status: c.status().to_string(),
            open: c.status().is_problem(),
            key: c.key.chars().take(16).collect(),
            source_sha256: c.source_sha256.clone(),
            failures: c
                .failed_phases()
                .into_iter()
                .map(|f| FailureView {
                    detail: more_than_the_summary(&f).to_owned(),
                    summary: f.summary,
                    log: f.log.map(|l| l.to_string()),
                    repro: f.repro,
                })
                .collect(),
            phases: c
                .phases
                .iter()
                .map(|(key, p)| PhaseView {
                    key: key.to_string(),
                    status: p.status.to_string(),
                    seconds: p.seconds.map(|s| s.to_string()).unwrap_or_default(),
                    detail: p.detail.clone(),
                })
                .collect(),
            suites: c
                .suites
                .iter()
                .map(|s| SuiteView {
                    suite: s.suite.clone(),
                    passed: s.counts.passed,
                    failed: s.counts.failed,
                    skipped: s.counts.skipped,
                    detectors: s.detectors.join(", "),
                    log: s.log.to_string(),
                    findings: s
                        .findings
                        .iter()
                        .map(|f| FindingView {
                            kind: f.kind.to_string(),
                            test: f.test.clone().unwrap_or_else(|| "-".to_owned()),
                            expected: f.expected.clone(),
                            message: f.message.clone(),
                            repro: f.repro.clone(),
                        })
                        .collect(),
                    grew_not_judged: s.grew_not_judged.clone(),
                    environment: s.environment.as_ref().map(crate::Environment::summary),
                    packages: s
                        .environment
                        .as_ref()
                        .map(crate::Environment::listing)
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    Page { variants, rows, cells }
}

/// One self-contained page: the version × variant grid coloured by status; each cell opens
/// its failed phases, its phases, its findings, logs and repro lines.
pub fn html(doc: &Document, order: &Order) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    // HTML auto-escaping by the template's name; minijinja's escaper, except that `/` stays
    // as it is (harmless in text and quoted attributes), so paths and repro lines in the
    // page's source read and search as they are.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(s)
            if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() =>
        {
            for (i, part) in s.split('/').enumerate() {
                if i > 0 {
                    out.write_str("/")?;
                }
                out.write_fmt(format_args!("{}", minijinja::HtmlEscape(part)))?;
            }
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env.add_template("report.html", include_str!("report.html"))?;
    let html =
        env.get_template("report.html")?.render(minijinja::value::Serde(page(doc, order)))?;
    Ok(format!("{html}\n"))
}

fn anchor(cell: &matrix::CellId) -> String {
    cell.to_string().replace(['+', '.'], "-")
}

#[cfg(test)]
pub mod tests;
