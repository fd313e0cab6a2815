//! The results document, `<work>/report/report.json`, written from the stages' types: every
//! command updates the cells it ran and keeps the others. The only writer of the document
//! and of its renderings beside it (`report.md`, `junit.xml`, `report.html`), which every
//! write renders again under the same lock, so they always show what report.json holds;
//! [`show`] prints the HTML's path, the grid and the new findings at the end of a command.
//! The stages' results become report.json's own types (the `report` crate's) in `convert`,
//! the one place that knows both.

mod convert;

use std::io::IsTerminal as _;

use exttest::SuiteResult;
use report::{Document, Phase, PhaseStatus, render::Order};

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
    process::write_json_atomically(&path, &doc)?;
    session.recorded.store(true, std::sync::atomic::Ordering::Relaxed);
    render(session, &doc)
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
    render(session, &doc)?;
    Ok(doc)
}

/// The order of the renderings: the matrix's variants as `variants.toml` lists them.
pub fn order(session: &Session) -> Order {
    Order::new(session.matrix.variant_order())
}

/// Writes report.md, junit.xml and report.html from `doc` (called with the lock held).
fn render(session: &Session, doc: &Document) -> anyhow::Result<()> {
    let dir = session.layout.report_dir();
    let order = order(session);
    for (name, text) in [
        ("report.md", report::render::markdown(doc, &order)),
        ("junit.xml", report::render::junit(doc, &order)?),
        ("report.html", report::render::html(doc, &order)?),
    ] {
        process::write_atomically(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// The renderings [`update`] and [`rewrite`] write beside report.json.
pub fn rendered(session: &Session) -> [camino::Utf8PathBuf; 3] {
    let dir = session.layout.report_dir();
    ["report.md", "junit.xml", "report.html"].map(|name| dir.join(name))
}

/// What a command that recorded results prints last: the HTML's path, then the version ×
/// variant grid (coloured on a terminal that takes colour: not with `NO_COLOR` set, nor
/// `TERM=dumb`) and the new findings with their repro lines. Nothing if this run recorded
/// nothing (it failed before any stage ran).
pub fn show(session: &Session) -> anyhow::Result<()> {
    if !session.recorded.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    // Written atomically: read without the lock, it is one whole version.
    let doc = Document::read(&session.layout.report_json())?;
    print_summary(session, &doc);
    Ok(())
}

/// The HTML's path, the grid and the new findings of `doc`.
pub fn print_summary(session: &Session, doc: &Document) {
    let [_, _, html] = rendered(session);
    println!(
        "
report: {html}"
    );
    print!("{}", report::render::console(doc, &order(session), color()));
}

/// Whether stdout takes ANSI colours: a terminal, `NO_COLOR` unset or empty
/// (<https://no-color.org>), `TERM` not `dumb`.
fn color() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
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

/// Records each `build --check` that compared its trees (a check that could not run records
/// nothing: the build's earlier result stands).
pub fn record_reproducibility(
    doc: &mut Document,
    built: &Built<'_>,
    checks: &[builder::repro::ReproCheck],
) {
    for check in checks {
        let Some(reproducibility) = convert::reproducibility(&check.outcome) else { continue };
        for cell in built.cells.iter().filter(|c| check.cells.contains(&c.cell.name())) {
            doc.record_reproducibility(
                &cell.cell,
                &convert::cell_build(&cell.outcome),
                reproducibility.clone(),
            );
        }
    }
}
