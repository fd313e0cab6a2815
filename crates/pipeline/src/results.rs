//! The results document, `<work>/report/report.json`, written from the stages' types: every
//! command updates the cells it ran and keeps the others. The only writer of the document.

use exttest::SuiteResult;
use report::{Document, Phase};

use crate::{Built, BuiltCell, PreparedSource, Session, Sources};

/// Reads the document, applies `update`, writes it back whole (atomically).
pub fn update(session: &Session, update: impl FnOnce(&mut Document)) -> anyhow::Result<()> {
    let path = session.layout.report_json();
    let mut doc = Document::read(&path)?;
    update(&mut doc);
    process::write_json_atomically(&path, &doc)
}

/// The `fetch` and `verify` phases of a release's preparation in this run.
fn source_phases(source: &PreparedSource) -> [Phase; 2] {
    let p = &source.prepared;
    let fetched = match &p.archive.origin {
        fetch::Origin::Cache => Phase::new("cached", Some(source.seconds), ""),
        origin => Phase::new("fetched", Some(source.seconds), &origin.to_string()),
    };
    let verified = match &p.signature {
        None => Phase::new("verified", None, "sha256 pin checked when cached"),
        Some(sources::SignatureStatus::Good(info)) => Phase::new(
            "verified",
            None,
            &format!("sha256 pin; good signature by {}", info.fingerprint),
        ),
        Some(_) => Phase::new("verified", None, "sha256 pin; no signature"),
    };
    [fetched, verified]
}

/// Records the sources, build and promise check of every cell of `built`.
pub fn record_built(doc: &mut Document, sources: &Sources, built: &Built<'_>) {
    for cell in &built.cells {
        record_cell(doc, sources, cell);
    }
}

fn record_cell(doc: &mut Document, sources: &Sources, cell: &BuiltCell<'_>) {
    let entry = doc.record_build(&cell.cell, &cell.outcome);
    if let Some(source) = sources.of(&cell.cell) {
        let [fetched, verified] = source_phases(source);
        entry.phases.insert("fetch".to_owned(), fetched);
        entry.phases.insert("verify".to_owned(), verified);
    }
}

/// Records a regrtest run of `cell`.
pub fn record_regrtest(
    doc: &mut Document,
    sources: &Sources,
    cell: &BuiltCell<'_>,
    run: &regrtest::TestRun,
) {
    record_cell(doc, sources, cell);
    let entry = doc.record_build(&cell.cell, &cell.outcome);
    let status = if run.ok() { "passed" } else { "failed" };
    let phase = Phase::new(status, Some(run.seconds), &run.line());
    entry.phases.insert(format!("test-cpython-{}", run.profile), phase);
}

/// Records the extension suites that ran on `cell`.
pub fn record_suites(
    doc: &mut Document,
    sources: &Sources,
    cell: &BuiltCell<'_>,
    suites: Vec<SuiteResult>,
) {
    record_cell(doc, sources, cell);
    doc.record_suites(&cell.cell, &cell.outcome, suites);
}
