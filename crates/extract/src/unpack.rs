//! Writes the entries of a decompressed tar stream below a fresh root directory.
//!
//! Only names checked by [`crate::paths`] are written, each below the root, and
//! never through a symlink: every parent directory on the way is either created
//! here or checked with `lstat`. Files are created with `O_EXCL`, so an entry
//! never replaces or follows what an earlier entry left. Directory modes and
//! times are applied last, deepest first, so writing into a directory does not
//! bump its mtime after it was set.

use std::collections::HashSet;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use tar::EntryType;

use crate::{ExtractError, Extracted, UnsafeReason, paths};

/// Unpacks the tar stream `tar` into the existing, empty directory `root`.
pub(crate) fn unpack(
    archive: &Utf8Path,
    root: &Utf8Path,
    tar: Box<dyn Read>,
) -> Result<Extracted, ExtractError> {
    let mut unpacker = Unpacker {
        archive,
        root,
        top: None,
        known_dirs: HashSet::new(),
        dirs: Vec::new(),
        extracted: Extracted::default(),
    };
    let mut tar = tar::Archive::new(tar);
    for entry in tar.entries().map_err(|e| unpacker.corrupt(e))? {
        let mut entry = entry.map_err(|e| unpacker.corrupt(e))?;
        unpacker.entry(&mut entry)?;
    }
    // The tar reader stops at the end-of-archive blocks; read the rest so the
    // decoder checks the stream's trailer (gzip CRC, xz index and check).
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(|e| unpacker.corrupt(e))?;
    unpacker.finish()
}

/// Mode and mtime of a directory, applied once all entries are written.
struct DirMeta {
    path: Utf8PathBuf,
    mode: u32,
    mtime: SystemTime,
}

