//! Choosing cells: include/exclude patterns from `cells.toml` and the user's `--version`,
//! `--variant`, `--set` and cell names.

use serde::Deserialize;

use crate::{Cell, CellRules, Matrix, MatrixError, PyVersion, Release, Variant};

/// A version prefix, a variant, or both; matches cells. An empty pattern matches every cell.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    /// Version prefix: `3.13` matches `3.13.5`.
    pub version: Option<PyVersion>,
    /// Variant name.
    pub variant: Option<String>,
}

impl Pattern {
    /// Whether the pattern matches the cell `release`+`variant`.
    pub fn matches(&self, release: &Release, variant: &Variant) -> bool {
        self.version.is_none_or(|v| v.is_prefix_of(&release.version))
            && self.variant.as_ref().is_none_or(|name| *name == variant.name)
    }

    /// Whether the pattern matches `cell`.
    pub fn matches_cell(&self, cell: &Cell<'_>) -> bool {
        self.matches(cell.release, cell.variant)
    }
}

/// The written form of a pattern, the one grammar of every list of cells a user writes
/// (`[[expected]]`'s `cells`, a project's default `cells`): `3.13.5+debug` (a cell),
/// `3.13+debug` (a version prefix and a variant), `debug` (a variant on every version),
/// `3.13` (every variant of a version prefix). Names are checked against a matrix with
/// [`Matrix::check_pattern`].
impl std::str::FromStr for Pattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Pattern, String> {
        let bad = |why: &str| {
            Err(format!(
                "`{text}` is not a cell pattern ({why}): write VERSION+VARIANT (3.13+debug, \
                 3.13.5+debug), a variant (debug) or a version (3.13)"
            ))
        };
        let word = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let (version, variant) = match text.split_once('+') {
            Some((version, variant)) => (Some(version), Some(variant)),
            None if text.starts_with(|c: char| c.is_ascii_digit()) => (Some(text), None),
            None => (None, Some(text)),
        };
        let version = match version {
            Some(v) => match v.parse::<PyVersion>() {
                Ok(v) => Some(v),
                Err(_) => return bad(&format!("`{v}` is not a version such as 3.13 or 3.13.5")),
            },
            None => None,
        };
        if let Some(variant) = variant
            && !word(variant)
        {
            return bad(&format!("`{variant}` is not a variant name"));
        }
        Ok(Pattern { version, variant: variant.map(str::to_owned) })
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.version, &self.variant) {
            (Some(version), Some(variant)) => write!(f, "{version}+{variant}"),
            (Some(version), None) => write!(f, "{version}"),
            (None, Some(variant)) => write!(f, "{variant}"),
            (None, None) => write!(f, "*"),
        }
    }
}

/// What the user asked for on the command line. Empty means the default cells.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// A named set from `cells.toml` replacing the default rules.
    pub set: Option<String>,
    /// Version prefixes (`3.13`, `3.13.5`); a cell matches if any matches.
    pub versions: Vec<String>,
    /// Variant names; a cell matches if any matches.
    pub variants: Vec<String>,
    /// Exact cell names (`3.13.5+debug`); chosen regardless of include/exclude rules.
    pub cells: Vec<String>,
    /// Cell patterns (a project's default `cells`): every valid cell any of them matches,
    /// regardless of include/exclude rules; a release not built here only where a pattern's
    /// version names it. Alone: not beside the other fields.
    pub patterns: Vec<Pattern>,
}

impl Matrix {
    fn known_versions(&self) -> String {
        join(self.versions.iter().map(|r| r.version.to_string()))
    }

    fn known_variants(&self) -> String {
        join(self.variants.iter().map(|v| v.name.clone()))
    }

    fn version_prefix(&self, given: &str) -> Result<PyVersion, MatrixError> {
        let unknown = || MatrixError::UnknownVersion {
            given: given.to_owned(),
            known: self.known_versions(),
        };
        let prefix: PyVersion = given.parse().map_err(|_| unknown())?;
        if self.versions.iter().any(|r| prefix.is_prefix_of(&r.version)) {
            Ok(prefix)
        } else {
            Err(unknown())
        }
    }

    fn variant_named(&self, given: &str) -> Result<&Variant, MatrixError> {
        self.variant(given).ok_or_else(|| MatrixError::UnknownVariant {
            given: given.to_owned(),
            known: self.known_variants(),
        })
    }

    /// Checks that a pattern names things the matrix has.
    pub fn check_pattern(&self, pattern: &Pattern) -> Result<(), MatrixError> {
        if let Some(version) = pattern.version {
            self.version_prefix(&version.to_string())?;
        }
        if let Some(variant) = &pattern.variant {
            self.variant_named(variant)?;
        }
        Ok(())
    }

    /// Resolves one cell name such as `3.13.5+debug`.
    pub fn cell(&self, name: &str) -> Result<Cell<'_>, MatrixError> {
        let (version, variant) =
            name.split_once('+').ok_or_else(|| MatrixError::BadCellName(name.to_owned()))?;
        let version: PyVersion =
            version.parse().map_err(|_| MatrixError::BadCellName(name.to_owned()))?;
        let release = self.release(version).ok_or_else(|| MatrixError::UnknownVersion {
            given: version.to_string(),
            known: self.known_versions(),
        })?;
        let variant = self.variant_named(variant)?;
        check_valid(release, variant)?;
        Ok(Cell { release, variant })
    }
}

