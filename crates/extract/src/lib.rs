//! Unpacks a CPython source archive (`.tgz` or `.tar.xz`) safely and atomically.
//!
//! [`extract_source_archive`] is the whole API. The compression is detected
//! from the magic bytes, never from the file name. Every entry must lie under
//! one top-level directory (`Python-3.13.5/`), which is stripped, so `dest`
//! becomes the source root (`dest/configure`).
//!
//! Safety: entries with absolute names or `..` components, symlinks that leave
//! the tree, hard links to outside it, devices, FIFOs and anything written
//! through a symlink are refused with [`ExtractError::Unsafe`], never skipped.
//! A hard link must name a regular file extracted earlier: a hard link to a
//! symlink is refused, because it would be that symlink at a new place, where
//! its relative target was never checked (`a/b/up -> ../..` is inside the
//! tree, the same link at the top resolves two levels above it). A hard link to
//! a directory or to nothing is refused as well.
//!
//! Leftovers: a run holds an advisory lock (`flock`) on its `.extracting-*`
//! directory while it writes. A `.extracting-*` directory nobody holds a lock on
//! was left by a killed run; [`remove_stale_temporaries`] (called by every
//! extraction) removes it. One that a live run is writing is never touched.
//!
//! Record: the tree holds a list of its files ([`RECORD_NAME`]), so a tree changed since
//! extraction is found by [`check_tree`] and never built from.
//!
//! Atomicity: the tree is built in a `.extracting-*` directory next to `dest`
//! and renamed to `dest` only after every entry succeeded. On any error that
//! directory is removed, so `dest` either holds the whole tree or does not
//! exist.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};

use camino::{Utf8Path, Utf8PathBuf};

mod paths;
mod record;
mod unpack;

pub use record::{RECORD_NAME, TreeChanged, check_tree};

#[cfg(test)]
mod tests;

/// What [`extract_source_archive`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extracted {
    /// Regular files written, hard links included.
    pub files: u64,
    /// Bytes of regular file contents written.
    pub bytes: u64,
}

