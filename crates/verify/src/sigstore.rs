//! Sigstore bundles (`Python-X.Y.Z.tar.xz.sigstore`), checked offline against a pinned signer.
//!
//! python.org signs its source archives with Sigstore (and, before 3.14, also with OpenPGP):
//! the release manager signs in with an OpenID Connect provider, Fulcio certifies a
//! short-lived key for that identity, and the signature is recorded in the Rekor transparency
//! log. The bundle carries the certificate, the signature and the log's proof of inclusion.
//!
//! A bundle is good when all of these hold (checked by `sigstore-verify`):
//! - the certificate chains to the Sigstore public-good Fulcio root, and the CT log saw it;
//! - the Rekor entry is included in the log (signed checkpoint or inclusion promise), and was
//!   made while the short-lived certificate was valid;
//! - the signature over the file's sha256 verifies with the certified key, and the log entry
//!   describes this signature and this file;
//! - the certificate's identity (an email address) and OIDC issuer are the pinned ones.
//!
//! Nothing is fetched: the trust root (Fulcio certificates, Rekor, CT and timestamp keys of the
//! public-good instance) is the file `sigstore/public-good-trusted-root.json` beside this
//! module, compiled in, copied from `sigstore-trust-root` 0.15.1's embedded production root
//! (sha256 6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66: Rekor v1 and the
//! 2025 Rekor v2 log, Fulcio's two certificate authorities, the CT logs, the timestamp
//! authority). Updating it is a reviewed change, never a download at run time. Validity is judged at the
//! times the log and timestamps prove, never "now", so an old release stays verifiable.

mod provider;

use std::{fs, io::Read};

use camino::Utf8Path;
use sha2::{Digest, Sha256};
use sigstore_verify::{
    Error as SigstoreError, IdentityMatcher, SubjectAltName, VerificationPolicy, Verifier,
    trust_root::TrustedRoot,
    types::{Artifact, Bundle, HashAlgorithm, Sha256Hash, SignatureContent},
};

use crate::VerifyError;

/// The trust root of the Sigstore public-good instance, pinned in the repository.
const PUBLIC_GOOD_TRUSTED_ROOT: &str = include_str!("sigstore/public-good-trusted-root.json");

/// The largest bundle read: a bundle is a few kilobytes.
const MAX_BUNDLE_BYTES: u64 = 1 << 20;

/// Who must have signed: the release manager's identity as Fulcio certifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreIdentity {
    /// The email address in the certificate (`hugo@python.org`).
    pub email: String,
    /// The OpenID Connect issuer that vouched for it (`https://github.com/login/oauth`).
    pub issuer: String,
}

/// What a good bundle says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    /// The signer's email address, as certified.
    pub email: String,
    /// The OIDC issuer, as certified.
    pub issuer: String,
    /// When the transparency log recorded the signature (RFC 3339, UTC), where it says.
    pub logged_at: Option<String>,
}

/// Checks that `bundle` (a Sigstore bundle, JSON) is a good signature over the file `data`
/// by `expected`, offline, against the pinned public-good trust root.
///
/// `data` is streamed through sha256 once, never held in memory. Errors name the bundle and
/// the file and say what was expected and what was found: the signer's identity or issuer,
/// or the digest the bundle signs against the file's.
pub fn check_bundle(
    data: &Utf8Path,
    bundle: &Utf8Path,
    expected: &SigstoreIdentity,
) -> Result<BundleInfo, VerifyError> {
    check_with_root(data, bundle, expected, PUBLIC_GOOD_TRUSTED_ROOT)
}

