//! What a command that recorded results prints last: the version × variant grid of the
//! document (each cell's status, coloured like report.html's grid when the caller says the
//! terminal takes colour), then every new finding (not accepted by an `[[expected]]` entry)
//! and every failed phase, each with its repro line: what the step summary shows, for a
//! terminal. Pure: the caller decides about colour (a terminal, `NO_COLOR`).

use super::{Order, cell, label};
use crate::{CellStatus, Document, document::first_line};

/// The grid, then the new findings and failed phases; `color` adds ANSI colours to the grid.
pub fn console(doc: &Document, order: &Order, color: bool) -> String {
    let (versions, variants) = order.versions_and_variants(doc);
    let mut rows: Vec<Vec<(String, Option<CellStatus>)>> = Vec::new();
    let mut header = vec![("version".to_owned(), None)];
    header.extend(variants.iter().map(|v| (v.clone(), None)));
    rows.push(header);
    for version in &versions {
        let mut row = vec![(version.to_string(), None)];
        for variant in &variants {
            row.push(match cell(doc, *version, variant) {
                Some(c) => (label(c), Some(c.status())),
                None => ("-".to_owned(), None),
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].0.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (text, status)) in row.iter().enumerate() {
            let padded = format!("{text:width$}", width = widths[i]);
            match status.filter(|_| color) {
                Some(s) => line.push_str(&format!("\x1b[{}m{padded}\x1b[0m", ansi(s))),
                None => line.push_str(&padded),
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let mut problems = Vec::new();
    for c in order.cells(doc) {
        for f in c.failed_phases() {
            problems.push(format!("{} {}: {}\n    repro: {}", c.cell, f.phase, f.summary, f.repro));
        }
        for s in &c.suites {
            for f in s.unexpected() {
                problems.push(format!(
                    "{} {} {} {}: {}\n    repro: {}",
                    c.cell,
                    s.suite,
                    f.kind,
                    f.test.as_deref().unwrap_or("-"),
                    first_line(&f.message),
                    f.repro
                ));
            }
        }
    }
    if problems.is_empty() {
        out.push_str("\nno new findings, no failed phase\n");
    } else {
        out.push_str(&format!("\nnew findings and failed phases ({}):\n", problems.len()));
        for p in problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

/// The ANSI colour of a status, as report.html colours its grid: green, yellow, red, grey.
fn ansi(status: CellStatus) -> &'static str {
    match status {
        CellStatus::Ok => "32",
        CellStatus::Findings => "33",
        CellStatus::NotTested => "2",
        CellStatus::SourcesFailed
        | CellStatus::BuildFailed
        | CellStatus::Cancelled
        | CellStatus::BrokenPromise
        | CellStatus::NotReproducible
        | CellStatus::CpythonTestsFailed
        | CellStatus::SuitesFailed => "31",
    }
}
