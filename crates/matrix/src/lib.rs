//! The matrix model: CPython releases, debug variants, and the cells they expand to.
//!
//! The matrix is declared in TOML under `matrix/` (`versions.toml`, `variants.toml`,
//! `cells.toml`). [`Matrix::load`] reads and validates it; [`Matrix::cells`] expands it into
//! [`Cell`]s — versions × the variants valid for them — filtered by a [`Selection`].
//!
//! Everything here is pure: loading reads three files, nothing else does I/O.

mod cell_id;
mod load;
mod select;
mod version;

use std::collections::BTreeMap;

use camino::Utf8PathBuf;

pub use crate::cell_id::{CellId, ParseCellIdError};
pub use crate::load::{MatrixError, parse_toml, read_toml};
pub use crate::select::{Pattern, Selection};
pub use crate::version::PyVersion;

/// The whole matrix as declared in a `matrix/` directory.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The directory the matrix was read from.
    pub dir: Utf8PathBuf,
    /// CPython releases, in file order.
    pub versions: Vec<Release>,
    /// Debug variants, in file order.
    pub variants: Vec<Variant>,
    /// The default cell rules (`[default]` in `cells.toml`).
    pub default_rules: CellRules,
    /// Named selections (`[set.NAME]` in `cells.toml`).
    pub sets: BTreeMap<String, CellRules>,
}

/// One CPython release and the pinned archive it is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release, e.g. `3.13.5`.
    pub version: PyVersion,
    /// The upstream (python.org) URL of the source archive.
    pub url: String,
    /// Lowercase hex sha256 of the archive.
    pub sha256: String,
    /// Size of the archive in bytes.
    pub size: u64,
    /// Fingerprint of the OpenPGP key that signs the archive, if the release is signed;
    /// the key itself is `matrix/keys/<fingerprint>.asc`.
    pub signing_key: Option<String>,
    /// Who signs the release line's Sigstore bundles (`[[sigstore]]` in `versions.toml`).
    pub sigstore: Option<SigstoreSigner>,
    /// Why the sha256 pin alone is trusted for a release that must otherwise prove itself
    /// with a Sigstore bundle (3.14 on, see [`SIGSTORE_REQUIRED_SINCE`]); `trusted-by-pin`.
    pub trusted_by_pin: Option<String>,
    /// Why the release is not built here (`not-built-here`): it is pinned, but left out of
    /// every selection that does not name it.
    pub not_built_here: Option<String>,
}

/// From this release line on python.org publishes no OpenPGP signature, only a Sigstore
/// bundle: a release without a good bundle is refused unless its entry says `trusted-by-pin`.
pub const SIGSTORE_REQUIRED_SINCE: PyVersion = PyVersion { major: 3, minor: 14, patch: None };

/// The identity that signs one release line's Sigstore bundles, as Fulcio certifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreSigner {
    /// The release line, `3.14`.
    pub line: PyVersion,
    /// The release manager's email address (`hugo@python.org`).
    pub email: String,
    /// The OpenID Connect issuer (`https://github.com/login/oauth`).
    pub issuer: String,
}

impl Release {
    /// The archive's file name, the last segment of its URL (`Python-3.13.5.tar.xz`).
    pub fn file_name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }

    /// Whether the release must prove itself with a Sigstore bundle (from 3.14 on) unless the
    /// matrix says `trusted-by-pin`.
    pub fn requires_sigstore(&self) -> bool {
        self.version >= SIGSTORE_REQUIRED_SINCE
    }

    /// Path of the pinned signing key, if the release is signed.
    pub fn signing_key_path(&self, matrix_dir: &camino::Utf8Path) -> Option<Utf8PathBuf> {
        self.signing_key.as_ref().map(|fpr| matrix_dir.join("keys").join(format!("{fpr}.asc")))
    }
}

/// A way of building and running CPython.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Short name used in cell names (`debug` in `3.13.5+debug`).
    pub name: String,
    /// One line: what the variant exists to find.
    pub purpose: String,
    /// Arguments to `./configure`.
    pub configure: Vec<String>,
    /// Macros passed as `CFLAGS` to `./configure`.
    pub cflags: Vec<String>,
    /// Macros passed as `EXTRA_CFLAGS` to `make`.
    pub extra_cflags: Vec<String>,
    /// Other `NAME=value` make variables, for `make` and `make install` (e.g. how much of the
    /// standard library `make install` byte-compiles).
    pub make_vars: Vec<String>,
    /// Environment for every run of the built interpreter.
    pub runtime_env: BTreeMap<String, String>,
    /// First version the variant is valid for.
    pub since: Option<PyVersion>,
    /// First version the variant is no longer valid for.
    pub until: Option<PyVersion>,
    /// Whether extensions built for the release build must be rebuilt for this variant.
    pub rebuild_extensions: bool,
    /// From this version on, no rebuild is needed after all.
    pub abi_compatible_since: Option<PyVersion>,
    /// Which deltas decide a refcount leak (`refs`, `blocks`); empty: either.
    pub leak_signals: Vec<String>,
    /// What the built interpreter must show.
    pub promise: Promise,
}

impl Variant {
    /// Whether the variant can be built for `version`.
    pub fn is_valid_for(&self, version: PyVersion) -> bool {
        self.since.is_none_or(|since| version >= since)
            && self.until.is_none_or(|until| version < until)
    }

