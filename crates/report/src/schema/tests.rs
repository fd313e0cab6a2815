//! Unit tests of `schema.rs`.

use camino::Utf8Path;

use super::report_schema;

/// A validator of the published schema.
pub(crate) fn validator() -> jsonschema::Validator {
    let text = include_str!("../../report.schema.json");
    let schema: serde_json::Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a JSON Schema")
}

/// The errors of `doc` against the published schema, one a line.
pub(crate) fn schema_errors(doc: &serde_json::Value) -> String {
    validator().iter_errors(doc).map(|e| format!("{}: {e}\n", e.instance_path())).collect()
}

#[test]
fn the_published_schema_is_what_the_types_generate() {
    expect_test::expect_file!["../../report.schema.json"].assert_eq(&report_schema());
}

#[test]
fn a_real_document_is_valid() {
    // report.json of a real end-to-end run (the CI cells, the example extension, the
    // corpus: findings with evidence, expected ones, notes, failed phases).
    let path = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e-report.json");
    let text = std::fs::read_to_string(&path).expect("the fixture is there");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(schema_errors(&doc), "", "{path}");
    // And the types read it whole: nothing in it is unknown to them. It was written when
    // cells sorted as strings; read, they are in version order.
    let read = crate::Document::read(&path).expect("the document reads");
    let names: Vec<String> = read.cells.iter().map(|c| c.cell.to_string()).collect();
    assert_eq!(names[..3], ["3.11.2+debug", "3.13.5+broken", "3.13.5+debug"]);
    assert_eq!(names.last().map(String::as_str), Some("3.13.15+ubsan"));
    let mut sorted = doc.clone();
    if let Some(cells) = sorted["cells"].as_array_mut() {
        cells.sort_by_key(|c| c["cell"].as_str().and_then(|s| s.parse::<matrix::CellId>().ok()));
    }
    assert_eq!(serde_json::to_value(&read).expect("serializable"), sorted);
}

#[test]
fn the_documents_the_tests_write_are_valid() {
    let doc = serde_json::to_value(crate::render::tests::document()).expect("serializable");
    assert_eq!(schema_errors(&doc), "");
}

#[test]
fn the_schema_refuses_what_is_not_a_document() {
    let path = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e-report.json");
    let text = std::fs::read_to_string(&path).expect("the fixture is there");
    let good: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let broken = |pointer: &str, value: serde_json::Value| {
        let mut doc = good.clone();
        *doc.pointer_mut(pointer).expect("the fixture has it") = value;
        schema_errors(&doc)
    };
    let kind = broken("/cells/4/suites/0/findings/0/kind", "leak".into());
    assert!(kind.starts_with("/cells/4/suites/0/findings/0/kind: "), "{kind}");
    let build = broken("/cells/0/build", serde_json::json!({"status": "done"}));
    assert!(build.starts_with("/cells/0/build: "), "{build}");
    let phase = broken("/cells/0/phases", serde_json::json!({"lint": {"status": "passed"}}));
    assert_ne!(phase, "");
    let cell = broken("/cells/0", serde_json::json!({"cell": "3.13.5+debug"}));
    assert_ne!(cell, "");
}
