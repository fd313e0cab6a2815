//! The protocol file against [`Event`]: every example of every kind the plugin writes parses
//! into the variant of that kind (and its required fields alone suffice), and every variant
//! has examples. The plugin's own tests check its real events against the same file.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::events::Event;

const SCHEMA: &str = include_str!("../../../python/events.schema.json");
const SCHEMA_PATH: &str = "crates/exttest/python/events.schema.json";

/// Kinds the plugin writes that nothing in this crate reads.
const NOT_READ: &[&str] = &["baseline"];

/// The kind (`event` value) of a parsed event. Exhaustive: a new variant does not compile
/// until it is named here.
fn kind(event: &Event) -> &'static str {
    match event {
        Event::Session {} => "session",
        Event::Finish {} => "finish",
        Event::CollectError { .. } => "collect_error",
        Event::Module { .. } => "module",
        Event::Signals { .. } => "signals",
        Event::Start { .. } => "start",
        Event::End { .. } => "end",
        Event::Leak { .. } => "leak",
        Event::Loop { .. } => "loop",
        Event::Gil { .. } => "gil",
        Event::Sanitizer { .. } => "sanitizer",
    }
}

/// The kinds `Event` accepts, as serde names them when it refuses an unknown one.
fn variants() -> BTreeSet<String> {
    let err = serde_json::from_str::<Event>(r#"{"event":"no such kind"}"#)
        .expect_err("an unknown kind must not parse");
    let text = err.to_string();
    let (_, expected) = text
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("serde's unknown-variant message changed: {text}"));
    expected
        .split(", ")
        .map(|s| s.trim_matches(|c: char| c == '`' || c.is_whitespace()))
        .map(|s| s.split('`').next().unwrap_or(s).to_owned())
        .collect()
}

/// `(kind, definition)` for every event kind the schema lists in its top-level `oneOf`.
fn kinds(schema: &Value) -> Vec<(String, &Map<String, Value>)> {
    let defs = schema["$defs"].as_object().expect("$defs");
    schema["oneOf"]
        .as_array()
        .expect("a top-level oneOf of the event kinds")
        .iter()
        .map(|r| {
            let name = r["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .expect("oneOf holds $refs to #/$defs/<kind>");
            let def = defs[name].as_object().expect("the kind's definition");
            assert_eq!(
                def["properties"]["event"]["const"], name,
                "{SCHEMA_PATH}: $defs/{name} must have `event: {{const: {name}}}`"
            );
            (name.to_owned(), def)
        })
        .collect()
}

#[test]
fn every_example_in_the_protocol_file_parses_into_its_event_variant() {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the protocol file is JSON");
    let mut parsed_kinds = BTreeSet::new();
    for (name, def) in kinds(&schema) {
        let examples = def["examples"].as_array().expect("each kind has examples");
        assert!(!examples.is_empty(), "{SCHEMA_PATH}: $defs/{name} has no example");
        // Together the examples use every field the kind may have.
        let properties: BTreeSet<&String> =
            def["properties"].as_object().expect("properties").keys().collect();
        let used: BTreeSet<&String> =
            examples.iter().flat_map(|e| e.as_object().expect("an object").keys()).collect();
        assert_eq!(used, properties, "{SCHEMA_PATH}: the examples of {name} vs its fields");
        let required: Vec<&str> = def["required"]
            .as_array()
            .expect("required")
            .iter()
            .map(|r| r.as_str().expect("a field name"))
            .collect();
        for example in examples {
            // The whole example, and the required fields alone (Rust must not need what
            // the protocol says may be missing).
            let minimal: Map<String, Value> = example
                .as_object()
                .expect("an object")
                .iter()
                .filter(|(k, _)| required.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for value in [example.clone(), Value::Object(minimal)] {
                let result = serde_json::from_value::<Event>(value.clone());
                if NOT_READ.contains(&name.as_str()) {
                    assert!(
                        result.is_err(),
                        "{name} is in NOT_READ but parses into an Event: take it out"
                    );
                    continue;
                }
                let event = result.unwrap_or_else(|err| {
                    panic!("{SCHEMA_PATH}: example {value} does not parse into Event: {err}")
                });
                assert_eq!(kind(&event), name, "{value}");
                parsed_kinds.insert(name.clone());
            }
        }
    }
    let variants = variants();
    let expected: BTreeSet<String> = parsed_kinds.iter().cloned().collect();
    assert_eq!(
        variants, expected,
        "every Event variant needs a kind, with examples, in {SCHEMA_PATH}"
    );
}
