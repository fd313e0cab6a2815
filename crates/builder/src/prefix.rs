//! Whether a build that says it is complete still is: `manifest.json` parses and names this
//! build's key, and the installed interpreter is the file `make install` wrote (the path
//! `bin/python3` leads to, its size and sha256, recorded in the manifest). Checked before a
//! build is taken as cached, so a moved, replaced or emptied prefix is built again, never
//! trusted (issue 18). Hashing the interpreter costs a fraction of a second.

use std::{fs, io::Read as _};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use workdir::BuildDirs;

use crate::Manifest;

/// The installed interpreter, as `manifest.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpreter {
    /// Relative to the prefix: the file `bin/python3` leads to (`bin/python3.13`).
    pub path: Utf8PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its lowercase hex sha256.
    pub sha256: String,
}

/// Records the interpreter `make install` just wrote into `dirs.prefix`.
pub fn record(dirs: &BuildDirs) -> Result<Interpreter, String> {
    let link = dirs.python();
    let prefix = dirs
        .prefix
        .canonicalize_utf8()
        .map_err(|e| format!("{}: {e}; the install wrote no prefix", dirs.prefix))?;
    let target = link
        .canonicalize_utf8()
        .map_err(|e| format!("{link}: {e}; the install wrote no interpreter"))?;
    let path = target
        .strip_prefix(&prefix)
        .map_err(|_| format!("{link} leads to {target}, outside the prefix {prefix}"))?
        .to_owned();
    let (size, sha256) = digest(&target)?;
    Ok(Interpreter { path, size, sha256 })
}

/// Why the build in `dirs` with cache key `key` cannot be trusted as complete, or `None`
/// when its manifest and interpreter are whole. Only called when `manifest.json` exists.
pub fn damage(dirs: &BuildDirs, key: &str) -> Option<String> {
    let manifest = &dirs.manifest;
    let text = match fs::read_to_string(manifest) {
        Ok(text) => text,
        Err(e) => return Some(format!("{manifest} cannot be read ({e})")),
    };
    let parsed: Manifest = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => return Some(format!("{manifest} is not a build manifest ({e})")),
    };
    if parsed.key != key {
        return Some(format!("{manifest} records the key {}, not this build's", parsed.key));
    }
    let Some(recorded) = parsed.interpreter else {
        return Some(format!("{manifest} records no interpreter (an older version wrote it)"));
    };
    let file = dirs.prefix.join(&recorded.path);
    match fs::symlink_metadata(&file) {
        Err(e) => return Some(format!("the interpreter {file} is missing ({e})")),
        Ok(m) if !m.is_file() => return Some(format!("the interpreter {file} is not a file")),
        Ok(_) => {}
    }
    match digest(&file) {
        Err(e) => return Some(e),
        Ok((size, sha256)) if size != recorded.size || sha256 != recorded.sha256 => {
            return Some(format!(
                "the interpreter {file} changed since it was installed ({size} bytes, sha256 \
                 {sha256}; the manifest records {} bytes, sha256 {})",
                recorded.size, recorded.sha256
            ));
        }
        Ok(_) => {}
    }
    let link = dirs.python();
    let leads_to = |p: &Utf8Path| p.canonicalize_utf8().ok();
    if leads_to(&link).is_none() || leads_to(&link) != leads_to(&file) {
        return Some(format!("{link} no longer leads to the interpreter {file}"));
    }
    None
}

/// The processes whose working directory is `dir` or below it (read from `/proc`; processes
/// of other users are not visible and not listed), as `pid (command line)`: a `make` left
/// running by a killed run of an older version, or one whose watchdog was killed too. A
/// build directory in use is never built into.
pub fn users_of(dir: &Utf8Path) -> Vec<String> {
    let Ok(dir) = dir.canonicalize_utf8() else { return Vec::new() };
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut users = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(cwd) = fs::read_link(entry.path().join("cwd")) else { continue };
        if cwd.starts_with(&dir) {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            users.push(format!("{pid} ({})", cmdline.trim()));
        }
    }
    users.sort();
    users
}

/// The size and sha256 of `path`, read in blocks.
fn digest(path: &Utf8Path) -> Result<(u64, String), String> {
    let mut file = fs::File::open(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("reading {path}: {e}"))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests;
