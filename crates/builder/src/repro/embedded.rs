//! Which installed files name the source or the build directory, and whether each may.
//!
//! Compiled files never may: `make` maps both directories to fixed names
//! (`configure::BuildPlan::prefix_map_args`), so an ELF file (interpreter, `libpython`,
//! extension module, object file in the static library) that names one is a defect. A few
//! text files must, because CPython writes its build's own description into the install:
//! [`ALLOWED`] lists them with why; anything else that names a directory is a defect too,
//! so the list cannot grow unnoticed. (The install prefix is named by many more files, by
//! design: see README, "Across work directories".)

use std::fs;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};

/// The installed files that may name the source or build directory, as a path pattern
/// (`*` is any run of characters within one path component) and why they must.
pub const ALLOWED: &[(&str, &str)] = &[
    (
        "lib/python3.*/_sysconfigdata_*.py",
        "sysconfig's build variables (srcdir, abs_srcdir, abs_builddir, VPATH, the configure \
         line): CPython records where it was built, and sysconfig.is_python_build() and \
         extension builds read them",
    ),
    (
        "lib/python3.*/__pycache__/_sysconfigdata_*.pyc",
        "the bytecode of that module (three optimization levels)",
    ),
    (
        "lib/python3.*/config-3.*/Makefile",
        "the build's Makefile, installed for python-config and embedders, with srcdir and \
         VPATH as configure wrote them",
    ),
    (
        "lib/python3.*/config-3.*/config.c",
        "a comment made by makesetup: `Generated automatically from <srcdir>/Modules/config.c.in`",
    ),
    (
        "lib/python3.*/config-3.*/Setup.local",
        "makesetup's copy of the build directory's Modules/Setup.local (may name it)",
    ),
    (
        "lib/python3.*/build-details.json",
        "3.14's build description (PEP 739), which names the build's source directory",
    ),
];

/// One installed file that names a directory it must not name, or may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// Relative to the prefix.
    pub path: Utf8PathBuf,
    /// Which directories it names (`source`, `build`).
    pub names: Vec<&'static str>,
    /// `Some(why)` when [`ALLOWED`] lists it; `None`: a defect.
    pub allowed: Option<&'static str>,
    /// Whether it is an ELF file (which never may).
    pub compiled: bool,
}

/// Every file under `prefix` that contains `source_dir` or `build_dir`.
pub fn scan(
    prefix: &Utf8Path,
    source_dir: &Utf8Path,
    build_dir: &Utf8Path,
) -> anyhow::Result<Vec<Embedded>> {
    let needles: [(&'static str, &[u8]); 2] =
        [("source", source_dir.as_str().as_bytes()), ("build", build_dir.as_str().as_bytes())];
    let mut out = Vec::new();
    for path in super::compare::files(prefix)? {
        let file = prefix.join(&path);
        let bytes = fs::read(&file).with_context(|| format!("reading {file}"))?;
        let names: Vec<&'static str> = needles
            .iter()
            .filter(|(_, needle)| contains(&bytes, needle))
            .map(|(name, _)| *name)
            .collect();
        if names.is_empty() {
            continue;
        }
        let compiled = bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"!<arch>\n");
        let allowed = if compiled {
            None
        } else {
            ALLOWED.iter().find(|(pattern, _)| matches(pattern, path.as_str())).map(|(_, w)| *w)
        };
        out.push(Embedded { path, names, allowed, compiled });
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `path` matches `pattern`, component by component, `*` matching within one.
fn matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len() && p.iter().zip(&q).all(|(p, q)| glob(p.as_bytes(), q.as_bytes()))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.split_first().is_some_and(|(d, tail)| c == d && glob(rest, tail)),
    }
}

#[cfg(test)]
mod tests;
