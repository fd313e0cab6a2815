//! One verified, extracted CPython source tree per release, shared by all of its variants.
//!
//! [`prepare`] composes the steps in the only safe order: fetch the archive into the cache
//! (hashing while streaming), check the release manager's signatures (a `.asc` where the
//! matrix pins a key, a `.sigstore` bundle where it pins the line's Sigstore signer; from 3.14
//! on a good bundle is required unless the matrix says `trusted-by-pin`), re-hash the cached
//! archive immediately before extracting it, and
//! extract into a temporary directory that is renamed into place only when whole. A source
//! tree that exists is therefore complete and came from verified bytes; a rerun does nothing,
//! unless the tree changed since extraction (`extract::check_tree`): then it is removed and
//! extracted again.
//! [`verify_cached`] re-checks what the cache holds, for `cargo xtask verify`.

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use fetch::{Archive, Fetched, Fetcher, Origin};
use matrix::Release;
use verify::{BundleInfo, Pin, SignatureInfo, SigstoreIdentity, VerifyError};
use workdir::Layout;

/// The archive spec of a release, for the fetcher.
pub fn archive(release: &Release) -> Archive {
    Archive {
        file_name: release.file_name().to_owned(),
        upstream_url: release.url.clone(),
        pin: Pin { sha256: release.sha256.clone(), size: release.size },
    }
}

/// What checking one kind of signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check<T> {
    /// The matrix pins no key (or no Sigstore signer) for this release.
    NotPinned,
    /// One is pinned, but no source has the file.
    Unavailable,
    /// A good signature by the pinned signer.
    Good(T),
}

/// What checking a release's signatures found: the `.asc` against the pinned OpenPGP key and
/// the `.sigstore` bundle against the release line's pinned Sigstore signer. Every file found
/// must verify; a missing one is an error only from 3.14 on (a missing bundle, unless the
/// matrix says `trusted-by-pin`), so a status is never worse than "taken on its pin".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureStatus {
    /// The detached OpenPGP signature.
    pub openpgp: Check<SignatureInfo>,
    /// The Sigstore bundle.
    pub sigstore: Check<BundleInfo>,
    /// Why the pin alone is trusted, where the matrix says so and no bundle was found.
    pub trusted_by_pin: Option<String>,
}

impl SignatureStatus {
    /// Whether any signature was checked and found good.
    pub fn is_signed(&self) -> bool {
        matches!(self.openpgp, Check::Good(_)) || matches!(self.sigstore, Check::Good(_))
    }