/// Why an archive could not be extracted.
///
/// Whatever the variant, `dest` does not exist afterwards (except for
/// [`ExtractError::AlreadyExists`], where it is left untouched).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The destination already exists; nothing was written.
    #[error("destination {dest} already exists; remove it or extract somewhere else")]
    AlreadyExists {
        /// The destination that was asked for.
        dest: Utf8PathBuf,
    },
    /// The archive could not be opened or read.
    #[error("cannot read archive {archive}; check that it was downloaded and is readable")]
    Open {
        /// The archive.
        archive: Utf8PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The archive is neither gzip nor xz compressed.
    #[error(
        "{archive} is neither gzip nor xz compressed (unknown magic bytes); expected a cpython .tgz or .tar.xz source archive"
    )]
    UnknownFormat {
        /// The archive.
        archive: Utf8PathBuf,
    },
    /// The compressed stream or the tar data inside it is truncated or damaged.
    #[error("{archive} is truncated or corrupt; delete it and download it again")]
    Corrupt {
        /// The archive.
        archive: Utf8PathBuf,
        /// What the decoder or the tar reader reported.
        #[source]
        source: io::Error,
    },
    /// An entry would write outside the destination or create something that
    /// does not belong in a source tree.
    #[error(
        "refusing to extract {archive}: entry `{entry}` {reason}; a cpython source archive never has such entries, download it again from python.org"
    )]
    Unsafe {
        /// The archive.
        archive: Utf8PathBuf,
        /// The entry's name as stored in the archive.
        entry: String,
        /// What is wrong with it.
        reason: UnsafeReason,
    },
    /// The entries do not all lie under one top-level directory.
    #[error(
        "{archive} does not hold a single top-level directory: {detail}; expected every entry under one directory such as `Python-3.13.5/`"
    )]
    NotSingleTopDir {
        /// The archive.
        archive: Utf8PathBuf,
        /// Which entry broke the rule.
        detail: String,
    },
    /// A `.extracting-*` directory left by a killed run could not be removed.
    #[error(
        "cannot remove {path}, left behind by an interrupted extraction; delete it by hand and run again"
    )]
    Stale {
        /// The directory (or the parent that could not be listed).
        path: Utf8PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing below the destination's parent directory failed.
    #[error(
        "cannot write {path} while extracting {archive}; check that the destination's parent directory exists, is writable and has free space"
    )]
    Io {
        /// The archive.
        archive: Utf8PathBuf,
        /// The path that could not be written.
        path: Utf8PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What is wrong with an entry refused by [`ExtractError::Unsafe`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeReason {
    /// The name is not valid UTF-8.
    #[error("has a name that is not valid utf-8")]
    NotUtf8,
    /// The name starts with `/`.
    #[error("has an absolute path")]
    AbsolutePath,
    /// The name has a `..` component.
    #[error("has a `..` component")]
    ParentDir,
    /// A symlink or hard link without a target.
    #[error("is a link without a target")]
    MissingLinkTarget,
    /// A symlink to an absolute path.
    #[error("is a symlink to the absolute path `{target}`")]
    AbsoluteSymlink {
        /// The link target.
        target: String,
    },
    /// A symlink that resolves, from its directory, to outside the tree.
    #[error("is a symlink to `{target}`, which points outside the source tree")]
    SymlinkEscapes {
        /// The link target.
        target: String,
    },
    /// A symlink target with `..` after a name, which could escape through
    /// another symlink.
    #[error(
        "is a symlink to `{target}`, which has `..` after a name and could leave the source tree through another symlink"
    )]
    SymlinkParentAfterName {
        /// The link target.
        target: String,
    },
    /// A hard link whose target is not inside the top-level directory.
    #[error("is a hard link to `{target}`, which is outside the source tree")]
    HardLinkEscapes {
        /// The link target, relative to the archive root.
        target: String,
    },
    /// A hard link whose target is not a regular file extracted earlier.
    #[error("is a hard link to `{target}`, which is not a file extracted earlier from the archive")]
    HardLinkDangling {
        /// The link target, relative to the archive root.
        target: String,
    },
    /// A hard link to a symlink: the link would be a copy of the symlink at another place,
    /// where its target was never checked.
    #[error(
        "is a hard link to `{target}`, which is a symlink; its target was checked only where it was extracted"
    )]
    HardLinkToSymlink {
        /// The link target, relative to the archive root.
        target: String,
    },
    /// A hard link to a directory.
    #[error("is a hard link to `{target}`, which is a directory")]
    HardLinkToDirectory {
        /// The link target, relative to the archive root.
        target: String,
    },
    /// The entry would be written through a symlink extracted earlier.
    #[error("lies below a symlink extracted earlier")]
    ThroughSymlink,
    /// The entry replaces an earlier one.
    #[error("replaces an entry extracted earlier")]
    Duplicate,
    /// A character device.
    #[error("is a character device")]
    CharDevice,
    /// A block device.
    #[error("is a block device")]
    BlockDevice,
    /// A FIFO.
    #[error("is a fifo")]
    Fifo,
    /// Any other tar entry type.
    #[error("has the unsupported tar entry type `{}`", char::from(*.0))]
    UnsupportedType(u8),
}

