//! The evidence of a `ref-leak` finding: what grew, whether it stays linear, and what the
//! pure-Python twin did. The plugin's `judge.py` measures it (the `evidence` definition of
//! `python/events.schema.json`); [`run`](crate) adds the twin's result. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the plugin found for a test whose every measured run grew, and what the tool added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeakEvidence {
    /// Calls between the retained check's snapshots (and under tracemalloc).
    #[serde(default)]
    pub calls: u32,
    /// New tracked objects per call, by type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub new_objects: BTreeMap<String, f64>,
    /// Containers reachable from modules that grew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<GrownContainer>,
    /// New objects and entries with a reference nothing explains.
    #[serde(default)]
    pub orphans: u64,
    /// New entries of the grown containers that gc cannot see into, per call by type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub invisible_entries: BTreeMap<String, f64>,
    /// Pre-existing objects whose reference count grew the same in every call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refcounts: Vec<GrownRefcount>,
    /// Why the retained check could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained_check: Option<String>,
    /// The longer run: batches and the shape of each signal's growth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// Why persistence was not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_note: Option<String>,
    /// Where the blocks that stayed were allocated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<Allocation>,
    /// Why allocations could not be traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations_error: Option<String>,
    /// Time the judgement took.
    #[serde(default)]
    pub seconds: f64,
    /// The same test with the project's pure-Python implementation (added by the tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin: Option<TwinResult>,
    /// Persistence and allocations were left for a run of the leaks alone (the twin first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

/// A module-level container that grew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrownContainer {
    /// `module.attribute` or `module.Class.attribute`.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Entries per call.
    pub per_call: f64,
}

/// An object whose reference count grew per call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrownRefcount {
    /// `type pkg.Cls`, `function pkg.f`, `pkg.NAME (dict)`.
    pub object: String,
    /// References gained per call.
    pub per_call: f64,
    /// Of those, references no new object or entry holds.
    pub unexplained: f64,
}

/// The shape of a signal's growth over the longer run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// The same growth per call on every batch: a lost reference.
    Linear,
    /// Growth stopped: a bounded cache.
    Stops,
    /// Growth per call fell: an amortised structure.
    Flattens,
    /// One batch only.
    Unknown,
}

/// The longer run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persistence {
    /// Calls in all.
    pub calls: u64,
    /// Seconds.
    pub seconds: f64,
    /// Per batch: calls, refs growth, blocks growth.
    pub batches: Vec<[i64; 3]>,
    /// The refs signal's shape, when refs met the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Shape>,
    /// The blocks signal's shape, when blocks met the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Shape>,
}

/// A Python line that allocated blocks that stayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// `file:line`.
    pub r#where: String,
    /// Blocks per call.
    pub blocks_per_call: f64,
    /// Bytes per call.
    pub bytes_per_call: i64,
}

/// The leak check of the same test with the project's pure-Python implementation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinResult {
    /// The switch, `NAME=VALUE`.
    pub env: String,
    /// The twin's corrected reference deltas per measured run (empty when not measured).
    pub refs: Vec<i64>,
    /// The twin's corrected block deltas per measured run.
    pub blocks: Vec<i64>,
    /// Whether the twin grows the same way (the leak rule holds in a signal the C code
    /// leaked in): then the growth is the test's own state.
    pub grows: bool,
    /// Why the twin was not measured (skipped, failed, screened clean), when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TwinResult {
    /// One line: what the twin did.
    pub fn line(&self) -> String {
        match (&self.note, self.grows) {
            (Some(note), _) => format!("pure-Python twin ({}): {note}", self.env),
            (None, true) => format!(
                "pure-Python twin ({}) grows too: refs {:?}, blocks {:?}",
                self.env, self.refs, self.blocks
            ),
            (None, false) => format!(
                "0 with the pure-Python twin ({}): refs {:?}, blocks {:?}",
                self.env, self.refs, self.blocks
            ),
        }
    }
}

impl LeakEvidence {
    /// The evidence as short lines, most telling first: linear or not, the twin, what grew
    /// (references, new objects, containers, allocations).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match (&self.persistence, &self.persistence_note) {
            (Some(p), _) => {
                let shapes: Vec<String> = [("refs", p.refs), ("blocks", p.blocks)]
                    .into_iter()
                    .filter_map(|(name, s)| s.map(|s| format!("{name} {}", shape_name(s))))
                    .collect();
                let rates: Vec<String> = p
                    .batches
                    .iter()
                    .map(|[calls, refs, blocks]| {
                        let per = |n: i64| n as f64 / (*calls).max(1) as f64;
                        format!("{}/{}", round2(per(*refs)), round2(per(*blocks)))
                    })
                    .collect();
                out.push(format!(
                    "over {} more calls: {} (refs/blocks per call by batch: {})",
                    p.calls,
                    shapes.join(", "),
                    rates.join(" → ")
                ));
            }
            (None, Some(note)) => out.push(note.clone()),
            (None, None) => {}
        }
        if let Some(twin) = &self.twin {
            out.push(twin.line());
        }
        for r in &self.refcounts {
            let mut line = format!("+{} references per call to {}", round2(r.per_call), r.object);
            if r.unexplained > 0.0 && r.unexplained < r.per_call {
                line.push_str(&format!(" ({} held by nothing new)", round2(r.unexplained)));
            }
            out.push(line);
        }
        if !self.new_objects.is_empty() {
            let mut new: Vec<(&String, &f64)> = self.new_objects.iter().collect();
            new.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            let new: Vec<String> =
                new.iter().map(|(k, v)| format!("{k} +{}", round2(**v))).collect();
            out.push(format!("new tracked objects per call: {}", new.join(", ")));
        }
        for c in &self.containers {
            out.push(format!("{} ({}) +{} entries per call", c.name, c.kind, round2(c.per_call)));
        }
        if !self.invisible_entries.is_empty() {
            let new: Vec<String> = self
                .invisible_entries
                .iter()
                .map(|(k, v)| format!("{k} +{}", round2(*v)))
                .collect();
            out.push(format!("new entries gc cannot see into, per call: {}", new.join(", ")));
        }
        for a in &self.allocations {
            out.push(format!(
                "+{} blocks ({} bytes) per call allocated at {}",
                round2(a.blocks_per_call),
                a.bytes_per_call,
                a.r#where
            ));
        }
        out
    }
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Linear => "linear",
        Shape::Stops => "stops",
        Shape::Flattens => "flattens",
        Shape::Unknown => "unknown",
    }
}

/// A number with at most two decimals, without trailing zeros (`2`, `0.5`, `1.33`).
fn round2(x: f64) -> String {
    let s = format!("{:.2}", x);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

#[cfg(test)]
mod tests;