    /// One line for people: `good signature by … (FPR); good Sigstore bundle by …`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match &self.openpgp {
            Check::NotPinned => {}
            Check::Unavailable => parts.push("no .asc signature available".to_owned()),
            Check::Good(info) => {
                parts.push(format!("good signature by {} ({})", info.signer, info.fingerprint))
            }
        }
        match &self.sigstore {
            Check::NotPinned => {}
            Check::Unavailable => parts.push("no .sigstore bundle available".to_owned()),
            Check::Good(info) => parts.push(format!(
                "good Sigstore bundle by {} ({}{})",
                info.email,
                info.issuer,
                info.logged_at.as_ref().map_or(String::new(), |t| format!(", logged {t}"))
            )),
        }
        if let Some(why) = &self.trusted_by_pin {
            parts.push(format!("trusted on its sha256 pin: {why}"));
        } else if !self.is_signed() {
            parts.push(if parts.is_empty() {
                "no signature pinned (sha256 pin checked)".to_owned()
            } else {
                "sha256 pin checked".to_owned()
            });
        }
        parts.join(", ")
    }

    /// A few words for the results document: who signed, by fingerprint or email.
    pub fn summary(&self) -> String {
        let mut signers = Vec::new();
        if let Check::Good(info) = &self.openpgp {
            signers.push(format!("good signature by {}", info.fingerprint));
        }
        if let Check::Good(info) = &self.sigstore {
            signers.push(format!("good Sigstore bundle by {}", info.email));
        }
        match (&self.trusted_by_pin, signers.is_empty()) {
            (_, false) => format!("sha256 pin; {}", signers.join(", ")),
            (Some(_), true) => {
                "sha256 pin alone (trusted-by-pin in matrix/versions.toml)".to_owned()
            }
            (None, true) => "sha256 pin; no signature".to_owned(),
        }
    }
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
///
/// The order: fetch (cache, mirrors, upstream); when the archive came from the cache,
/// re-hash it against its pin *first*: a cached archive that no longer
/// matches is removed (saying so on stderr) and fetched again, so a damaged cache never
/// sticks and is never blamed on the signature. Then the signature, against an archive known
/// to be the pinned bytes: a bad signature is the `.asc`'s fault, and only then is the `.asc`
/// removed from the cache. Then extraction, right after the last re-hash.
pub fn prepare(
    fetcher: &Fetcher,
    layout: &Layout,
    matrix_dir: &Utf8Path,
    release: &Release,
) -> anyhow::Result<Prepared> {
    let spec = archive(release);
    let source_dir = layout.source_dir(release);
    if let Some(parent) = source_dir.parent() {
        // Trees a killed run was extracting; never one a live run holds.
        extract::remove_stale_temporaries(parent)
            .with_context(|| format!("cleaning up after an interrupted run in {parent}"))?;
    }
    let fetch =
        || fetcher.fetch(&spec).with_context(|| format!("fetching CPython {}", release.version));
    let mut fetched = fetch()?;
    if source_dir.is_dir() {
        set_aside_if_changed(&source_dir, release)?;
    }
    let needs_extract = !source_dir.is_dir();
    let mut rehashed = false;
    // Every run re-hashes a cached archive (a fraction of a second), so "archive cached" is
    // never said of bytes that no longer match their pin, extracted already or not.
    if fetched.origin == Origin::Cache {
        match verify::check_file(&fetched.path, &spec.pin) {
            Ok(()) => rehashed = true,
            Err(err @ (VerifyError::Size { .. } | VerifyError::Digest { .. })) => {
                remove_corrupt(&fetched.path, release, &err)?;
                eprintln!(
                    "{}: the cached archive {} no longer matched its pin ({}); removed it and fetching it again",
                    release.version,
                    fetched.path,
                    mismatch(&err)
                );
                fetched = fetch()?;
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("re-checking the cached archive of {}", release.version)
                });
            }
        }
    }
    let mut signature = None;
    if fetched.origin != Origin::Cache || needs_extract {
        signature = Some(check_signature(fetcher, matrix_dir, release, &spec, &fetched.path)?);
    }
    if needs_extract {
        if !rehashed {
            // Never build from unverified bytes: the cache could have changed since it was
            // filled.
            verify::check_file(&fetched.path, &spec.pin).with_context(|| {
                format!(
                    "the cached archive of {} no longer matches its pin; it was kept for \
                     inspection: delete {} and run again to fetch it again",
                    release.version, fetched.path
                )
            })?;
        }
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

/// Removes the source tree of `release` if it changed since extraction (or has no record of
/// it), saying so on stderr, so that it is extracted again from the verified archive: a
/// tree is never trusted for existing (issue 18).
fn set_aside_if_changed(source_dir: &Utf8Path, release: &Release) -> anyhow::Result<()> {
    let why = match extract::check_tree(source_dir) {
        Ok(()) => return Ok(()),
        Err(why) => why,
    };
    std::fs::remove_dir_all(source_dir).with_context(|| {
        format!(
            "{}: {why}; it could not be removed: delete {source_dir} by hand, then rerun",
            release.version
        )
    })?;
    eprintln!("{}: {why}; removed it and extracting it again", release.version);
    Ok(())
}

/// Removes a cached archive that no longer matches its pin, or says why it could not.
fn remove_corrupt(path: &Utf8Path, release: &Release, err: &VerifyError) -> anyhow::Result<()> {
    std::fs::remove_file(path).with_context(|| {
        format!(
            "the cached archive {path} of {} no longer matches its pin ({}) and could not be \
             removed; delete it by hand, then run again",
            release.version,
            mismatch(err)
        )
    })
}

/// What is wrong with bytes that do not match their pin, in a few words.
fn mismatch(err: &VerifyError) -> String {
    match err {
        VerifyError::Size { expected, actual, .. } => {
            format!("{actual} bytes instead of the pinned {expected}")
        }
        VerifyError::Digest { actual, .. } => format!("sha256 {actual} instead of the pinned one"),
        other => other.to_string(),
    }
}

fn check_signature(
    fetcher: &Fetcher,
    matrix_dir: &Utf8Path,
    release: &Release,
    spec: &Archive,
    archive_path: &Utf8Path,
) -> anyhow::Result<SignatureStatus> {
    let openpgp = check_openpgp(fetcher, matrix_dir, release, spec, archive_path)?;
    let bundle = fetcher
        .fetch_bundle(spec)
        .with_context(|| format!("fetching the Sigstore bundle of {}", spec.file_name))?;
    let sigstore = match bundle {
        None => absent_bundle(release),
        Some(bundle) => match check_bundle(release, spec, archive_path, &bundle) {
            Err(err) if err.downcast_ref::<VerifyError>().is_some_and(is_bundle_fault) => {
                // The archive matches its pin (checked before), so the bundle is at fault. A
                // bad one must not linger in the cache to fail every later run.
                let what = match std::fs::remove_file(&bundle) {
                    Ok(()) => format!(
                        "{bundle} was removed from the cache; the next run fetches it again \
                         from the mirrors, so replace it there with the release's .sigstore \
                         from python.org"
                    ),
                    Err(e) => {
                        format!("{bundle} could not be removed from the cache ({e}); delete it")
                    }
                };
                return Err(err.context(format!(
                    "checking the Sigstore bundle of {} (the archive matches its pin; {what})",
                    spec.file_name
                )));
            }
            other => other?,
        },
    };
    finish(release, openpgp, sigstore)
}

/// Whether a verification error is the bundle's fault (not the file system's).
fn is_bundle_fault(err: &VerifyError) -> bool {
    matches!(err, VerifyError::Bundle { .. })
}

/// The `.asc` against the pinned key, where one is pinned.
fn check_openpgp(
    fetcher: &Fetcher,
    matrix_dir: &Utf8Path,
    release: &Release,
    spec: &Archive,
    archive_path: &Utf8Path,
) -> anyhow::Result<Check<SignatureInfo>> {
    let (Some(fingerprint), Some(key)) =
        (&release.signing_key, release.signing_key_path(matrix_dir))
    else {
        return Ok(Check::NotPinned);
    };
    if !key.is_file() {
        bail!(
            "matrix/versions.toml pins signing key {fingerprint} for {} but {key} is missing; \
             add the release manager's public key there",
            release.version
        );
    }
    let asc = fetcher
        .fetch_signature(spec)
        .with_context(|| format!("fetching the signature of {}", spec.file_name))?;
    let Some(asc) = asc else {
        return Ok(Check::Unavailable);
    };
    match verify::check_signature(archive_path, &asc, &key, fingerprint) {
        Ok(info) => Ok(Check::Good(info)),
        Err(err @ VerifyError::Signature { .. }) => {
            // The archive matches its pin (checked before), so the `.asc` is at fault. A bad
            // one must not linger in the cache to fail every later run.
            let what = match std::fs::remove_file(&asc) {
                Ok(()) => format!(
                    "{asc} was removed from the cache; the next run fetches it again from the \
                     mirrors, so replace it there with the release's .asc from python.org"
                ),
                Err(e) => format!("{asc} could not be removed from the cache ({e}); delete it"),
            };
            Err(anyhow::Error::new(err).context(format!(
                "checking the signature of {} (the archive matches its pin; {what})",
                spec.file_name
            )))
        }
        // A wrong key file or an unreadable file is not the `.asc`'s fault: it is kept.
        Err(err) => {
            Err(err).with_context(|| format!("checking the signature of {}", spec.file_name))
        }
    }
}

/// No bundle anywhere: fine where the matrix pins no signer or the release predates 3.14.
fn absent_bundle(release: &Release) -> Check<BundleInfo> {
    if release.sigstore.is_some() { Check::Unavailable } else { Check::NotPinned }
}

/// Checks a bundle found beside the archive against the release line's pinned signer.
fn check_bundle(
    release: &Release,
    spec: &Archive,
    archive_path: &Utf8Path,
    bundle: &Utf8Path,
) -> anyhow::Result<Check<BundleInfo>> {
    let Some(signer) = &release.sigstore else {
        bail!(
            "{bundle} is a Sigstore bundle for {}, but matrix/versions.toml pins no Sigstore \
             signer for {}.{}: add a [[sigstore]] entry with the release manager's email and \
             OIDC issuer (python.org's Sigstore information page lists them), or remove the \
             bundle from the mirror",
            spec.file_name,
            release.version.major,
            release.version.minor
        );
    };
    let expected = SigstoreIdentity { email: signer.email.clone(), issuer: signer.issuer.clone() };
    let info = verify::check_bundle(archive_path, bundle, &expected).with_context(|| {
        format!(
            "the Sigstore signer of {}.{} is pinned in matrix/versions.toml as {} ({})",
            release.version.major, release.version.minor, signer.email, signer.issuer
        )
    })?;
    Ok(Check::Good(info))
}

/// The rule for releases from 3.14 on: python.org signs them with Sigstore only, so without a
/// good bundle the sha256 pin is all there is, and it is accepted only where the matrix says
/// why (`trusted-by-pin`).
fn finish(
    release: &Release,
    openpgp: Check<SignatureInfo>,
    sigstore: Check<BundleInfo>,
) -> anyhow::Result<SignatureStatus> {
    let status = SignatureStatus { openpgp, sigstore, trusted_by_pin: None };
    if !release.requires_sigstore() || matches!(status.sigstore, Check::Good(_)) {
        return Ok(status);
    }
    match &release.trusted_by_pin {
        Some(why) => Ok(SignatureStatus { trusted_by_pin: Some(why.clone()), ..status }),
        None => bail!(
            "{}: no source has {}.sigstore, and from 3.14 on python.org signs releases with \
             Sigstore only, so nothing but the sha256 pin would vouch for the archive; put the \
             release's .sigstore bundle from python.org beside the archive in the mirror, or \
             say in matrix/versions.toml why the pin alone is trusted \
             (trusted-by-pin = \"...\")",
            release.version,
            release.file_name()
        ),
    }
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

/// Re-checks the cached archive of `release` against its pin and, where a `.asc` or a
/// `.sigstore` sits beside it, against the pinned key or Sigstore signer (from 3.14 on a
/// bundle is required, as in [`prepare`]). A missing archive is not an error (`path: None`); a
/// mismatching one is, and it is removed so the next fetch replaces it (the error says
/// whether the removal worked). An unreadable one is an error and is kept.
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
    match verify::check_file(&path, &spec.pin) {
        Ok(()) => {}
        Err(err @ (VerifyError::Size { .. } | VerifyError::Digest { .. })) => {
            let what = match std::fs::remove_file(&path) {
                Ok(()) => "is corrupt and was removed; run `cargo xtask fetch` to fetch it again"
                    .to_owned(),
                Err(e) => format!(
                    "is corrupt and could not be removed ({e}); delete it by hand (make its \
                     directory writable), then run `cargo xtask fetch`"
                ),
            };
            return Err(err)
                .with_context(|| format!("cached archive of {} {what}", release.version));
        }
        Err(err) => {
            return Err(err).with_context(|| {
                format!(
                    "re-checking the cached archive of {}; nothing was removed",
                    release.version
                )
            });
        }
    }
    let asc = Utf8PathBuf::from(format!("{path}.asc"));
    let openpgp = match (&release.signing_key, release.signing_key_path(matrix_dir)) {
        (Some(fingerprint), Some(key)) if asc.is_file() => {
            let info = verify::check_signature(&path, &asc, &key, fingerprint)
                .with_context(|| format!("checking the signature of {}", spec.file_name))?;
            Check::Good(info)
        }
        (Some(_), Some(_)) => Check::Unavailable,
        _ => Check::NotPinned,
    };
    let bundle = Utf8PathBuf::from(format!("{path}.sigstore"));
    let sigstore = if bundle.is_file() {
        check_bundle(release, &spec, &path, &bundle)?
    } else {
        absent_bundle(release)
    };
    let signature = finish(release, openpgp, sigstore)?;
    Ok(CacheCheck { version: release.version, path: Some(path), signature: Some(signature) })
}
