//! The cryptography `sigstore-verify` runs on: the RustCrypto crates (`sha2`, `p256`, `p384`,
//! `ed25519-dalek`) that `pgp` already builds, instead of the crate's default `aws-lc-rs`
//! (a C library whose build costs about a minute on a cold two-core machine).
//!
//! Verification only: no key generation, no signing. The Sigstore public-good instance signs
//! with ECDSA P-256 and P-384 (Fulcio, Rekor v1, the CT log, the timestamp authority) and
//! Ed25519 (Rekor v2 checkpoints); RSA and ML-DSA keys are refused as unsupported, which
//! fails a bundle that needs them instead of accepting it.

use p256::ecdsa::signature::{Verifier as _, hazmat::PrehashVerifier};
use sha2::{Digest, Sha256, Sha384, Sha512};
use sigstore_verify::{
    crypto::{CryptoProvider, Error, HashContext, Result, SigningScheme},
    types::HashAlgorithm,
};

/// The provider; installed once per process by [`install`].
#[derive(Debug)]
pub(crate) struct RustCrypto;

static PROVIDER: RustCrypto = RustCrypto;

/// Makes [`RustCrypto`] the process-wide provider of `sigstore-crypto` (idempotent).
pub(crate) fn install() {
    // Fails only if a provider is already installed, which is then this one: nothing else in
    // the workspace installs one.
    let _ = sigstore_verify::crypto::install_default_provider(&PROVIDER);
}

struct Hasher<D>(D);

impl<D: Digest + Send> HashContext for Hasher<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

fn invalid(scheme: SigningScheme) -> Error {
    Error::Verification(format!("{} signature invalid", scheme.name()))
}

fn bad_key(scheme: SigningScheme, err: impl std::fmt::Display) -> Error {
    Error::InvalidKeyFormat(format!("{} public key: {err}", scheme.name()))
}

fn unsupported(scheme: SigningScheme) -> Error {
    Error::UnsupportedAlgorithm(format!(
        "{} is not supported here (the Sigstore public-good instance uses ECDSA and Ed25519)",
        scheme.name()
    ))
}

fn digest_of(algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match algorithm {
        HashAlgorithm::Sha2256 => Sha256::digest(data).to_vec(),
        HashAlgorithm::Sha2384 => Sha384::digest(data).to_vec(),
        HashAlgorithm::Sha2512 => Sha512::digest(data).to_vec(),
        other => {
            return Err(Error::UnsupportedAlgorithm(format!("cannot compute {other} digests")));
        }
    })
}

/// Verifies an ECDSA signature (DER) over a digest of any length the curve accepts.
fn ecdsa_prehashed(
    scheme: SigningScheme,
    key: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> Result<()> {
    match scheme {
        SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
            let key =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|e| bad_key(scheme, e))?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid(scheme))?;
            key.verify_prehash(digest, &sig).map_err(|_| invalid(scheme))
        }
        SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
            let key =
                p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|e| bad_key(scheme, e))?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| invalid(scheme))?;
            key.verify_prehash(digest, &sig).map_err(|_| invalid(scheme))
        }
        other => Err(unsupported(other)),
    }
}

impl CryptoProvider for RustCrypto {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>> {
        Ok(match algorithm {
            HashAlgorithm::Sha2256 => Box::new(Hasher(Sha256::new())),
            HashAlgorithm::Sha2384 => Box::new(Hasher(Sha384::new())),
            HashAlgorithm::Sha2512 => Box::new(Hasher(Sha512::new())),
            other => {
                return Err(Error::UnsupportedAlgorithm(format!("cannot compute {other} digests")));
            }
        })
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        Sha384::digest(data).into()
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        Sha512::digest(data).into()
    }

    fn verify_raw(
        &self,
        scheme: SigningScheme,
        key: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        match scheme {
            SigningScheme::Ed25519 => {
                let key: [u8; 32] = key.try_into().map_err(|_| bad_key(scheme, "not 32 bytes"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                    .map_err(|e| bad_key(scheme, e))?;
                let sig =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid(scheme))?;
                key.verify(data, &sig).map_err(|_| invalid(scheme))
            }
            SigningScheme::EcdsaP256Sha256
            | SigningScheme::EcdsaP256Sha384
            | SigningScheme::EcdsaP384Sha256
            | SigningScheme::EcdsaP384Sha384 => {
                let algorithm = scheme.hash_algorithm().ok_or_else(|| unsupported(scheme))?;
                ecdsa_prehashed(scheme, key, &digest_of(algorithm, data)?, signature)
            }
            other => Err(unsupported(other)),
        }
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        ecdsa_prehashed(scheme, key, digest, signature)
    }
}
