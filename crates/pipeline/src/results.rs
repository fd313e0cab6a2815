//! The results document, `<work>/report/report.json`, written from the stages' types: every
//! command updates the cells it ran and keeps the others. The only writer of the document.
//! The stages' results become report.json's own types (the `report` crate's) in `convert`,
//! the one place that knows both.

mod convert;

use exttest::SuiteResult;
use report::{Document, Phase, PhaseStatus};

use crate::{Built, BuiltCell, PreparedSource, Session, Sources};

/// Reads the document, applies `update`, writes it back whole (atomically), holding the
/// document's lock: two commands at once never lose each other's cells.
pub fn update(session: &Session, update: impl FnOnce(&mut Document)) -> anyhow::Result<()> {
    let path = session.layout.report_json();
    let _lock = worklock::acquire(
        &session.layout.report_lock(),
        "the results document",
        session.cancel_flag(),
    )?;
    // A document that cannot be read is moved aside and the command stops: never replaced.
    let mut doc = Document::read(&path).map_err(report::ReadError::set_aside)?;
    update(&mut doc);
    process::write_json_atomically(&path, &doc)
}

/// `report`'s read-modify-write, under the same lock as [`update`]: a document that cannot be
/// read (or was written by a newer version) is left in place and the command stops; an error
/// from `update` (a broken `--merge` input, no cell) writes nothing. Returns what was written.
pub fn rewrite(
    session: &Session,
    update: impl FnOnce(&mut Document) -> anyhow::Result<()>,
) -> anyhow::Result<Document> {
    let path = session.layout.report_json();
    let _lock = worklock::acquire(
        &session.layout.report_lock(),
        "the results document",
        session.cancel_flag(),
    )?;
    let mut doc = Document::read(&path)?;
    update(&mut doc)?;
    process::write_json_atomically(&path, &doc)?;
    Ok(doc)
}

/// The `fetch` and `verify` phases of a release's preparation in this run.
fn source_phases(source: &PreparedSource) -> [Phase; 2] {
    let p = &source.prepared;
    let fetched = match &p.archive.origin {
        fetch::Origin::Cache => Phase::new(PhaseStatus::Cached, Some(source.seconds), ""),
        origin => Phase::new(PhaseStatus::Fetched, Some(source.seconds), &origin.to_string()),
    };
    let verified = match &p.signature {
        None => Phase::new(PhaseStatus::Verified, None, "sha256 pin checked when cached"),
        Some(status) => Phase::new(PhaseStatus::Verified, None, &status.summary()),
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
    match sources.of(&cell.cell) {
        Some(source) => {
            let [fetched, verified] = source_phases(source);
            doc.record_sources(&cell.cell, &convert::cell_build(&cell.outcome), fetched, verified)
        }
        None => doc.record_build(&cell.cell, &convert::cell_build(&cell.outcome)),
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
    doc.record_cpython_tests(
        &cell.cell,
        &convert::cell_build(&cell.outcome),
        &convert::cpython_run(run),
    );
}

/// Records the extension suites that ran on `cell`.
pub fn record_suites(
    doc: &mut Document,
    sources: &Sources,
    cell: &BuiltCell<'_>,
    suites: &[SuiteResult],
) {
    record_cell(doc, sources, cell);
    let suites = suites.iter().map(convert::suite).collect();
    doc.record_suites(&cell.cell, &convert::cell_build(&cell.outcome), suites);
}
