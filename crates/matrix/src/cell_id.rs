//! [`CellId`]: a cell's identity once it leaves the matrix (in results, logs, report.json):
//! its release version, typed and ordered as versions (3.13.5 before 3.13.15), and its
//! variant's name. Written and read as the cell's name, `3.13.5+debug`, parsed once here.

use std::{fmt, str::FromStr};

use crate::{Cell, PyVersion};

/// A cell's identity: release version and variant, `3.13.5+debug`. Ordered by version (as
/// versions), then by variant name; the order of `variants.toml` is the matrix's to give
/// ([`crate::Matrix::variant_order`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellId {
    /// The release, `3.13.5`.
    pub version: PyVersion,
    /// The variant's name, `debug`.
    pub variant: String,
}

impl CellId {
    /// The identity of `version` × `variant`.
    pub fn new(version: PyVersion, variant: impl Into<String>) -> CellId {
        CellId { version, variant: variant.into() }
    }
}

impl Cell<'_> {
    /// The cell's identity.
    pub fn id(&self) -> CellId {
        CellId::new(self.release.version, self.variant.name.clone())
    }
}

impl fmt::Display for CellId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Padded as a string would be: `{:26}` lines cells up in tables.
        f.pad(&format!("{}+{}", self.version, self.variant))
    }
}

/// A string that is not a cell's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a cell: expected VERSION+VARIANT with a full release version, e.g. 3.13.5+debug"
)]
pub struct ParseCellIdError(pub String);

impl FromStr for CellId {
    type Err = ParseCellIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCellIdError(s.to_owned());
        let (version, variant) = s.split_once('+').ok_or_else(err)?;
        let version: PyVersion = version.parse().map_err(|_| err())?;
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if version.patch.is_none() || variant.is_empty() || !variant.chars().all(valid) {
            return Err(err());
        }
        Ok(CellId::new(version, variant))
    }
}

impl serde::Serialize for CellId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CellId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