/// Extracts the CPython source archive `archive` so that `dest` becomes the
/// source root (the single top-level directory is stripped).
///
/// `dest` must not exist and its parent directory must. The tree is built in a
/// temporary `.extracting-*` directory in that parent and renamed to `dest`
/// once complete, so on error `dest` does not exist and nothing is left
/// behind. Permission bits (without setuid, setgid and sticky; directories
/// always keep owner `rwx`) and modification times are kept; ownership is not.
pub fn extract_source_archive(
    archive: &Utf8Path,
    dest: &Utf8Path,
) -> Result<Extracted, ExtractError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(ExtractError::AlreadyExists { dest: dest.to_owned() });
    }
    let io_err = |path: &Utf8Path| {
        let archive = archive.to_owned();
        let path = path.to_owned();
        move |source| ExtractError::Io { archive, path, source }
    };
    let (parent, name) = match (dest.parent(), dest.file_name()) {
        (Some(parent), Some(name)) if parent.as_str().is_empty() => (Utf8Path::new("."), name),
        (Some(parent), Some(name)) => (parent, name),
        _ => {
            return Err(io_err(dest)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the destination must end in a directory name",
            )));
        }
    };

    let open_err = |source| ExtractError::Open { archive: archive.to_owned(), source };
    let mut file = File::open(archive).map_err(open_err)?;
    let format = Format::detect(&mut file)
        .map_err(open_err)?
        .ok_or_else(|| ExtractError::UnknownFormat { archive: archive.to_owned() })?;

    // Checked first, so the error names the parent, not a random temp name.
    fs::metadata(parent).map_err(io_err(parent))?;
    remove_stale_temporaries(parent)?;
    let LockedTemp { dir: mut tmp, lock: _lock } =
        LockedTemp::new(parent, name).map_err(io_err(parent))?;
    let root = Utf8PathBuf::from_path_buf(tmp.path().to_owned()).map_err(|path| {
        io_err(parent)(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("temporary directory {} is not valid utf-8", path.display()),
        ))
    })?;

    // Any `?` from here on drops `tmp`, which removes the partial tree.
    let extracted = unpack::unpack(archive, &root, format.decoder(file))?;
    // The record of what was extracted, inside the tree: they appear together.
    record::write(&root).map_err(io_err(&root))?;

    if fs::symlink_metadata(dest).is_ok() {
        return Err(ExtractError::AlreadyExists { dest: dest.to_owned() });
    }
    match fs::rename(&root, dest) {
        Ok(()) => {
            tmp.disable_cleanup(true);
            Ok(extracted)
        }
        Err(source)
            if matches!(
                source.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Err(ExtractError::AlreadyExists { dest: dest.to_owned() })
        }
        Err(source) => Err(io_err(dest)(source)),
    }
}

/// The prefix of the temporary directories extractions write into.
const TEMP_PREFIX: &str = ".extracting-";

/// A fresh `.extracting-<name>-*` directory in `parent`, and the advisory lock that marks it
/// as in use by this run. The directory is removed before the lock is released.
struct LockedTemp {
    dir: tempfile::TempDir,
    lock: File,
}

impl LockedTemp {
    fn new(parent: &Utf8Path, name: &str) -> io::Result<LockedTemp> {
        // Between creating the directory and locking it, another run's cleanup may take it
        // for stale (it is not locked yet): then the lock is taken, or the directory is gone,
        // and a new one is made.
        for _ in 0..16 {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{TEMP_PREFIX}{name}-"))
                .tempdir_in(parent)?;
            let lock = match File::open(dir.path()) {
                Ok(lock) => lock,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if worklock::hold_temporary(&lock, dir.path())? {
                return Ok(LockedTemp { dir, lock });
            }
        }
        Err(io::Error::other(format!(
            "could not create and lock a {TEMP_PREFIX}{name}-* directory: another run keeps removing them"
        )))
    }
}

/// Removes the `.extracting-*` directories in `parent` that were left by killed runs, and
/// returns them. A run holds an advisory lock on its directory while it extracts, so one
/// that can be locked here has no live owner; one that cannot is left alone. A missing
/// `parent` holds nothing.
pub fn remove_stale_temporaries(parent: &Utf8Path) -> Result<Vec<Utf8PathBuf>, ExtractError> {
    worklock::remove_unheld_temporaries(parent, TEMP_PREFIX)
        .map_err(|e| ExtractError::Stale { path: e.path, source: e.source })
}

/// The compression of an archive, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Gzip,
    Xz,
}

impl Format {
    const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
    const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

    /// Reads the magic bytes and rewinds; `None` for an unknown format.
    fn detect(file: &mut File) -> io::Result<Option<Format>> {
        let mut magic = Vec::with_capacity(Self::XZ_MAGIC.len());
        file.by_ref().take(Self::XZ_MAGIC.len() as u64).read_to_end(&mut magic)?;
        file.rewind()?;
        Ok(if magic.starts_with(Self::GZIP_MAGIC) {
            Some(Format::Gzip)
        } else if magic.starts_with(Self::XZ_MAGIC) {
            Some(Format::Xz)
        } else {
            None
        })
    }

    /// A reader of the decompressed tar stream. Both decoders accept
    /// concatenated streams, so trailing garbage is an error, not ignored.
    fn decoder(self, file: File) -> Box<dyn Read> {
        match self {
            Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
            Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(file)),
        }
    }
}