struct Unpacker<'a> {
    archive: &'a Utf8Path,
    root: &'a Utf8Path,
    /// The single top-level directory, from the first entry.
    top: Option<String>,
    /// Real directories below the root, created or checked with `lstat`.
    known_dirs: HashSet<Utf8PathBuf>,
    dirs: Vec<DirMeta>,
    extracted: Extracted,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ExtractError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // pax global metadata (e.g. `git archive`'s commit id), not a file.
            return Ok(());
        }
        let raw_name = entry.path_bytes().into_owned();
        let Ok(name) = String::from_utf8(raw_name) else {
            let lossy = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            return Err(self.refuse(&lossy, UnsafeReason::NotUtf8));
        };
        let parts = paths::components(&name).map_err(|reason| self.refuse(&name, reason))?;

        let Some((first, rel)) = parts.split_first() else {
            // `./`: the archive root itself, above the top-level directory.
            return if kind == EntryType::Directory {
                Ok(())
            } else {
                Err(self.layout(format!("entry `{name}` is not inside a directory")))
            };
        };
        match &self.top {
            None => self.top = Some((*first).to_owned()),
            Some(top) if top == first => {}
            Some(top) => {
                let detail = format!("entry `{name}` is outside `{top}/`");
                return Err(self.layout(detail));
            }
        }

        if rel.is_empty() && kind != EntryType::Directory {
            return Err(self.layout(format!("entry `{name}` is not a directory")));
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&name, rel, entry)
            }
            EntryType::Directory => self.dir(&name, rel, entry),
            EntryType::Symlink => self.symlink(&name, rel, entry),
            EntryType::Link => self.hard_link(&name, rel, entry),
            EntryType::Char => Err(self.refuse(&name, UnsafeReason::CharDevice)),
            EntryType::Block => Err(self.refuse(&name, UnsafeReason::BlockDevice)),
            EntryType::Fifo => Err(self.refuse(&name, UnsafeReason::Fifo)),
            other => Err(self.refuse(&name, UnsafeReason::UnsupportedType(other.as_byte()))),
        }
    }

    fn file<R: Read>(
        &mut self,
        name: &str,
        rel: &[&str],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ExtractError> {
        let path = self.prepare(name, rel)?;
        let (mode, mtime) = self.metadata(entry)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.create_err(name, &path, e))?;
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(e)),
            };
            file.write_all(&buf[..n]).map_err(|e| self.io(&path, e))?;
            self.extracted.bytes += n as u64;
        }
        file.set_permissions(Permissions::from_mode(mode & 0o777))
            .and_then(|()| file.set_times(times(mtime)))
            .map_err(|e| self.io(&path, e))?;
        self.extracted.files += 1;
        Ok(())
    }

    fn dir<R: Read>(
        &mut self,
        name: &str,
        rel: &[&str],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ExtractError> {
        let path = if rel.is_empty() {
            self.root.to_owned()
        } else {
            let path = self.prepare(name, rel)?;
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // A directory listed twice, or after its contents: fine,
                    // as long as it really is a directory.
                    let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                    if !is_dir {
                        return Err(self.refuse(name, UnsafeReason::Duplicate));
                    }
                }
                Err(e) => return Err(self.io(&path, e)),
            }
            self.known_dirs.insert(path.clone());
            path
        };
        let (mode, mtime) = self.metadata(entry)?;
        self.dirs.push(DirMeta { path, mode, mtime });
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        name: &str,
        rel: &[&str],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ExtractError> {
        let target = self.link_target(name, entry)?;
        paths::check_symlink_target(&rel[..rel.len() - 1], &target)
            .map_err(|reason| self.refuse(name, reason))?;
        let path = self.prepare(name, rel)?;
        std::os::unix::fs::symlink(&target, &path).map_err(|e| self.create_err(name, &path, e))
    }

    fn hard_link<R: Read>(
        &mut self,
        name: &str,
        rel: &[&str],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ExtractError> {
        let target = self.link_target(name, entry)?;
        let top = self.top.clone().unwrap_or_default();
        let target_rel =
            paths::hard_link_target(&top, &target).map_err(|reason| self.refuse(name, reason))?;
        // The source must not be reached through a symlink either.
        let source = self.prepare(name, &target_rel)?;
        // Only a regular file may be linked: a hard link to a symlink would be that symlink
        // at a new place, where its relative target was never checked.
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_file() => {}
            Ok(meta) if meta.is_symlink() => {
                return Err(self.refuse(name, UnsafeReason::HardLinkToSymlink { target }));
            }
            Ok(meta) if meta.is_dir() => {
                return Err(self.refuse(name, UnsafeReason::HardLinkToDirectory { target }));
            }
            Ok(_) => return Err(self.refuse(name, UnsafeReason::HardLinkDangling { target })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.refuse(name, UnsafeReason::HardLinkDangling { target }));
            }
            Err(e) => return Err(self.io(&source, e)),
        }
        let path = self.prepare(name, rel)?;
        fs::hard_link(&source, &path).map_err(|e| self.create_err(name, &path, e))?;
        self.extracted.files += 1;
        Ok(())
    }

    /// Applies the deferred directory modes and times, deepest first.
    fn finish(self) -> Result<Extracted, ExtractError> {
        if self.top.is_none() {
            return Err(self.layout("the archive has no entries".to_owned()));
        }
        let mut dirs = self.dirs.iter().collect::<Vec<_>>();
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.path.components().count()));
        for dir in dirs {
            // Owner rwx stays so the tree can always be written and removed.
            fs::set_permissions(&dir.path, Permissions::from_mode(dir.mode & 0o777 | 0o700))
                .and_then(|()| File::open(&dir.path)?.set_times(times(dir.mtime)))
                .map_err(|e| self.io(&dir.path, e))?;
        }
        if !self.dirs.iter().any(|dir| dir.path == self.root) {
            // No entry for the top-level directory: not the temp dir's 0700.
            fs::set_permissions(self.root, Permissions::from_mode(0o755))
                .map_err(|e| self.io(self.root, e))?;
        }
        Ok(self.extracted)
    }

    /// Makes sure every parent of `rel` is a real directory below the root,
    /// creating missing ones, and returns the full path of `rel`.
    fn prepare(&mut self, name: &str, rel: &[&str]) -> Result<Utf8PathBuf, ExtractError> {
        let mut path = self.root.to_owned();
        let Some((last, parents)) = rel.split_last() else {
            return Ok(path);
        };
        for part in parents {
            path.push(part);
            if self.known_dirs.contains(&path) {
                continue;
            }
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_symlink() => {
                    return Err(self.refuse(name, UnsafeReason::ThroughSymlink));
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    let e = io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("a parent of entry `{name}` is not a directory"),
                    );
                    return Err(self.io(&path, e));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(|e| self.io(&path, e))?;
                }
                Err(e) => return Err(self.io(&path, e)),
            }
            self.known_dirs.insert(path.clone());
        }
        path.push(last);
        Ok(path)
    }

    fn link_target<R: Read>(
        &self,
        name: &str,
        entry: &tar::Entry<'_, R>,
    ) -> Result<String, ExtractError> {
        let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
        String::from_utf8(raw).map_err(|_| self.refuse(name, UnsafeReason::NotUtf8))
    }

    /// Permission bits (setuid, setgid and sticky dropped) and mtime; a pax
    /// `mtime` record wins over the header's whole seconds.
    fn metadata<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(u32, SystemTime), ExtractError> {
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.corrupt(e))?;
        let secs = header.mtime().map_err(|e| self.corrupt(e))?;
        let mut mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        if let Some(extensions) = entry.pax_extensions().map_err(|e| self.corrupt(e))? {
            for extension in extensions {
                let extension = extension.map_err(|e| self.corrupt(e))?;
                let pax = Some(extension.value_bytes())
                    .filter(|_| extension.key_bytes() == b"mtime")
                    .and_then(|value| std::str::from_utf8(value).ok())
                    .and_then(parse_pax_time);
                if let Some(pax) = pax {
                    mtime = SystemTime::UNIX_EPOCH + pax;
                }
            }
        }
        Ok((mode & 0o777, mtime))
    }

    fn refuse(&self, entry: &str, reason: UnsafeReason) -> ExtractError {
        ExtractError::Unsafe { archive: self.archive.to_owned(), entry: entry.to_owned(), reason }
    }

    fn layout(&self, detail: String) -> ExtractError {
        ExtractError::NotSingleTopDir { archive: self.archive.to_owned(), detail }
    }

    fn corrupt(&self, source: io::Error) -> ExtractError {
        ExtractError::Corrupt { archive: self.archive.to_owned(), source }
    }

    fn io(&self, path: &Utf8Path, source: io::Error) -> ExtractError {
        ExtractError::Io { archive: self.archive.to_owned(), path: path.to_owned(), source }
    }

    /// An error creating `path`: "already exists" means a duplicate entry.
    fn create_err(&self, name: &str, path: &Utf8Path, source: io::Error) -> ExtractError {
        if source.kind() == io::ErrorKind::AlreadyExists {
            self.refuse(name, UnsafeReason::Duplicate)
        } else {
            self.io(path, source)
        }
    }
}

fn times(mtime: SystemTime) -> FileTimes {
    FileTimes::new().set_accessed(mtime).set_modified(mtime)
}

/// Parses a non-negative pax time, `secs` or `secs.fraction`.
fn parse_pax_time(value: &str) -> Option<Duration> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = secs.parse::<u64>().ok()?;
    let digits = &frac[..frac.len().min(9)];
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    Some(Duration::new(secs, nanos))
}
