//! The JSON Schema of report.json, generated from the document's types with `schemars`.
//! The repository publishes it as `crates/report/report.schema.json` (for users and CI that
//! parse report.json); a test keeps that file equal to what the types generate
//! (`UPDATE_EXPECT=1 cargo test -p report` rewrites it), and the document tests validate
//! the documents they write, and a real one from an end-to-end run, against it.

use crate::Document;

/// The schema as pretty-printed JSON, as the published file holds it.
pub fn report_schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Document>();
    let mut text =
        serde_json::to_string_pretty(&schema).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// A cell's name, `3.13.5+debug` ([`matrix::CellId`]).
pub(crate) fn cell_id(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A cell: VERSION+VARIANT, `3.13.5+debug`.",
        "type": "string",
        "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+\\+[a-z0-9-]+$"
    })
}

#[cfg(test)]
mod tests;
