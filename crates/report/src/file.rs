//! The results document on disk: the only file system access of this crate.
//!
//! A missing `report.json` is an empty document; any other file that is not a document of
//! this [`SCHEMA_VERSION`] is a [`ReadError`], never read as empty, so no command replaces a
//! file it could not read. [`ReadError::set_aside`] moves such a file to
//! `report.json.broken-<UTC time>` beside it (the caller decides: commands that would write
//! the document set it aside and stop; `report` and `--merge` leave their inputs in place).
//! Writing is the caller's (atomically, with `process::write_json_atomically`).

use std::{fmt, io};

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::document::{Document, SCHEMA_VERSION};

/// Why a results document could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The file exists (or must exist) but cannot be read: permissions, a directory, …
    Unreadable {
        /// The file.
        path: Utf8PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Not a results document: truncated, empty, not JSON, not of the document's shape.
    Unparsable {
        /// The file.
        path: Utf8PathBuf,
        /// What the parser said.
        source: serde_json::Error,
        /// Where the file is now.
        aside: Aside,
    },
    /// A results document with fields this version does not know below the top level and
    /// the cells (those two keep them): written by a newer version; reading it would drop
    /// them.
    UnknownFields {
        /// The file.
        path: Utf8PathBuf,
        /// Where the unknown fields are, `cells[0].suites[1].foo`.
        fields: Vec<String>,
    },
    /// A results document of another schema version.
    OtherSchema {
        /// The file.
        path: Utf8PathBuf,
        /// Its `schema_version`.
        found: u32,
        /// Where the file is now.
        aside: Aside,
    },
}

/// Where a file that could not be read is now.
#[derive(Debug)]
pub enum Aside {
    /// Still in place.
    Kept,
    /// Moved aside to this path.
    MovedTo(Utf8PathBuf),
    /// Still in place: moving it aside failed.
    MoveFailed(io::Error),
}

impl ReadError {
    /// The file that could not be read.
    pub fn path(&self) -> &Utf8Path {
        match self {
            ReadError::Unreadable { path, .. }
            | ReadError::UnknownFields { path, .. }
            | ReadError::Unparsable { path, .. }
            | ReadError::OtherSchema { path, .. } => path,
        }
    }

    /// Where the file was moved, if [`ReadError::set_aside`] moved it.
    pub fn moved_to(&self) -> Option<&Utf8Path> {
        match self {
            ReadError::Unparsable { aside: Aside::MovedTo(p), .. }
            | ReadError::OtherSchema { aside: Aside::MovedTo(p), .. } => Some(p),
            _ => None,
        }
    }

    /// Moves an unparsable or foreign-schema file aside, to `<file>.broken-<UTC time>`
    /// beside it, so that the next run starts a new document and this one is kept; the
    /// error then says where it went (or why it could not be moved). An unreadable file is
    /// left alone: the message says what to fix.
    pub fn set_aside(self) -> ReadError {
        match self {
            ReadError::Unparsable { path, source, aside: Aside::Kept } => {
                let aside = move_aside(&path);
                ReadError::Unparsable { path, source, aside }
            }
            ReadError::OtherSchema { path, found, aside: Aside::Kept } => {
                let aside = move_aside(&path);
                ReadError::OtherSchema { path, found, aside }
            }
            other => other,
        }
    }
}

