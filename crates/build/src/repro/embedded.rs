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
mod tests {
    use super::*;

    #[test]
    fn compiled_files_never_name_the_directories_and_the_listed_text_files_may() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = Utf8Path::from_path(tmp.path()).expect("test fixture");
        let (src, build, prefix) =
            (root.join("src/3.11.2"), root.join("builds/k/build"), root.join("builds/k/prefix"));
        let lib = prefix.join("lib/python3.11");
        fs::create_dir_all(lib.join("__pycache__")).expect("test fixture");
        fs::create_dir_all(lib.join("lib-dynload")).expect("test fixture");
        fs::create_dir_all(prefix.join("lib/pkgconfig")).expect("test fixture");
        let sysconfig = lib.join("_sysconfigdata_d_linux_x86_64-linux-gnu.py");
        fs::write(&sysconfig, format!("'abs_srcdir': '{src}', 'abs_builddir': '{build}'"))
            .expect("test fixture");
        fs::write(
            lib.join("lib-dynload/_gdbm.cpython-311d-x86_64-linux-gnu.so"),
            format!("\x7fELF\0\0{build}/Modules/_gdbmmodule.o\0"),
        )
        .expect("test fixture");
        // The prefix is named by design and is not what is scanned for.
        fs::write(prefix.join("lib/pkgconfig/python-3.11.pc"), format!("prefix={prefix}\n"))
            .expect("test fixture");
        fs::write(lib.join("notes.txt"), format!("see {src}/README\n")).expect("test fixture");

        let found = scan(&prefix, &src, &build).expect("test fixture");
        let lines: Vec<String> = found
            .iter()
            .map(|e| {
                format!(
                    "{} {:?} compiled={} {}",
                    e.path,
                    e.names,
                    e.compiled,
                    if e.allowed.is_some() { "allowed" } else { "DEFECT" }
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "lib/python3.11/_sysconfigdata_d_linux_x86_64-linux-gnu.py [\"source\", \"build\"] compiled=false allowed",
                "lib/python3.11/lib-dynload/_gdbm.cpython-311d-x86_64-linux-gnu.so [\"build\"] compiled=true DEFECT",
                "lib/python3.11/notes.txt [\"source\"] compiled=false DEFECT",
            ]
        );
    }

    #[test]
    fn patterns_match_within_one_component() {
        assert!(matches(
            "lib/python3.*/config-3.*/Makefile",
            "lib/python3.11/config-3.11d-x86_64-linux-gnu/Makefile"
        ));
        assert!(!matches("lib/python3.*/Makefile", "lib/python3.11/config-3.11d/Makefile"));
        assert!(!matches(
            "lib/python3.*/_sysconfigdata_*.py",
            "lib/python3.11/_sysconfigdata_d.pyc"
        ));
    }
}
