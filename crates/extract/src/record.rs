//! What an extracted tree held when it was extracted, so a tree changed since (a file removed,
//! replaced or added) is never built from (issue 18).
//!
//! Extraction writes the record into the tree itself, as [`RECORD_NAME`], before the tree is
//! renamed into place: a tree and its record appear together or not at all. One line per
//! file or symlink: kind, size, modification time (ns) and path. [`check_tree`] compares the
//! tree with it by metadata alone (a few milliseconds for CPython's ~5000 files), skipping
//! `__pycache__` directories, which an out-of-tree build's interpreter writes into `Lib/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;

use camino::{Utf8Path, Utf8PathBuf};

/// The record's file name, at the top of the tree.
pub const RECORD_NAME: &str = ".debug-matrix-files";

const HEADER: &str = "debug-matrix extracted tree, format 1";

/// How many changes a [`TreeChanged`] names before it counts the rest.
const NAMED: usize = 5;

/// Why a tree cannot be taken as the one extracted.
#[derive(Debug, thiserror::Error)]
pub enum TreeChanged {
    /// The tree has no record (extracted by an older version, or the record was removed).
    #[error("{tree} has no record of its extraction ({RECORD_NAME})")]
    NoRecord {
        /// The tree.
        tree: Utf8PathBuf,
    },
    /// Its files differ from the record.
    #[error("{tree} changed since it was extracted: {}{}", changes.join(", "),
        if *more > 0 { format!(" and {more} more") } else { String::new() })]
    Changed {
        /// The tree.
        tree: Utf8PathBuf,
        /// The first changes, `removed Lib/os.py`, `changed configure`, `added x`.
        changes: Vec<String>,
        /// How many more there are.
        more: usize,
    },
    /// The tree or its record cannot be read.
    #[error("reading {path}")]
    Io {
        /// What could not be read.
        path: Utf8PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

type Listing = BTreeMap<String, String>;

/// Every file and symlink under `root` (relative path → `kind size mtime`), the record and
/// `__pycache__` directories left out.
fn list(root: &Utf8Path) -> Result<Listing, TreeChanged> {
    let io = |path: &Utf8Path| {
        let path = path.to_owned();
        move |source| TreeChanged::Io { path, source }
    };
    let mut out = Listing::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in dir.read_dir_utf8().map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(path).map_err(io(path))?;
            let rel = path.strip_prefix(root).unwrap_or(path).as_str().to_owned();
            if meta.is_dir() {
                if entry.file_name() != "__pycache__" {
                    stack.push(path.to_owned());
                }
                continue;
            }
            if rel == RECORD_NAME {
                continue;
            }
            let kind = if meta.is_file() {
                'f'
            } else if meta.file_type().is_symlink() {
                'l'
            } else {
                'o'
            };
            let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            out.insert(rel, format!("{kind}\t{}\t{mtime}", meta.len()));
        }
    }
    Ok(out)
}

/// Writes the record of the tree at `root` into it.
pub(crate) fn write(root: &Utf8Path) -> io::Result<()> {
    let listing = list(root).map_err(|e| match e {
        TreeChanged::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    let mut text = format!("{HEADER}\n");
    for (path, meta) in &listing {
        if path.contains('\n') {
            return Err(io::Error::other(format!("{path:?}: a file name with a line break")));
        }
        let _ = writeln!(text, "{meta}\t{path}");
    }
    // The root keeps the modification time the archive gave it.
    let mtime = fs::metadata(root)?.modified()?;
    fs::write(root.join(RECORD_NAME), text)?;
    fs::File::open(root)?.set_modified(mtime)
}

/// Whether the tree at `tree` still holds what was extracted: the same files and symlinks,
/// each with its recorded size and modification time, and nothing added (outside
/// `__pycache__`).
pub fn check_tree(tree: &Utf8Path) -> Result<(), TreeChanged> {
    let record = tree.join(RECORD_NAME);
    let text = match fs::read_to_string(&record) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TreeChanged::NoRecord { tree: tree.to_owned() });
        }
        Err(source) => return Err(TreeChanged::Io { path: record, source }),
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(TreeChanged::NoRecord { tree: tree.to_owned() });
    }
    let mut recorded = Listing::new();
    for line in lines {
        let mut parts = line.splitn(4, '\t');
        let (Some(kind), Some(size), Some(mtime), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TreeChanged::NoRecord { tree: tree.to_owned() });
        };
        recorded.insert(path.to_owned(), format!("{kind}\t{size}\t{mtime}"));
    }
    let mut found = list(tree)?;
    let mut changes = Vec::new();
    for (path, meta) in &recorded {
        match found.remove(path) {
            None => changes.push(format!("removed {path}")),
            Some(now) if &now != meta => changes.push(format!("changed {path}")),
            Some(_) => {}
        }
    }
    changes.extend(found.keys().map(|path| format!("added {path}")));
    if changes.is_empty() {
        return Ok(());
    }
    let more = changes.len().saturating_sub(NAMED);
    changes.truncate(NAMED);
    Err(TreeChanged::Changed { tree: tree.to_owned(), changes, more })
}