fn move_aside(path: &Utf8Path) -> Aside {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| secs.to_string());
    let base = format!("{path}.broken-{stamp}");
    let mut target = Utf8PathBuf::from(&base);
    let mut n = 1;
    while target.symlink_metadata().is_ok() {
        target = Utf8PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    match std::fs::rename(path, &target) {
        Ok(()) => Aside::MovedTo(target),
        Err(e) => Aside::MoveFailed(e),
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aside = match self {
            ReadError::Unreadable { path, source } => {
                return write!(
                    f,
                    "cannot read the results document {path}: {source}; make it readable \
                     (or remove it to start a new document), then rerun"
                );
            }
            ReadError::Unparsable { path, source, aside } => {
                write!(f, "{path} is not a results document ({source})")?;
                aside
            }
            ReadError::UnknownFields { path, fields } => {
                return write!(
                    f,
                    "{path} has fields this version does not know ({}): a newer version \
                     wrote it, and rewriting it here would drop them; it was left as it is: \
                     use the newer version, or remove those fields, then rerun",
                    fields.join(", ")
                );
            }
            ReadError::OtherSchema { path, found, aside } => {
                write!(
                    f,
                    "{path} has schema version {found}; this tool reads version {SCHEMA_VERSION}"
                )?;
                aside
            }
        };
        match aside {
            Aside::Kept => write!(f, "; it was left as it is: repair or remove it, then rerun"),
            Aside::MovedTo(to) => write!(
                f,
                "; it was moved aside to {to} and nothing was recorded: rerun to start a \
                 new document, or repair it and move it back"
            ),
            Aside::MoveFailed(e) => write!(
                f,
                "; moving it aside failed ({e}): repair it or move it aside by hand, then rerun"
            ),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The causes are in the message already; `anyhow`'s chain would print them twice.
        None
    }
}

/// Only the version, read before the whole document so that a document of another version
/// is named as such instead of failing to parse.
#[derive(Deserialize)]
struct Version {
    schema_version: u32,
}

impl Document {
    /// Reads the document at `path`. A missing file is an empty document; anything else that
    /// is not a document of [`SCHEMA_VERSION`] is an error (see [`ReadError::set_aside`]).
    pub fn read(path: &Utf8Path) -> Result<Document, ReadError> {
        match std::fs::read(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Document::default()),
            Err(source) => Err(ReadError::Unreadable { path: path.to_owned(), source }),
            Ok(bytes) => parse(path, &bytes),
        }
    }

    /// Reads the document at `path` and merges it into this one ([`Document::merge`]);
    /// returns how many cells it had. A missing or broken file is refused, never skipped.
    pub fn merge_file(&mut self, path: &Utf8Path) -> Result<usize, ReadError> {
        let bytes = std::fs::read(path)
            .map_err(|source| ReadError::Unreadable { path: path.to_owned(), source })?;
        let other = parse(path, &bytes)?;
        let cells = other.cells.len();
        self.merge(other);
        Ok(cells)
    }
}

fn parse(path: &Utf8Path, bytes: &[u8]) -> Result<Document, ReadError> {
    let unparsable =
        |source| ReadError::Unparsable { path: path.to_owned(), source, aside: Aside::Kept };
    let Version { schema_version } = serde_json::from_slice(bytes).map_err(unparsable)?;
    if schema_version != SCHEMA_VERSION {
        return Err(ReadError::OtherSchema {
            path: path.to_owned(),
            found: schema_version,
            aside: Aside::Kept,
        });
    }
    let doc: Document = serde_json::from_slice(bytes).map_err(unparsable)?;
    // Whatever the types would not keep (unknown fields below the cells) is refused, never
    // dropped by writing the document back.
    let read: serde_json::Value = serde_json::from_slice(bytes).map_err(unparsable)?;
    let kept = serde_json::to_value(&doc).map_err(unparsable)?;
    let mut fields = Vec::new();
    dropped(&read, &kept, String::new(), &mut fields);
    if !fields.is_empty() {
        return Err(ReadError::UnknownFields { path: path.to_owned(), fields });
    }
    // Versions as versions: a document written when cells sorted as strings (3.13.15 before
    // 3.13.5) is put in order.
    let mut doc = doc;
    doc.cells.sort_by(|a, b| a.cell.cmp(&b.cell));
    Ok(doc)
}

/// The places of the object keys in `read` that `kept` lacks (at most 5 are named).
fn dropped(read: &serde_json::Value, kept: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match (read, kept) {
        (Value::Object(r), Value::Object(k)) => {
            for (key, value) in r {
                let place = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                match k.get(key) {
                    Some(kept) => dropped(value, kept, place, out),
                    None if value.is_null() => {}
                    None if out.len() < 5 => out.push(place),
                    None => {}
                }
            }
        }
        (Value::Array(r), Value::Array(k)) => {
            for (i, (r, k)) in r.iter().zip(k).enumerate() {
                dropped(r, k, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}
