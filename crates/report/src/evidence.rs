//! The evidence of a `ref-leak` finding as report.json records it: what grew, whether it
//! stays linear, and what the pure-Python twin did. report.json's own copy of what the
//! plugin measures (`exttest`'s `LeakEvidence`, from the plugin's events), converted in
//! `pipeline::results`. Pure data.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the plugin found for a test whose every measured run grew, and what the tool added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GrownRefcount {
    /// `type pkg.Cls`, `function pkg.f`, `pkg.NAME (dict)`.
    pub object: String,
    /// References gained per call.
    pub per_call: f64,
    /// Of those, references no new object or entry holds.
    pub unexplained: f64,
}

/// The shape of a signal's growth over the longer run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Allocation {
    /// `file:line`.
    pub r#where: String,
    /// Blocks per call.
    pub blocks_per_call: f64,
    /// Bytes per call.
    pub bytes_per_call: i64,
}

/// The leak check of the same test with the project's pure-Python implementation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