/// [`check_bundle`] against the trust root `root` (JSON); tests use Sigstore's staging root.
fn check_with_root(
    data: &Utf8Path,
    bundle: &Utf8Path,
    expected: &SigstoreIdentity,
    root: &str,
) -> Result<BundleInfo, VerifyError> {
    let fail = |message: String| VerifyError::Bundle {
        path: bundle.to_owned(),
        data: data.to_owned(),
        message,
    };
    let parsed = read_bundle(bundle).map_err(|e| match e {
        ReadError::Io(source) => VerifyError::Io { path: bundle.to_owned(), source },
        ReadError::Invalid(message) => fail(message),
    })?;
    let digest = sha256_of(data)?;

    // The digest a message signature claims, compared first: a changed file is then reported
    // as such, with both digests, rather than as a failed signature.
    if let SignatureContent::MessageSignature(signature) = &parsed.content
        && let Some(claimed) = &signature.message_digest
        && claimed.algorithm == HashAlgorithm::Sha2256
        && claimed.digest.as_bytes() != digest.as_bytes()
    {
        return Err(fail(format!(
            "the bundle signs sha256 {}, but the file has sha256 {}: this is not the file that was signed",
            hex::encode(claimed.digest.as_bytes()),
            hex::encode(digest.as_bytes()),
        )));
    }

    provider::install();
    let root = TrustedRoot::from_json(root).map_err(|e| {
        fail(format!("the pinned Sigstore trust root cannot be read ({e}); this is a bug"))
    })?;
    let verifier = Verifier::new(&root).map_err(|e| {
        fail(format!("the pinned Sigstore trust root is unusable ({e}); this is a bug"))
    })?;
    let policy = VerificationPolicy::new(
        IdentityMatcher::Email(expected.email.clone()),
        expected.issuer.clone(),
    );
    let result = verifier
        .verify(Artifact::from_digest(digest), &parsed, &policy)
        .map_err(|err| fail(explain(&err, expected, &digest)))?;
    let email = match result.identity() {
        Some(SubjectAltName::Email(email)) => email.clone(),
        other => return Err(fail(format!("certified identity {other:?} is not an email address"))),
    };
    // `sigstore-verify` checked identity and issuer; a result that did not would be a bug
    // there, and must not pass here.
    if !(result.certificate_verified()
        && result.tlog_verified()
        && result.identity_policy_checked()
        && email == expected.email
        && result.issuer() == Some(expected.issuer.as_str()))
    {
        return Err(fail(format!(
            "sigstore-verify accepted the bundle without checking all of certificate, log and signer ({result:?})"
        )));
    }
    Ok(BundleInfo {
        email,
        issuer: expected.issuer.clone(),
        logged_at: result.integrated_time().map(|t| t.to_string()),
    })
}

/// A failed verification in words: what was expected and what was found.
fn explain(err: &SigstoreError, expected: &SigstoreIdentity, digest: &Sha256Hash) -> String {
    match err {
        SigstoreError::IdentityMismatch { actual, .. } => format!(
            "it was signed by {}, but the pinned signer is {} (issuer {})",
            actual.as_ref().map_or("no identity".to_owned(), describe_san),
            expected.email,
            expected.issuer
        ),
        SigstoreError::IssuerMismatch { actual, .. } => format!(
            "{} was vouched for by the OIDC issuer {}, but the pinned issuer is {}",
            expected.email,
            actual.as_deref().unwrap_or("(none)"),
            expected.issuer
        ),
        SigstoreError::SignatureInvalid(_) | SigstoreError::ArtifactMismatch(_) => format!(
            "its signature does not cover the file (sha256 {}): the file or the bundle was altered ({err})",
            hex::encode(digest.as_bytes())
        ),
        other => format!(
            "{other}; it is not a bundle of the Sigstore public-good instance, or it was altered"
        ),
    }
}

fn describe_san(san: &SubjectAltName) -> String {
    match san {
        SubjectAltName::Email(email) => email.clone(),
        SubjectAltName::Uri(uri) => format!("the URI {uri}"),
        other => format!("{other:?}"),
    }
}

enum ReadError {
    Io(std::io::Error),
    Invalid(String),
}

fn read_bundle(path: &Utf8Path) -> Result<Bundle, ReadError> {
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_BUNDLE_BYTES + 1).read_to_string(&mut text))
        .map_err(ReadError::Io)?;
    if text.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReadError::Invalid(format!(
            "it is larger than {MAX_BUNDLE_BYTES} bytes, so it is not a Sigstore bundle (those are a few kilobytes)"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|e| ReadError::Invalid(format!("it is not a Sigstore bundle ({e})")))
}

fn sha256_of(path: &Utf8Path) -> Result<Sha256Hash, VerifyError> {
    let io_err = |source| VerifyError::Io { path: path.to_owned(), source };
    let mut file = fs::File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_err)?;
    Ok(Sha256Hash::new(hasher.finalize().into()))
}

#[cfg(test)]
mod tests;
