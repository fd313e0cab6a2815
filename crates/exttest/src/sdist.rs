//! The sdists of `pypi` suites, shared by all cells under `<work>/sdists/NAME-VERSION/`: each
//! downloaded once by `pip download` (which checks the sha256 PyPI publishes for the file),
//! its digest recorded beside it when it is downloaded ([`RECORD`]), and checked before every
//! use against that record and against the suite's pinned `sha256` ([`check_cached`]). A
//! cached sdist that fails the check (truncated, replaced) is removed and downloaded again; a
//! download that fails the pin is refused and not kept. An sdist is never tested unchecked.

use std::{fs, io};

use anyhow::{Context as _, bail};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest as _, Sha256};

use crate::suite::PypiSpec;

/// The file beside a cached sdist that records its sha256 when it was downloaded, in
/// `sha256sum`'s format (`DIGEST  FILE`).
pub(crate) const RECORD: &str = "sdist.sha256";

/// What a cached sdist directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    /// No sdist: download it.
    Missing,
    /// An sdist whose digest matches its record and the pin.
    Good(Utf8PathBuf),
    /// An sdist that must not be tested: why, and where it is.
    Bad {
        /// The sdist (or the directory, when its record names another file).
        path: Utf8PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// The lowercase hex sha256 of the file at `path`.
pub(crate) fn sha256_file(path: &Utf8Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The sdist in `dir` (a `.tar.gz` pip downloaded).
fn find_sdist(dir: &Utf8Path) -> Option<Utf8PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .find(|p| p.as_str().ends_with(".tar.gz"))
}

/// Checks the cached sdist in `dir`: its sha256 must be the one recorded when it was
/// downloaded, and the suite's `pin` where it has one.
pub(crate) fn check_cached(dir: &Utf8Path, pin: Option<&str>) -> Cached {
    let Some(sdist) = find_sdist(dir) else { return Cached::Missing };
    let bad = |why: String| Cached::Bad { path: sdist.clone(), why };
    let digest = match sha256_file(&sdist) {
        Ok(d) => d,
        Err(e) => return bad(format!("cannot be read ({e})")),
    };
    let record = fs::read_to_string(dir.join(RECORD)).ok();
    let recorded = record.as_deref().and_then(|r| {
        let (digest, file) = r.trim_end().split_once("  ")?;
        Some((digest.to_owned(), file.to_owned()))
    });
    match recorded {
        None => return bad(format!("has no {RECORD} recorded at its download")),
        Some((_, file)) if Some(file.as_str()) != sdist.file_name() => {
            return bad(format!("is not the file recorded at its download ({file})"));
        }
        Some((recorded, _)) if recorded != digest => {
            return bad(format!(
                "has sha256 {digest}, not the {recorded} recorded at its download: truncated or \
                 replaced"
            ));
        }
        Some(_) => {}
    }
    if let Some(pin) = pin
        && pin != digest
    {
        return bad(format!("has sha256 {digest}, not the {pin} its suite pins"));
    }
    Cached::Good(sdist)
}

/// The sdist of `spec` in the shared cache `sdists`, checked ([`check_cached`]); downloaded
/// (again) by `download` into an empty directory when missing or bad. `note` is told what
/// was wrong with a cached one. `download` runs `pip download`.
pub(crate) fn sdist(
    sdists: &Utf8Path,
    spec: &PypiSpec,
    pin: Option<&str>,
    note: impl Fn(&str),
    download: impl FnOnce(&Utf8Path) -> anyhow::Result<()>,
) -> anyhow::Result<Utf8PathBuf> {
    let dir = sdists.join(spec.dir_name());
    match check_cached(&dir, pin) {
        Cached::Good(sdist) => return Ok(sdist),
        Cached::Missing => {}
        Cached::Bad { path, why } => {
            note(&format!("the cached sdist {path} {why}; downloading it again"));
            fs::remove_dir_all(&dir).with_context(|| {
                format!("the cached sdist {path} {why}, and {dir} could not be removed; delete it")
            })?;
        }
    }
    // Downloaded beside the cache's directory and renamed into place once checked, so the
    // cache never holds a partial or unchecked download.
    let temporary = sdists.join(format!(".{}.download-{}", spec.dir_name(), std::process::id()));
    if temporary.exists() {
        fs::remove_dir_all(&temporary).with_context(|| format!("removing {temporary}"))?;
    }
    fs::create_dir_all(&temporary).with_context(|| format!("creating {temporary}"))?;
    let kept = keep_download(&temporary, &dir, spec, pin, download);
    let _ = fs::remove_dir_all(&temporary);
    kept?;
    match check_cached(&dir, pin) {
        Cached::Good(sdist) => Ok(sdist),
        Cached::Missing => bail!("the sdist of {spec} is gone from {dir}"),
        Cached::Bad { path, why } => bail!("the sdist {path} {why}"),
    }
}

/// Downloads into `temporary`, checks the pin, records the digest, renames to `dir`.
fn keep_download(
    temporary: &Utf8Path,
    dir: &Utf8Path,
    spec: &PypiSpec,
    pin: Option<&str>,
    download: impl FnOnce(&Utf8Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    download(temporary)?;
    let sdist = find_sdist(temporary)
        .with_context(|| format!("pip download {spec} left no .tar.gz in {temporary}"))?;
    let digest = sha256_file(&sdist).with_context(|| format!("reading {sdist}"))?;
    if let Some(pin) = pin
        && pin != digest
    {
        bail!(
            "the sdist of {spec} from PyPI has sha256 {digest}, but its suite pins {pin}: not \
             kept, not tested; check the pin against https://pypi.org/project/{}/{}/#files",
            spec.name,
            spec.version
        );
    }
    let name = sdist.file_name().unwrap_or_default();
    fs::write(temporary.join(RECORD), format!("{digest}  {name}\n"))
        .with_context(|| format!("writing {}", temporary.join(RECORD)))?;
    match fs::rename(temporary, dir) {
        Ok(()) => Ok(()),
        // Another run put it there first: its copy is checked like any cached one.
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("renaming {temporary} to {dir}")),
    }
}

#[cfg(test)]
mod tests;