    /// The range of versions the variant is valid for, for messages (`3.13+`, `3.8 until 3.10`).
    pub fn valid_range(&self) -> String {
        match (self.since, self.until) {
            (None, None) => "every version".to_owned(),
            (Some(s), None) => format!("{s}+"),
            (None, Some(u)) => format!("versions before {u}"),
            (Some(s), Some(u)) => format!("{s} until {u}"),
        }
    }

    /// Whether an extension built for the release build of `version` must be rebuilt to load
    /// correctly into this variant.
    pub fn needs_extension_rebuild(&self, version: PyVersion) -> bool {
        self.rebuild_extensions && self.abi_compatible_since.is_none_or(|since| version < since)
    }
}

/// Facts a variant promises about its built interpreter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Promise {
    /// `sysconfig.get_config_var(name)` values; `0` also matches an undefined variable.
    pub config_vars: BTreeMap<String, i64>,
    /// `sys.abiflags`.
    pub abiflags: Option<String>,
    /// Whether `sys.gettotalrefcount` exists.
    pub gettotalrefcount: Option<bool>,
    /// Whether `sys.getobjects` exists.
    pub getobjects: Option<bool>,
    /// `sys._is_gil_enabled()` (true on versions that lack the function).
    pub gil_enabled: Option<bool>,
    /// The name of the memory allocator in use (`pymalloc`, `malloc_debug`, …).
    pub allocator: Option<String>,
    /// The sanitizer runtimes in the running interpreter (`address`, `thread`, `undefined`),
    /// each proven twice: its runtime's symbols resolve in the process and sysconfig's
    /// `PY_CFLAGS` has its `-fsanitize=`; an empty list promises none.
    pub sanitizers: Option<Vec<String>>,
}

impl Promise {
    /// Whether the interpreter is promised to carry `sanitizer` (`address`, `thread`,
    /// `undefined`); load refuses a variant whose configure flag and promise disagree.
    pub fn has_sanitizer(&self, sanitizer: &str) -> bool {
        self.sanitizers.as_deref().unwrap_or_default().iter().any(|s| s == sanitizer)
    }

    /// Whether the interpreter is promised to be the free-threaded build (`Py_GIL_DISABLED`
    /// = 1: load requires it of `--disable-gil`).
    pub fn free_threaded(&self) -> bool {
        self.config_vars.get("Py_GIL_DISABLED") == Some(&1)
    }

    /// Whether the interpreter is promised to be built for valgrind (`WITH_VALGRIND` = 1:
    /// load requires it of `--with-valgrind`).
    pub fn valgrind(&self) -> bool {
        self.config_vars.get("WITH_VALGRIND") == Some(&1)
    }
}

/// The sanitizers a promise may name, with the configure flag that brings each.
pub const SANITIZERS: &[(&str, &str)] = &[
    ("address", "--with-address-sanitizer"),
    ("thread", "--with-thread-sanitizer"),
    ("undefined", "--with-undefined-behavior-sanitizer"),
];

/// Include/exclude rules choosing which cells run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellRules {
    /// If non-empty, only cells matching one of these.
    pub include: Vec<Pattern>,
    /// Cells matching any of these are left out.
    pub exclude: Vec<Pattern>,
    /// The extension suites (of `matrix/extensions.toml`) this selection runs; `None`: all.
    pub suites: Option<Vec<String>>,
}

impl CellRules {
    fn admits(&self, release: &Release, variant: &Variant) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(release, variant)))
            && !self.exclude.iter().any(|p| p.matches(release, variant))
    }
}

/// One version × variant: the unit that is built, checked and tested.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'m> {
    /// The release.
    pub release: &'m Release,
    /// The variant.
    pub variant: &'m Variant,
}

impl Cell<'_> {
    /// The cell's name, `<version>+<variant>` in uv's habit: `3.13.5+debug`.
    pub fn name(&self) -> String {
        self.id().to_string()
    }
}

impl Matrix {
    /// The variants' names in the order of `variants.toml`: the order renderings show them in.
    pub fn variant_order(&self) -> Vec<String> {
        self.variants.iter().map(|v| v.name.clone()).collect()
    }

    /// Looks up a release by its exact version.
    pub fn release(&self, version: PyVersion) -> Option<&Release> {
        self.versions.iter().find(|r| r.version == version)
    }

    /// Looks up a variant by name.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The cells chosen by `selection`, in version-then-variant file order.
    pub fn cells(&self, selection: &Selection) -> Result<Vec<Cell<'_>>, MatrixError> {
        select::cells(self, selection)
    }

    /// The releases marked `not-built-here` that `selection` leaves out because it does not
    /// name them, with the reason: what `list` says about them.
    pub fn not_built_here(&self, selection: &Selection) -> Vec<&Release> {
        select::not_built_here(self, selection)
    }

    /// The releases the chosen cells use, each once, in file order.
    pub fn releases_of<'m>(cells: &[Cell<'m>]) -> Vec<&'m Release> {
        let mut releases: Vec<&Release> = Vec::new();
        for cell in cells {
            if !releases.iter().any(|r| r.version == cell.release.version) {
                releases.push(cell.release);
            }
        }
        releases
    }
}

#[cfg(test)]
mod tests;
