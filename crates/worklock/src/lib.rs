//! Advisory locks that let several `cargo xtask` processes share one work directory: a run
//! that needs what another run is making (the same build, the same source tree, the same
//! cell's results, the results document) waits for it, saying which run and which lock it
//! waits for, and then uses what the first one finished.
//!
//! A lock is `flock(2)` on a file (`std::fs::File::lock`), so the kernel releases it when its
//! holder exits for any reason: a lock left by a killed process never blocks. The file holds
//! the holder's pid and command line, for the waiting message only; its contents never decide
//! anything. Waiting polls, so Ctrl-C (the shared cancel flag) ends it.
//!
//! Temporaries (`.download-*`, `.extracting-*`) are held the same way while written
//! ([`hold_temporary`]), so [`remove_unheld_temporaries`] removes only a killed run's.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{self, Read, Seek, Write},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use camino::{Utf8Path, Utf8PathBuf};

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The run was cancelled while waiting.
    #[error("interrupted while waiting for {what} ({path})")]
    Cancelled {
        /// What the lock protects.
        what: String,
        /// The lock file.
        path: Utf8PathBuf,
    },
    /// The lock file could not be created or locked.
    #[error("locking {path} ({what}): {source}")]
    Io {
        /// What the lock protects.
        what: String,
        /// The lock file.
        path: Utf8PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Held {
    _file: File,
    path: Utf8PathBuf,
}

impl Held {
    /// The lock file.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }
}

/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(200);

/// Takes the exclusive lock `path` (created with its directory), which protects `what`
/// (e.g. `the build 8a2d3dc7f0386987`). If another process holds it, says so once on stderr
/// (with the holder's pid and command) and waits until it is free or `cancel` is set.
pub fn acquire(path: &Utf8Path, what: &str, cancel: &AtomicBool) -> Result<Held, LockError> {
    let io_error = |source| LockError::Io { what: what.to_owned(), path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_error)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error)?;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if !said {
                    eprintln!("waiting for {what}: {path} is held by {}", holder(&mut file));
                    said = true;
                }
                if cancel.load(Ordering::SeqCst) {
                    return Err(LockError::Cancelled {
                        what: what.to_owned(),
                        path: path.to_owned(),
                    });
                }
                thread::sleep(POLL);
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
    }
    // Who holds it, for the next waiter's message; failing to write it changes nothing.
    let _ = file.set_len(0).and_then(|()| {
        file.rewind()?;
        let command: Vec<String> = std::env::args().collect();
        write!(file, "pid {} ({})", std::process::id(), command.join(" "))
    });
    if said {
        eprintln!("{what}: the other run is done, going on");
    }
    Ok(Held { _file: file, path: path.to_owned() })
}

/// The holder's description as it wrote it, or a placeholder.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    match text.trim() {
        "" => "another run".to_owned(),
        t => format!("another run, {t}"),
    }
}

#[cfg(test)]
mod tests;

/// A temporary (file or directory) that could not be listed, locked or removed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct TemporaryError {
    /// The temporary, or the directory being listed.
    pub path: Utf8PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// Locks the temporary `file` (opened from `path`) for this run, so that no other run takes
/// it for the leftover of a killed one. `Ok(false)`: another run's cleanup got to it between
/// its creation and this lock (it is locked elsewhere, or `path` is no longer this file);
/// make a new one.
pub fn hold_temporary(file: &File, path: &std::path::Path) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(same_file(file, path)),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Removes the entries of `dir` whose names start with `prefix` and that no live run holds
/// (see [`hold_temporary`]): the leftovers of killed runs. Returns what was removed; a
/// missing `dir` holds nothing.
pub fn remove_unheld_temporaries(
    dir: &Utf8Path,
    prefix: &str,
) -> Result<Vec<Utf8PathBuf>, TemporaryError> {
    let error = |path: &Utf8Path| {
        let path = path.to_owned();
        move |source| TemporaryError { path, source }
    };
    let entries = match dir.read_dir_utf8() {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(dir)(e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(error(dir))?;
        if !entry.file_name().starts_with(prefix) {
            continue;
        }
        let path = entry.into_path();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(error(&path)(e)),
        };
        if !hold_temporary(&file, path.as_std_path()).map_err(error(&path))? {
            continue;
        }
        let result = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        match result {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(&path)(e)),
        }
    }
    Ok(removed)
}

/// Whether the open `file` is still the file at `path` (same device and inode).
fn same_file(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
