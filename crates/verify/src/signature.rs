//! Detached OpenPGP signatures checked against a pinned key (pure Rust, the `pgp` crate).

use camino::Utf8Path;

use crate::VerifyError;

/// What a good signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    /// Fingerprint of the primary key that made the signature (uppercase hex).
    pub fingerprint: String,
    /// The key's primary user id.
    pub signer: String,
}

/// Checks that `signature` (an armored detached `.asc`) is a good signature over the file
/// `data`, made by the key in `key` (armored), whose primary fingerprint must be `fingerprint`.
pub fn check_signature(
    data: &Utf8Path,
    signature: &Utf8Path,
    key: &Utf8Path,
    fingerprint: &str,
) -> Result<SignatureInfo, VerifyError> {
    let _ = (data, signature, key, fingerprint);
    todo!()
}
