//! Reading `matrix/*.toml` into a validated [`Matrix`], with errors that name file, line and column.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use toml::Spanned;

use crate::{
    CellRules, Matrix, Pattern, Promise, PyVersion, Release, SIGSTORE_REQUIRED_SINCE,
    SigstoreSigner, Variant,
};

/// Why a matrix could not be loaded or a selection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// A matrix file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: Utf8PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A matrix file is not valid TOML or does not have the documented shape.
    #[error("{path}:{line}:{column}: {message}\n{snippet}")]
    Syntax {
        /// The file.
        path: Utf8PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
        /// The offending line, marked.
        snippet: String,
    },
    /// A selection names a version the matrix does not have.
    #[error("unknown version `{given}`: the matrix has {known} (see matrix/versions.toml)")]
    UnknownVersion {
        /// What the user asked for.
        given: String,
        /// The versions there are.
        known: String,
    },
    /// A selection names a variant the matrix does not have.
    #[error("unknown variant `{given}`: the matrix has {known} (see matrix/variants.toml)")]
    UnknownVariant {
        /// What the user asked for.
        given: String,
        /// The variants there are.
        known: String,
    },
    /// A selection names a set `cells.toml` does not define.
    #[error("unknown cell set `{given}`: matrix/cells.toml defines {known}")]
    UnknownSet {
        /// What the user asked for.
        given: String,
        /// The sets there are.
        known: String,
    },
    /// A cell whose variant cannot be built for its version.
    #[error(
        "variant `{variant}` is not valid for {version}: it is valid for {range} (see matrix/variants.toml)"
    )]
    NotValidFor {
        /// The variant.
        variant: String,
        /// The version.
        version: PyVersion,
        /// Where the variant is valid.
        range: String,
    },
    /// A cell name that is not `<version>+<variant>`.
    #[error(
        "`{0}` is not a cell name: expected VERSION+VARIANT, e.g. 3.13.5+debug (see `cargo xtask list`)"
    )]
    BadCellName(String),
    /// The selection chose nothing.
    #[error("the selection matches no cell: {0} (see `cargo xtask list`)")]
    Empty(String),
    /// Cell names beside `--version`/`--variant`, which would be ignored.
    #[error(
        "{flags} beside cell names ({cells}): a cell name says its version and variant; give \
         cell names or --version/--variant, not both"
    )]
    NamesAndFilters {
        /// The flags given.
        flags: String,
        /// The cell names given.
        cells: String,
    },
}

