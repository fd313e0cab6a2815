//! What report.json records of `cargo xtask build --check`: whether a rebuild of the cell's
//! build, under varied conditions, installed the same files ([`Reproducibility`]), also
//! summed up as the phase `reproducible` (`passed`, or `failed` with the differing files).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::phase::{Phase, PhaseStatus};

/// The result of one `build --check` of a cell's build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reproducibility {
    /// Installed paths the same in the build and its rebuild.
    pub identical: usize,
    /// Those that differ, with what differs.
    #[serde(default)]
    pub differing: Vec<DifferingFile>,
    /// Installed compiled (or unlisted) files that name the source or build directory.
    #[serde(default)]
    pub naming_build_dirs: Vec<String>,
    /// What the rebuild varied (`umask 0002`, `TZ=Etc/GMT-14`, …).
    #[serde(default)]
    pub varied: Vec<String>,
    /// Seconds the rebuild took.
    pub seconds: u64,
}

/// One installed file that is not the same in the rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DifferingFile {
    /// Relative to the prefix.
    pub path: String,
    /// What differs (`ELF sections differ: .debug_info`, `.pyc header: …`, a text line).
    pub what: String,
}

impl Reproducibility {
    /// Whether the rebuild was identical and no file names a build directory it must not.
    pub fn ok(&self) -> bool {
        self.differing.is_empty() && self.naming_build_dirs.is_empty()
    }

    /// The `reproducible` phase: its detail is the first line every rendering shows.
    pub fn phase(&self) -> Phase {
        if self.ok() {
            return Phase::new(
                PhaseStatus::Passed,
                Some(self.seconds),
                &format!("{} files identical", self.identical),
            );
        }
        let mut detail = String::new();
        if !self.differing.is_empty() {
            detail.push_str(&format!(
                "{} of {} files differ",
                self.differing.len(),
                self.differing.len() + self.identical
            ));
            for d in &self.differing {
                detail.push_str(&format!("\n{}: {}", d.path, d.what));
            }
        }
        for path in &self.naming_build_dirs {
            if detail.is_empty() {
                detail.push_str("installed files name the source or build directory");
            }
            detail.push_str(&format!("\n{path}: names the source or build directory"));
        }
        Phase::new(PhaseStatus::Failed, Some(self.seconds), &detail)
    }
}
