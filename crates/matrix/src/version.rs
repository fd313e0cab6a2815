//! CPython version numbers: `3.13.5` for releases, `3.13` for ranges and selections.

use std::{cmp::Ordering, fmt, str::FromStr};

/// A CPython version, `major.minor[.patch]`. A missing patch compares as `0`, so `3.13`
/// is the first 3.13 release in ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyVersion {
    /// `3` in `3.13.5`.
    pub major: u32,
    /// `13` in `3.13.5`.
    pub minor: u32,
    /// `5` in `3.13.5`; `None` for `3.13`.
    pub patch: Option<u32>,
}

impl PyVersion {
    fn key(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.patch.unwrap_or(0))
    }

    /// Whether `self` (e.g. `3.13`) is a prefix of `other` (e.g. `3.13.5`), or equal to it.
    pub fn is_prefix_of(&self, other: &PyVersion) -> bool {
        self.major == other.major
            && self.minor == other.minor
            && self.patch.is_none_or(|p| Some(p) == other.patch)
    }
}

impl Ord for PyVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for PyVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

/// A string that is not `major.minor[.patch]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a CPython version: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 3.13 or 3.13.5"
)]
pub struct ParseVersionError(pub String);

impl FromStr for PyVersion {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseVersionError(s.to_owned());
        let mut parts = s.split('.');
        let mut number = |required: bool| -> Result<Option<u32>, ParseVersionError> {
            match parts.next() {
                None if !required => Ok(None),
                None => Err(err()),
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map(Some).map_err(|_| err())
                }
                Some(_) => Err(err()),
            }
        };
        let major = number(true)?.ok_or_else(err)?;
        let minor = number(true)?.ok_or_else(err)?;
        let patch = number(false)?;
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(PyVersion { major, minor, patch })
    }
}