impl MatrixError {
    /// An error at byte range `span` of `text`, the contents of `path`, with line, column and snippet.
    pub fn at(path: &Utf8Path, text: &str, span: std::ops::Range<usize>, message: String) -> Self {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let line_text = text[line_start..].lines().next().unwrap_or("");
        let snippet = format!("  {line:>4} | {line_text}\n       | {}^", " ".repeat(column - 1));
        MatrixError::Syntax { path: path.to_owned(), line, column, message, snippet }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionsFile {
    #[serde(default)]
    version: Vec<Spanned<RawRelease>>,
    #[serde(default)]
    sigstore: Vec<Spanned<RawSigner>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    line: Spanned<PyVersion>,
    email: Spanned<String>,
    issuer: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRelease {
    version: PyVersion,
    url: String,
    sha256: Spanned<String>,
    size: u64,
    signing_key: Option<Spanned<String>>,
    trusted_by_pin: Option<Spanned<String>>,
    not_built_here: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantsFile {
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVariant {
    name: Spanned<String>,
    purpose: String,
    #[serde(default)]
    configure: Vec<String>,
    #[serde(default)]
    cflags: Vec<String>,
    #[serde(default)]
    extra_cflags: Vec<String>,
    #[serde(default)]
    make_vars: Vec<String>,
    #[serde(default)]
    runtime_env: BTreeMap<String, String>,
    since: Option<PyVersion>,
    until: Option<PyVersion>,
    rebuild_extensions: bool,
    abi_compatible_since: Option<PyVersion>,
    #[serde(default)]
    leak_signals: Vec<String>,
    #[serde(default)]
    promise: RawPromise,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPromise {
    #[serde(default)]
    config_vars: BTreeMap<String, i64>,
    abiflags: Option<String>,
    gettotalrefcount: Option<bool>,
    getobjects: Option<bool>,
    gil_enabled: Option<bool>,
    allocator: Option<String>,
    sanitizers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CellsFile {
    #[serde(default)]
    default: RawRules,
    #[serde(default)]
    set: BTreeMap<String, RawRules>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    include: Option<Spanned<Vec<Spanned<Pattern>>>>,
    #[serde(default)]
    exclude: Vec<Spanned<Pattern>>,
    #[serde(default)]
    suites: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for PyVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

struct Source {
    path: Utf8PathBuf,
    text: String,
}

impl Source {
    fn read(dir: &Utf8Path, name: &str) -> Result<Source, MatrixError> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| MatrixError::Read { path: path.clone(), source })?;
        Ok(Source { path, text })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, MatrixError> {
        toml::from_str(&self.text)
            .map_err(|e| self.error(e.span().unwrap_or(0..0), e.message().to_owned()))
    }

    fn error(&self, span: std::ops::Range<usize>, message: String) -> MatrixError {
        MatrixError::at(&self.path, &self.text, span, message)
    }
}

/// Reads a TOML file of the matrix directory into `T`; errors name file, line and column.
/// For the matrix's other files (`extensions.toml`, `cpython-tests.toml`).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Utf8Path) -> Result<T, MatrixError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| MatrixError::Read { path: path.to_owned(), source })?;
    parse_toml(path, &text)
}

/// Parses `text`, the contents of `path`, into `T`; errors name file, line and column.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Utf8Path,
    text: &str,
) -> Result<T, MatrixError> {
    Source { path: path.to_owned(), text: text.to_owned() }.parse()
}

impl Matrix {
    /// Reads and validates `versions.toml`, `variants.toml` and `cells.toml` in `dir`.
    pub fn load(dir: &Utf8Path) -> Result<Matrix, MatrixError> {
        let versions_src = Source::read(dir, "versions.toml")?;
        let variants_src = Source::read(dir, "variants.toml")?;
        let cells_src = Source::read(dir, "cells.toml")?;
        Matrix::from_sources(dir, &versions_src, &variants_src, &cells_src)
    }

    /// Like [`Matrix::load`], from file contents already in memory (for tests).
    pub fn from_strs(versions: &str, variants: &str, cells: &str) -> Result<Matrix, MatrixError> {
        let dir = Utf8Path::new("matrix");
        let src = |name: &str, text: &str| Source { path: dir.join(name), text: text.to_owned() };
        Matrix::from_sources(
            dir,
            &src("versions.toml", versions),
            &src("variants.toml", variants),
            &src("cells.toml", cells),
        )
    }

    fn from_sources(
        dir: &Utf8Path,
        versions_src: &Source,
        variants_src: &Source,
        cells_src: &Source,
    ) -> Result<Matrix, MatrixError> {
        let versions = load_versions(versions_src)?;
        let variants = load_variants(variants_src)?;
        let cells: CellsFile = cells_src.parse()?;
        let matrix = Matrix {
            dir: dir.to_owned(),
            versions,
            variants,
            default_rules: CellRules::default(),
            sets: BTreeMap::new(),
        };
        let rules = |raw: RawRules| -> Result<CellRules, MatrixError> {
            let check = |list: Vec<Spanned<Pattern>>| -> Result<Vec<Pattern>, MatrixError> {
                list.into_iter()
                    .map(|p| {
                        let span = p.span();
                        let pattern = p.into_inner();
                        matrix
                            .check_pattern(&pattern)
                            .map_err(|e| cells_src.error(span, e.to_string()))?;
                        Ok(pattern)
                    })
                    .collect()
            };
            let include = match raw.include {
                None => Vec::new(),
                Some(list) if list.get_ref().is_empty() => {
                    // An empty include would read as "no restriction": every cell.
                    return Err(cells_src.error(
                        list.span(),
                        "`include = []` would select no cell; remove the key to include every \
                         cell, or list patterns"
                            .to_owned(),
                    ));
                }
                Some(list) => check(list.into_inner())?,
            };
            Ok(CellRules { include, exclude: check(raw.exclude)?, suites: raw.suites })
        };
        let default_rules = rules(cells.default)?;
        let sets = cells
            .set
            .into_iter()
            .map(|(name, raw)| Ok((name, rules(raw)?)))
            .collect::<Result<_, MatrixError>>()?;
        Ok(Matrix { default_rules, sets, ..matrix })
    }
}

fn load_signers(
    src: &Source,
    raw: Vec<Spanned<RawSigner>>,
) -> Result<Vec<SigstoreSigner>, MatrixError> {
    let mut signers: Vec<SigstoreSigner> = Vec::new();
    for raw in raw {
        let raw = raw.into_inner();
        let line = *raw.line.get_ref();
        if line.patch.is_some() {
            return Err(src.error(
                raw.line.span(),
                format!(
                    "a Sigstore signer is pinned per release line: line = \"{}.{}\", not {line}",
                    line.major, line.minor
                ),
            ));
        }
        if signers.iter().any(|s| s.line == line) {
            return Err(src.error(
                raw.line.span(),
                format!("the Sigstore signer of {line} is declared twice"),
            ));
        }
        let email = raw.email.get_ref();
        if email.split('@').count() != 2 || email.starts_with('@') || email.ends_with('@') {
            return Err(src.error(
                raw.email.span(),
                format!(
                    "email `{email}` is not an email address: python.org's release managers \
                     sign with their email identity (e.g. hugo@python.org)"
                ),
            ));
        }
        if !raw.issuer.get_ref().starts_with("https://") {
            return Err(src.error(
                raw.issuer.span(),
                format!(
                    "issuer `{}` must be the https:// URL of the OpenID Connect issuer \
                     (e.g. https://github.com/login/oauth)",
                    raw.issuer.get_ref()
                ),
            ));
        }
        signers.push(SigstoreSigner {
            line,
            email: raw.email.into_inner(),
            issuer: raw.issuer.into_inner(),
        });
    }
    Ok(signers)
}

/// A reason given in the matrix (`trusted-by-pin`, `not-built-here`): it is printed, so it
/// must say something.
fn reason(
    src: &Source,
    field: &str,
    raw: Option<Spanned<String>>,
) -> Result<Option<String>, MatrixError> {
    match raw {
        Some(text) if text.get_ref().trim().is_empty() => Err(src.error(
            text.span(),
            format!(
                "{field} must say why (it is printed wherever the release is skipped or trusted)"
            ),
        )),
        other => Ok(other.map(Spanned::into_inner)),
    }
}

fn load_versions(src: &Source) -> Result<Vec<Release>, MatrixError> {
    let file: VersionsFile = src.parse()?;
    let signers = load_signers(src, file.sigstore)?;
    let mut releases: Vec<Release> = Vec::new();
    for raw in file.version {
        let span = raw.span();
        let raw = raw.into_inner();
        if releases.iter().any(|r| r.version == raw.version) {
            return Err(src.error(span, format!("version {} is declared twice", raw.version)));
        }
        if raw.version.patch.is_none() {
            return Err(src.error(
                span,
                format!("version {} needs its patch level, e.g. {}.0", raw.version, raw.version),
            ));
        }
        let sha = raw.sha256.get_ref();
        if sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(
                src.error(raw.sha256.span(), "sha256 must be 64 lowercase hex digits".to_owned())
            );
        }
        if !(raw.url.starts_with("https://") || raw.url.starts_with("file://")) {
            return Err(src.error(span, format!("url `{}` must be https:// (or file://)", raw.url)));
        }
        let file_name = raw.url.rsplit('/').next().unwrap_or("");
        let archive_suffix = [".tgz", ".tar.gz", ".tar.xz"].iter().any(|s| file_name.ends_with(s));
        if file_name.is_empty() || file_name.contains(['?', '#']) || !archive_suffix {
            return Err(src.error(
                span,
                format!(
                    "url `{}` must end in the archive's file name (Python-X.Y.Z.tar.xz or .tgz): \
                     mirrors and the cache are looked up by it",
                    raw.url
                ),
            ));
        }
        if let Some(key) = &raw.signing_key {
            let k = key.get_ref();
            if k.len() != 40 || !k.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
                return Err(src.error(
                    key.span(),
                    "signing-key must be a 40-digit uppercase hex OpenPGP fingerprint".to_owned(),
                ));
            }
        }
        let line = PyVersion { patch: None, ..raw.version };
        let sigstore = signers.iter().find(|s| s.line == line).cloned();
        let required = raw.version >= SIGSTORE_REQUIRED_SINCE;
        if required && sigstore.is_none() {
            return Err(src.error(
                span,
                format!(
                    "{} is signed with Sigstore only (python.org publishes no .asc from \
                     {SIGSTORE_REQUIRED_SINCE} on): add a [[sigstore]] entry with line = \"{line}\" \
                     and its release manager's email and OIDC issuer",
                    raw.version
                ),
            ));
        }
        if let Some(trusted) = &raw.trusted_by_pin
            && !required
        {
            return Err(src.error(
                trusted.span(),
                format!(
                    "trusted-by-pin is for releases from {SIGSTORE_REQUIRED_SINCE} on, which \
                     must otherwise have a Sigstore bundle; {} is trusted on its pin alone \
                     when it has no signature, so remove it",
                    raw.version
                ),
            ));
        }
        let trusted_by_pin = reason(src, "trusted-by-pin", raw.trusted_by_pin)?;
        let not_built_here = reason(src, "not-built-here", raw.not_built_here)?;
        releases.push(Release {
            version: raw.version,
            url: raw.url,
            sha256: raw.sha256.into_inner(),
            size: raw.size,
            signing_key: raw.signing_key.map(Spanned::into_inner),
            sigstore,
            trusted_by_pin,
            not_built_here,
        });
    }
    Ok(releases)
}

fn load_variants(src: &Source) -> Result<Vec<Variant>, MatrixError> {
    let file: VariantsFile = src.parse()?;
    let mut variants: Vec<Variant> = Vec::new();
    for raw in file.variant {
        let raw = raw.into_inner();
        let name_span = raw.name.span();
        let name = raw.name.into_inner();
        let fail = |message: String| Err(src.error(name_span.clone(), message));
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return fail(format!(
                "variant name `{name}` must be lowercase letters, digits and `-`"
            ));
        }
        if variants.iter().any(|v| v.name == name) {
            return fail(format!("variant `{name}` is declared twice"));
        }
        for flag in raw.cflags.iter().chain(&raw.extra_cflags) {
            if flag == "-DPYMALLOC_DEBUG"
                && raw.until.is_none_or(|u| u > PyVersion { major: 3, minor: 10, patch: None })
            {
                return fail(format!(
                    "variant `{name}`: PYMALLOC_DEBUG is not a build macro since 3.10; use \
                     runtime-env = {{ PYTHONMALLOC = \"pymalloc_debug\" }} instead, or until = \"3.10\""
                ));
            }
        }
        if let Some(bad) =
            raw.leak_signals.iter().find(|s| !matches!(s.as_str(), "refs" | "blocks"))
        {
            return fail(format!(
                "variant `{name}`: leak-signals has `{bad}`; expected \"refs\" and/or \"blocks\""
            ));
        }
        let has = |arg: &str| raw.configure.iter().any(|a| a == arg);
        // The tool sets these itself: the install prefix per build key, and the shared
        // configure cache. A variant that set them would install over other builds or
        // poison the cache.
        if let Some(own) = raw.configure.iter().find(|a| {
            let flag = a.split('=').next().unwrap_or(a);
            matches!(flag, "--prefix" | "--exec-prefix" | "--cache-file" | "-C" | "--config-cache")
        }) {
            return fail(format!(
                "variant `{name}`: configure argument `{own}` is the tool's own (it sets \
                 --prefix per build and the configure cache itself); remove it"
            ));
        }
        for var in &raw.make_vars {
            let var_name = var.split_once('=').map(|(n, _)| n);
            // The tool's own first: `prefix` is lowercase and would fail the NAME check below.
            if let Some(own @ ("EXTRA_CFLAGS" | "DESTDIR" | "prefix")) = var_name {
                return fail(format!(
                    "variant `{name}`: make-vars must not set {own}: use extra-cflags \
                     (EXTRA_CFLAGS) or leave the install location to the tool"
                ));
            }
            let ok = var_name.is_some_and(|n| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            });
            if !ok {
                return fail(format!(
                    "variant `{name}`: make-vars entry `{var}` is not NAME=value"
                ));
            }
        }
        if has("--disable-gil") && has("--with-trace-refs") {
            return fail(format!(
                "variant `{name}`: configure rejects --disable-gil with --with-trace-refs"
            ));
        }
        if has("--disable-gil")
            && raw.since.is_none_or(|s| s < PyVersion { major: 3, minor: 13, patch: None })
        {
            return fail(format!(
                "variant `{name}`: --disable-gil exists from 3.13 on; add since = \"3.13\""
            ));
        }
        for (flag, var) in
            [("--disable-gil", "Py_GIL_DISABLED"), ("--with-valgrind", "WITH_VALGRIND")]
        {
            let promised = raw.promise.config_vars.get(var) == Some(&1);
            if has(flag) != promised {
                return fail(format!(
                    "variant `{name}`: {flag} and the promise's config-vars {var} = 1 go together \
                     (the tests' detectors follow the promise); {}",
                    if promised {
                        format!("add {flag} or drop {var}")
                    } else {
                        format!("add {var} = 1")
                    }
                ));
            }
        }
        if has("--with-address-sanitizer")
            && raw.promise.config_vars.get("WITH_PYMALLOC") == Some(&1)
        {
            return fail(format!(
                "variant `{name}`: --with-address-sanitizer turns pymalloc off; promise WITH_PYMALLOC = 0"
            ));
        }
        if has("--with-undefined-behavior-sanitizer")
            && raw.since.is_none_or(|s| s < PyVersion { major: 3, minor: 11, patch: None })
        {
            return fail(format!(
                "variant `{name}`: --with-undefined-behavior-sanitizer exists from 3.11 on; add \
                 since = \"3.11\""
            ));
        }
        let promised = raw.promise.sanitizers.as_deref().unwrap_or_default();
        if let Some(bad) = promised.iter().find(|s| !crate::SANITIZERS.iter().any(|(n, _)| n == s))
        {
            return fail(format!(
                "variant `{name}`: promise sanitizers has `{bad}`; expected address, thread or \
                 undefined"
            ));
        }
        for (sanitizer, flag) in crate::SANITIZERS {
            if has(flag) && !promised.iter().any(|s| s == sanitizer) {
                return fail(format!(
                    "variant `{name}`: {flag} must be proven in the interpreter; add \
                     \"{sanitizer}\" to the promise's sanitizers"
                ));
            }
            if !has(flag) && promised.iter().any(|s| s == sanitizer) {
                return fail(format!(
                    "variant `{name}`: the promise has sanitizer \"{sanitizer}\" but configure \
                     lacks {flag}"
                ));
            }
        }
        if let (Some(since), Some(until)) = (raw.since, raw.until)
            && since >= until
        {
            return fail(format!("variant `{name}`: since {since} is not before until {until}"));
        }
        let p = raw.promise;
        variants.push(Variant {
            name,
            purpose: raw.purpose,
            configure: raw.configure,
            cflags: raw.cflags,
            extra_cflags: raw.extra_cflags,
            make_vars: raw.make_vars,
            runtime_env: raw.runtime_env,
            since: raw.since,
            until: raw.until,
            rebuild_extensions: raw.rebuild_extensions,
            abi_compatible_since: raw.abi_compatible_since,
            leak_signals: raw.leak_signals,
            promise: Promise {
                config_vars: p.config_vars,
                abiflags: p.abiflags,
                gettotalrefcount: p.gettotalrefcount,
                getobjects: p.getobjects,
                gil_enabled: p.gil_enabled,
                allocator: p.allocator,
                sanitizers: p.sanitizers,
            },
        });
    }
    Ok(variants)
}