fn check_valid(release: &Release, variant: &Variant) -> Result<(), MatrixError> {
    if variant.is_valid_for(release.version) {
        Ok(())
    } else {
        Err(MatrixError::NotValidFor {
            variant: variant.name.clone(),
            version: release.version,
            range: variant.valid_range(),
        })
    }
}

pub(crate) fn cells<'m>(
    matrix: &'m Matrix,
    selection: &Selection,
) -> Result<Vec<Cell<'m>>, MatrixError> {
    if !selection.cells.is_empty() {
        if !selection.versions.is_empty() || !selection.variants.is_empty() {
            let flags = selection.versions.iter().map(|v| format!("--version {v}"));
            let flags = flags.chain(selection.variants.iter().map(|v| format!("--variant {v}")));
            return Err(MatrixError::NamesAndFilters {
                flags: flags.collect::<Vec<_>>().join(" "),
                cells: selection.cells.join(", "),
            });
        }
        // A cell named twice is built and tested once.
        let mut cells: Vec<Cell<'m>> = Vec::new();
        for name in &selection.cells {
            let cell = matrix.cell(name)?;
            if !cells.iter().any(|c| c.name() == cell.name()) {
                cells.push(cell);
            }
        }
        return Ok(cells);
    }
    if !selection.patterns.is_empty() {
        return by_patterns(matrix, &selection.patterns);
    }
    let rules: &CellRules = match &selection.set {
        None => &matrix.default_rules,
        Some(set) => matrix.sets.get(set).ok_or_else(|| MatrixError::UnknownSet {
            given: set.clone(),
            known: join(matrix.sets.keys().cloned()),
        })?,
    };
    let versions: Vec<PyVersion> =
        selection.versions.iter().map(|v| matrix.version_prefix(v)).collect::<Result<_, _>>()?;
    let variants: Vec<&Variant> =
        selection.variants.iter().map(|v| matrix.variant_named(v)).collect::<Result<_, _>>()?;

    // A release not built here is chosen only when a `--version` names it.
    let releases: Vec<&Release> = matrix
        .versions
        .iter()
        .filter(|r| {
            if versions.is_empty() {
                r.not_built_here.is_none()
            } else {
                versions.iter().any(|v| v.is_prefix_of(&r.version))
            }
        })
        .collect();
    // A variant asked for by name must be valid for at least one chosen version.
    for variant in &variants {
        if let Some(release) = releases.iter().find(|r| !variant.is_valid_for(r.version))
            && !releases.iter().any(|r| variant.is_valid_for(r.version))
        {
            check_valid(release, variant)?;
        }
    }
    let mut chosen = Vec::new();
    for release in releases {
        for variant in &matrix.variants {
            let asked = variants.is_empty() || variants.iter().any(|v| v.name == variant.name);
            if asked && variant.is_valid_for(release.version) && rules.admits(release, variant) {
                chosen.push(Cell { release, variant });
            }
        }
    }
    if chosen.is_empty() {
        return Err(MatrixError::Empty(describe(selection)));
    }
    Ok(chosen)
}

/// The cells `patterns` choose (see [`Selection::patterns`]).
fn by_patterns<'m>(matrix: &'m Matrix, patterns: &[Pattern]) -> Result<Vec<Cell<'m>>, MatrixError> {
    for pattern in patterns {
        matrix.check_pattern(pattern)?;
    }
    let mut chosen = Vec::new();
    for release in &matrix.versions {
        for variant in &matrix.variants {
            let named = |p: &Pattern| {
                p.matches(release, variant)
                    && (release.not_built_here.is_none() || p.version.is_some())
            };
            if variant.is_valid_for(release.version) && patterns.iter().any(named) {
                chosen.push(Cell { release, variant });
            }
        }
    }
    if chosen.is_empty() {
        let list: Vec<String> = patterns.iter().map(Pattern::to_string).collect();
        return Err(MatrixError::Empty(format!("cells = [{}]", list.join(", "))));
    }
    Ok(chosen)
}

pub(crate) fn not_built_here<'m>(matrix: &'m Matrix, selection: &Selection) -> Vec<&'m Release> {
    if !selection.versions.is_empty() || !selection.cells.is_empty() {
        return Vec::new();
    }
    matrix.versions.iter().filter(|r| r.not_built_here.is_some()).collect()
}

fn describe(selection: &Selection) -> String {
    let mut parts = Vec::new();
    if let Some(set) = &selection.set {
        parts.push(format!("--set {set}"));
    }
    parts.extend(selection.versions.iter().map(|v| format!("--version {v}")));
    parts.extend(selection.variants.iter().map(|v| format!("--variant {v}")));
    if parts.is_empty() {
        "the default rules of matrix/cells.toml".to_owned()
    } else {
        parts.join(" ")
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}
