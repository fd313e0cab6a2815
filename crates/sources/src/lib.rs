//! One verified, extracted CPython source tree per release, shared by all of its variants.
//!
//! [`prepare`] composes the steps in the only safe order: fetch the archive into the cache
//! (hashing while streaming), check the release manager's signature where the matrix pins a
//! key and a `.asc` exists, re-hash the cached archive immediately before extracting it, and
//! extract into a temporary directory that is renamed into place only when whole. A source
//! tree that exists is therefore complete and came from verified bytes; a rerun does nothing.
//! [`verify_cached`] re-checks what the cache holds, for `cargo xtask verify`.

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fetch::{Archive, Fetched, Fetcher, Origin};
use matrix::Release;
use verify::{Pin, SignatureInfo};
use workdir::Layout;

/// The archive spec of a release, for the fetcher.
pub fn archive(release: &Release) -> Archive {
    Archive {
        file_name: release.file_name().to_owned(),
        upstream_url: release.url.clone(),
        pin: Pin { sha256: release.sha256.clone(), size: release.size },
    }
}

/// What checking a release's signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The matrix pins no key for this release.
    NotSigned,
    /// A key is pinned but no source has a `.asc`; the sha256 pin still holds.
    Unavailable,
    /// A good signature by the pinned key.
    Good(SignatureInfo),
}

/// What [`prepare`] did for one release.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The release.
    pub version: matrix::PyVersion,
    /// The cached archive and where it came from (`Origin::Cache`: no download).
    pub archive: Fetched,
    /// The signature check, if one was made in this run.
    pub signature: Option<SignatureStatus>,
    /// The extracted source tree.
    pub source_dir: Utf8PathBuf,
    /// Whether this run extracted it (false: it was already there).
    pub extracted: bool,
}

impl Prepared {
    /// Whether this run did any work for the release.
    pub fn did_work(&self) -> bool {
        self.extracted || self.archive.origin != Origin::Cache
    }
}

/// Makes sure `release` is fetched, verified and extracted under `layout`.
pub fn prepare(
    fetcher: &Fetcher,
    layout: &Layout,
    matrix_dir: &Utf8Path,
    release: &Release,
) -> anyhow::Result<Prepared> {
    let spec = archive(release);
    let source_dir = layout.source_dir(release);
    let fetched =
        fetcher.fetch(&spec).with_context(|| format!("fetching CPython {}", release.version))?;
    let needs_extract = !source_dir.is_dir();
    let mut signature = None;
    if fetched.origin != Origin::Cache || needs_extract {
        signature = Some(check_signature(fetcher, matrix_dir, release, &spec, &fetched.path)?);
    }
    if needs_extract {
        // Never build from unverified bytes: the cache could have changed since it was filled.
        verify::check_file(&fetched.path, &spec.pin).with_context(|| {
            format!(
                "the cached archive of {} no longer matches its pin; delete {} and fetch again",
                release.version, fetched.path
            )
        })?;
        if let Some(parent) = source_dir.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {parent}"))?;
        }
        extract::extract_source_archive(&fetched.path, &source_dir)
            .with_context(|| format!("extracting {} into {source_dir}", fetched.path))?;
    }
    Ok(Prepared {
        version: release.version,
        archive: fetched,
        signature,
        source_dir,
        extracted: needs_extract,
    })
}

fn check_signature(
    fetcher: &Fetcher,
    matrix_dir: &Utf8Path,
    release: &Release,
    spec: &Archive,
    archive_path: &Utf8Path,
) -> anyhow::Result<SignatureStatus> {
    let (Some(fingerprint), Some(key)) =
        (&release.signing_key, release.signing_key_path(matrix_dir))
    else {
        return Ok(SignatureStatus::NotSigned);
    };
    if !key.is_file() {
        bail!(
            "matrix/versions.toml pins signing key {fingerprint} for {} but {key} is missing; \
             add the release manager's public key there",
            release.version
        );
    }
    let Some(asc) = fetcher.fetch_signature(spec)? else {
        return Ok(SignatureStatus::Unavailable);
    };
    let info =
        verify::check_signature(archive_path, &asc, &key, fingerprint).with_context(|| {
            // A bad signature must not linger in the cache to fail every later run.
            let _ = std::fs::remove_file(&asc);
            format!("checking the signature of {}", spec.file_name)
        })?;
    Ok(SignatureStatus::Good(info))
}

/// The result of re-checking one cached archive.
#[derive(Debug)]
pub struct CacheCheck {
    /// The release.
    pub version: matrix::PyVersion,
    /// The cached file, if there is one.
    pub path: Option<Utf8PathBuf>,
    /// The signature status (only when the archive is cached and matches its pin).
    pub signature: Option<SignatureStatus>,
}

/// Re-checks the cached archive of `release` against its pin and, where a `.asc` sits beside
/// it, against the pinned key. A missing archive is not an error (`path: None`); a
/// mismatching one is, and it is removed so the next fetch replaces it.
pub fn verify_cached(
    fetcher: &Fetcher,
    matrix_dir: &Utf8Path,
    release: &Release,
) -> anyhow::Result<CacheCheck> {
    let spec = archive(release);
    let path = fetcher.cache_path(&spec);
    if !path.is_file() {
        return Ok(CacheCheck { version: release.version, path: None, signature: None });
    }
    if let Err(err) = verify::check_file(&path, &spec.pin) {
        let _ = std::fs::remove_file(&path);
        return Err(err).with_context(|| {
            format!(
                "cached archive of {} is corrupt and was removed; run `cargo xtask fetch`",
                release.version
            )
        });
    }
    let asc = Utf8PathBuf::from(format!("{path}.asc"));
    let signature = match (&release.signing_key, release.signing_key_path(matrix_dir)) {
        (Some(fingerprint), Some(key)) if asc.is_file() => {
            let info = verify::check_signature(&path, &asc, &key, fingerprint)
                .with_context(|| format!("checking the signature of {}", spec.file_name))?;
            SignatureStatus::Good(info)
        }
        (Some(_), Some(_)) => SignatureStatus::Unavailable,
        _ => SignatureStatus::NotSigned,
    };
    Ok(CacheCheck { version: release.version, path: Some(path), signature: Some(signature) })
}
