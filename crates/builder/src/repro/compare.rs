//! Two installed trees compared file by file, as `diffoscope` would but on what a CPython
//! prefix holds: every path in either tree, its type and permission bits, a symlink's target,
//! and a regular file's bytes; a file that differs is explained by [`super::explain`].
//! Symlinks are never followed.

use std::{collections::BTreeMap, fs, os::unix::fs::PermissionsExt as _};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

/// One path that is not the same in both trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// Relative to the tree's root.
    pub path: Utf8PathBuf,
    /// What differs, one line: `ELF sections differ: .debug_info`, `.pyc header: mtime …`.
    pub what: String,
}

/// The result of comparing two trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Files and symlinks the same in both (directories are compared, not counted).
    pub identical: usize,
    /// Files and symlinks in either tree.
    pub files: usize,
    /// The others, sorted by path.
    pub differences: Vec<Difference>,
}

#[derive(Debug)]
enum Entry {
    Dir { mode: u32 },
    File { mode: u32 },
    Link { target: Utf8PathBuf },
    Other,
}

/// Compares `first` (the build as it was) with `second` (the rebuild).
pub fn compare_trees(first: &Utf8Path, second: &Utf8Path) -> anyhow::Result<Comparison> {
    let a = entries(first)?;
    let b = entries(second)?;
    let mut out = Comparison::default();
    let mut paths: Vec<&Utf8PathBuf> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let what = match (a.get(path), b.get(path)) {
            (Some(_), None) => Some("only in the first build".to_owned()),
            (None, Some(_)) => Some("only in the rebuild".to_owned()),
            (Some(x), Some(y)) => differ(&first.join(path), &second.join(path), x, y)?,
            (None, None) => None,
        };
        let directory = matches!(a.get(path).or(b.get(path)), Some(Entry::Dir { .. }));
        out.files += usize::from(!directory);
        match what {
            None if directory => {}
            None => out.identical += 1,
            Some(what) => out.differences.push(Difference { path: path.clone(), what }),
        }
    }
    Ok(out)
}

fn differ(a: &Utf8Path, b: &Utf8Path, x: &Entry, y: &Entry) -> anyhow::Result<Option<String>> {
    Ok(match (x, y) {
        (Entry::Dir { mode: m }, Entry::Dir { mode: n }) => mode_line(*m, *n),
        (Entry::Link { target: s }, Entry::Link { target: t }) => {
            (s != t).then(|| format!("symlink to {s}, then to {t}"))
        }
        (Entry::File { mode: m }, Entry::File { mode: n }) => {
            let read = |p: &Utf8Path| fs::read(p).with_context(|| format!("reading {p}"));
            let (bytes_a, bytes_b) = (read(a)?, read(b)?);
            let content =
                (bytes_a != bytes_b).then(|| super::explain::explain(a, &bytes_a, &bytes_b));
            match (content, mode_line(*m, *n)) {
                (None, mode) => mode,
                (Some(c), None) => Some(c),
                (Some(c), Some(mode)) => Some(format!("{c}; {mode}")),
            }
        }
        (Entry::Other, Entry::Other) => None,
        (x, y) => Some(format!("a {} in the first build, a {} in the rebuild", kind(x), kind(y))),
    })
}

fn mode_line(m: u32, n: u32) -> Option<String> {
    (m != n).then(|| format!("permissions {:04o}, then {:04o}", m & 0o7777, n & 0o7777))
}

fn kind(e: &Entry) -> &'static str {
    match e {
        Entry::Dir { .. } => "directory",
        Entry::File { .. } => "file",
        Entry::Link { .. } => "symlink",
        Entry::Other => "special file",
    }
}

/// Every path under `root` (not `root` itself), relative, with what it is.
fn entries(root: &Utf8Path) -> anyhow::Result<BTreeMap<Utf8PathBuf, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for item in dir.read_dir_utf8().with_context(|| format!("listing {dir}"))? {
            let item = item.with_context(|| format!("listing {dir}"))?;
            let path = item.path().to_owned();
            let meta = fs::symlink_metadata(&path).with_context(|| format!("reading {path}"))?;
            let mode = meta.permissions().mode();
            let entry = if meta.is_symlink() {
                let target = fs::read_link(&path).with_context(|| format!("reading {path}"))?;
                Entry::Link { target: Utf8PathBuf::try_from(target).unwrap_or_default() }
            } else if meta.is_dir() {
                stack.push(path.clone());
                Entry::Dir { mode }
            } else if meta.is_file() {
                Entry::File { mode }
            } else {
                Entry::Other
            };
            let relative = path.strip_prefix(root).unwrap_or(&path).to_owned();
            out.insert(relative, entry);
        }
    }
    Ok(out)
}

/// Every regular file under `root` (symlinks not followed), relative to it, sorted.
pub fn files(root: &Utf8Path) -> anyhow::Result<Vec<Utf8PathBuf>> {
    Ok(entries(root)?
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::File { .. }))
        .map(|(p, _)| p)
        .collect())
}

#[cfg(test)]
mod tests;
