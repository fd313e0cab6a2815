//! Detached OpenPGP signatures checked against a pinned key (pure Rust, the `pgp` crate).
//!
//! A signature is good when all of these hold:
//! - the key file's primary key has the pinned fingerprint;
//! - the signature was made by that primary key or by one of its subkeys that a valid binding
//!   signature marks as a signing key (with its back-signature);
//! - the signature's creation time lies within the validity of the key that made it (and of
//!   the primary key): not before its creation, not at or after its expiry, and the key is not
//!   revoked;
//! - the signature verifies over the file's bytes, read as a stream.
//!
//! Validity is judged at the moment the signature says it was made, never "now", and this
//! module never reads the clock: release managers' keys expire after their releases are
//! signed, and an old release stays verifiable. The trade-off is that the creation time is the
//! signer's claim, so a stolen key could backdate a signature; a key revocation with the reason
//! "compromised" (or no reason) is what rules that out, and it rejects every signature.

use std::{
    fs::{self, File},
    io::{self, Read},
};

use camino::Utf8Path;
use chrono::{DateTime, Utc};
use pgp::{
    composed::{Deserializable, SignedPublicKey, SignedPublicSubKey, StandaloneSignature},
    packet::{PublicKey, PublicSubkey, RevocationCode, Signature, SignatureType, SubpacketData},
    types::{Fingerprint, KeyDetails, PublicKeyTrait, SignedUser, Tag},
};

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
/// `data`, made by the key in `key` (armored), whose primary fingerprint must be `fingerprint`
/// (hex; case and spaces do not matter).
///
/// The signature may be made by the primary key or by a signing subkey. It is accepted only if
/// the time it was made lies within that key's validity: after the key's creation, before its
/// expiry as set by the newest valid self-signature (so an expired key still proves what it
/// signed while it was valid), and before a revocation that retires the key. A revocation
/// saying the key was compromised, or giving no reason, rejects every signature.
///
/// `data` is streamed through the hash, never held in memory. An `.asc` holding several
/// signatures is good when one of those made by the pinned key is good.
///
/// Limitations: the key's expiry is the one its newest valid self-signature sets (as GnuPG
/// reads it), so if a key lapsed and was extended later, a signature made during the lapse is
/// accepted; signature expiry subpackets are not enforced (that would need "now"); revocations
/// by designated third-party revokers are ignored; only armored files are read.
pub fn check_signature(
    data: &Utf8Path,
    signature: &Utf8Path,
    key: &Utf8Path,
    fingerprint: &str,
) -> Result<SignatureInfo, VerifyError> {
    let files = Files { data, signature, key };
    let cert = files.read_key()?;
    let actual = upper_hex(&cert.fingerprint());
    let expected = fingerprint.split_whitespace().collect::<String>().to_ascii_uppercase();
    if actual != expected {
        return Err(files.key_error(format!(
            "holds the key {actual}, but the pinned fingerprint is {expected}; replace the file with the release manager's key {expected}"
        )));
    }
    let identity = Identity::of(&cert).ok_or_else(|| {
        files.key_error(format!(
            "key {actual} has no user id with a valid self-signature; replace the file with the release manager's published key"
        ))
    })?;
    let primary = Signer {
        key: SignerKey::Primary(&cert.primary_key),
        fingerprint: actual.clone(),
        validity: Validity {
            created: *cert.primary_key.created_at(),
            expires: expiry(&cert.primary_key, identity.newest_self_signature),
            revoked: strongest(
                cert.details
                    .revocation_signatures
                    .iter()
                    .filter(|sig| sig.typ() == Some(SignatureType::KeyRevocation))
                    .filter(|sig| issued_by(sig, &cert.primary_key))
                    .filter(|sig| sig.verify_key(&cert.primary_key).is_ok()),
            ),
        },
    };
    let mut signers = Vec::new();
    if can_sign(identity.newest_self_signature) {
        signers.push(&primary);
    }
    let subkeys: Vec<Signer<'_>> =
        cert.public_subkeys.iter().filter_map(|sub| signing_subkey(&cert, sub)).collect();
    signers.extend(&subkeys);

    let info = SignatureInfo {
        fingerprint: actual.clone(),
        signer: String::from_utf8_lossy(identity.user.id.id()).into_owned(),
    };
    let signatures = files.read_signatures()?;
    let mut first_error = None;
    for sig in &signatures {
        for signer in signers.iter().filter(|signer| signer.issued(sig)) {
            match files.verify(sig, signer, &primary) {
                Ok(()) => return Ok(info),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        let issuers = signatures.iter().map(issuer).collect::<Vec<_>>().join(", ");
        files.signature_error(format!(
            "it was made by {issuers}, which is not the pinned key {actual} or one of its valid signing subkeys; check that {key} is the key of the release manager who signed this release"
        ))
    }))
}

/// The three files of a check, and the errors that name them.
struct Files<'a> {
    data: &'a Utf8Path,
    signature: &'a Utf8Path,
    key: &'a Utf8Path,
}

impl Files<'_> {
    fn key_error(&self, message: String) -> VerifyError {
        VerifyError::Key { path: self.key.to_owned(), message }
    }

    fn signature_error(&self, message: String) -> VerifyError {
        VerifyError::Signature {
            path: self.signature.to_owned(),
            data: self.data.to_owned(),
            message,
        }
    }

    fn read_key(&self) -> Result<SignedPublicKey, VerifyError> {
        let armored = fs::read(self.key)
            .map_err(|source| VerifyError::Io { path: self.key.to_owned(), source })?;
        let (cert, _headers) = SignedPublicKey::from_armor_single(&armored[..]).map_err(|err| {
            self.key_error(format!(
                "is not an armored OpenPGP public key ({err}); replace it with the release manager's published key"
            ))
        })?;
        Ok(cert)
    }

    fn read_signatures(&self) -> Result<Vec<Signature>, VerifyError> {
        let unparsable = |err: pgp::errors::Error| {
            self.signature_error(format!(
                "it is not an armored OpenPGP signature ({err}); re-download the archive and its .asc"
            ))
        };
        let armored = fs::read(self.signature)
            .map_err(|source| VerifyError::Io { path: self.signature.to_owned(), source })?;
        let (parsed, _headers) =
            StandaloneSignature::from_armor_many(&armored[..]).map_err(unparsable)?;
        let signatures = parsed
            .map(|sig| sig.map(|sig| sig.signature))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unparsable)?;
        if signatures.is_empty() {
            return Err(self.signature_error(
                "it holds no signature; re-download the archive and its .asc".to_owned(),
            ));
        }
        Ok(signatures)
    }

    /// Checks one signature made by `signer` (a subkey of `primary`, or `primary` itself):
    /// first its time and type, which is cheap, then the data.
    fn verify(
        &self,
        sig: &Signature,
        signer: &Signer<'_>,
        primary: &Signer<'_>,
    ) -> Result<(), VerifyError> {
        match sig.typ() {
            Some(SignatureType::Binary | SignatureType::Text) => {}
            other => {
                return Err(self.signature_error(format!(
                    "it is not a signature over a file's contents (type {other:?}); re-download the archive and its .asc"
                )));
            }
        }
        let Some(made) = sig.created() else {
            return Err(self.signature_error(
                "it has no creation time; re-download the archive and its .asc".to_owned(),
            ));
        };
        self.check_time(primary, "key", made)?;
        if !std::ptr::eq(signer, primary) {
            self.check_time(signer, "subkey", made)?;
        }

        let file = File::open(self.data)
            .map_err(|source| VerifyError::Io { path: self.data.to_owned(), source })?;
        let mut reader = TrackedReader { inner: file, error: None };
        let verified = match signer.key {
            SignerKey::Primary(key) => sig.verify(key, &mut reader),
            SignerKey::Subkey(key) => sig.verify(key, &mut reader),
        };
        if let Some(source) = reader.error {
            return Err(VerifyError::Io { path: self.data.to_owned(), source });
        }
        verified.map_err(|err| match err {
            // The key or signature uses something rpgp cannot check: say so, blame no file.
            pgp::errors::Error::Unsupported { .. } | pgp::errors::Error::Unimplemented { .. } => {
                self.signature_error(format!(
                    "it cannot be checked here ({err}); check it with gpg --verify and report the algorithm"
                ))
            }
            // rpgp's other messages here ("invalid signed hash value", with a debug dump of
            // bytes) add nothing for the reader: the bytes are not what was signed.
            _ => self.signature_error(format!(
                "it is not a good signature by {} over the file's contents; the file is corrupt or was tampered with: re-download the archive and its .asc",
                signer.fingerprint
            )),
        })
    }

    /// Fails unless the key of `signer` was valid when the signature was `made`.
    fn check_time(
        &self,
        signer: &Signer<'_>,
        kind: &str,
        made: &DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        let fingerprint = &signer.fingerprint;
        let validity = &signer.validity;
        let revoked = validity.revoked.as_ref();
        if let Some(revocation) = revoked.filter(|revocation| revocation.hard) {
            return Err(self.key_error(format!(
                "the {kind} {fingerprint} is revoked ({}), so nothing it signed is trusted; ask upstream which key signs this release and pin that one",
                revocation.reason
            )));
        }
        if *made < validity.created {
            return Err(self.signature_error(format!(
                "it claims to be made on {made}, before the {kind} {fingerprint} was created on {}; re-download the archive and its .asc",
                validity.created
            )));
        }
        if let Some(expires) = validity.expires.filter(|expires| made >= expires) {
            return Err(self.signature_error(format!(
                "it was made on {made}, after the {kind} {fingerprint} expired on {expires}; if the release manager extended the key since, refresh {} from their published key, else re-download the archive and its .asc",
                self.key
            )));
        }
        if let Some(revocation) =
            revoked.filter(|revocation| revocation.at.is_none_or(|at| *made >= at))
        {
            return Err(self.signature_error(format!(
                "it was made on {made}, after the {kind} {fingerprint} was retired ({}); ask upstream which key signs this release and pin that one",
                revocation.reason
            )));
        }
        Ok(())
    }
}

/// A key that may make signatures over files, with when it may.
struct Signer<'a> {
    key: SignerKey<'a>,
    /// Uppercase hex, for messages.
    fingerprint: String,
    validity: Validity,
}

impl Signer<'_> {
    fn issued(&self, sig: &Signature) -> bool {
        match self.key {
            SignerKey::Primary(key) => issued_by(sig, key),
            SignerKey::Subkey(key) => issued_by(sig, key),
        }
    }
}

/// The packet that verifies (rpgp's `Signature::verify` takes a sized key type).
enum SignerKey<'a> {
    Primary(&'a PublicKey),
    Subkey(&'a PublicSubkey),
}

/// When a key may make signatures, from its self-signatures.
struct Validity {
    created: DateTime<Utc>,
    /// `None`: never expires.
    expires: Option<DateTime<Utc>>,
    revoked: Option<Revocation>,
}

/// A verified revocation of a key by its owner.
struct Revocation {
    /// `None` when the revocation does not say when it was made (then it counts from the start).
    at: Option<DateTime<Utc>>,
    /// Compromised, or no reason given: every signature is suspect, not only later ones.
    hard: bool,
    /// Reason code and text, for messages.
    reason: String,
}

/// The user id to name the signer by, and the self-signature that sets the key's expiry.
struct Identity<'a> {
    user: &'a SignedUser,
    newest_self_signature: &'a Signature,
}

impl<'a> Identity<'a> {
    /// Verifies the self-signatures of `cert`; `None` when no user id has a valid one.
    ///
    /// The newest valid self-signature (on any user id that is not revoked, or directly on the
    /// key) sets the key's expiry and flags, as GnuPG does. The signer is the user id whose
    /// newest self-signature marks it primary, else the one with the newest self-signature.
    fn of(cert: &'a SignedPublicKey) -> Option<Self> {
        let primary = &cert.primary_key;
        let mut newest: Option<&Signature> = None;
        // The user id to name the signer by: primary first, then the newest self-signature.
        let mut best: Option<(UserRank, &SignedUser)> = None;
        for user in &cert.details.users {
            let latest = user
                .signatures
                .iter()
                .filter(|sig| issued_by(sig, primary))
                .filter(|sig| sig.verify_certification(primary, Tag::UserId, &user.id).is_ok())
                .max_by_key(|sig| sig.created().copied());
            let Some(latest) = latest else { continue };
            if latest.typ() == Some(SignatureType::CertRevocation) {
                continue;
            }
            newest = newer(newest, latest);
            let rank = UserRank { primary: latest.is_primary(), signed: latest.created().copied() };
            if best.as_ref().is_none_or(|(best, _)| rank > *best) {
                best = Some((rank, user));
            }
        }
        for sig in cert
            .details
            .direct_signatures
            .iter()
            .filter(|sig| sig.typ() == Some(SignatureType::Key))
            .filter(|sig| issued_by(sig, primary))
            .filter(|sig| sig.verify_key(primary).is_ok())
        {
            newest = newer(newest, sig);
        }
        Some(Identity { user: best?.1, newest_self_signature: newest? })
    }
}

/// How well a user id names the signer; fields compare in order.
#[derive(PartialEq, PartialOrd)]
struct UserRank {
    primary: bool,
    signed: Option<DateTime<Utc>>,
}

/// `sub` as a signer, if a valid binding makes it a signing key (with a valid back-signature).
fn signing_subkey<'a>(
    cert: &'a SignedPublicKey,
    sub: &'a SignedPublicSubKey,
) -> Option<Signer<'a>> {
    let primary = &cert.primary_key;
    let binds = |sig: &&Signature| {
        issued_by(sig, primary) && sig.verify_subkey_binding(primary, &sub.key).is_ok()
    };
    let binding = sub
        .signatures
        .iter()
        .filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding))
        .filter(binds)
        .max_by_key(|sig| sig.created().copied())?;
    if !binding.key_flags().sign() {
        return None;
    }
    binding.embedded_signature()?.verify_primary_key_binding(&sub.key, primary).ok()?;
    Some(Signer {
        key: SignerKey::Subkey(&sub.key),
        fingerprint: upper_hex(&sub.key.fingerprint()),
        validity: Validity {
            created: *sub.key.created_at(),
            expires: expiry(&sub.key, binding),
            revoked: strongest(
                sub.signatures
                    .iter()
                    .filter(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation))
                    .filter(binds),
            ),
        },
    })
}

/// Whether the newest self-signature lets the primary key sign (keys without key flags may).
fn can_sign(self_signature: &Signature) -> bool {
    let has_flags = self_signature.config().is_some_and(|config| {
        config.hashed_subpackets().any(|sub| matches!(sub.data, SubpacketData::KeyFlags(_)))
    });
    !has_flags || self_signature.key_flags().sign()
}

/// When `key` expires according to `self_signature`; `None` for never.
fn expiry(key: &impl PublicKeyTrait, self_signature: &Signature) -> Option<DateTime<Utc>> {
    let lifetime = self_signature.key_expiration_time().filter(|lifetime| !lifetime.is_zero())?;
    key.created_at().checked_add_signed(*lifetime)
}

/// The revocation that rejects the most: a hard one, else the earliest.
fn strongest<'a>(revocations: impl Iterator<Item = &'a Signature>) -> Option<Revocation> {
    revocations
        .map(|sig| {
            let code = sig.revocation_reason_code();
            let text = sig
                .revocation_reason_string()
                .map(|text| String::from_utf8_lossy(text).trim().to_owned())
                .filter(|text| !text.is_empty());
            let reason = match code {
                None | Some(RevocationCode::NoReason) => "no reason given".to_owned(),
                Some(RevocationCode::KeySuperseded) => "superseded".to_owned(),
                Some(RevocationCode::KeyCompromised) => "compromised".to_owned(),
                Some(RevocationCode::KeyRetired) => "retired".to_owned(),
                Some(other) => format!("reason {other:?}"),
            };
            Revocation {
                at: sig.created().copied(),
                hard: !matches!(
                    code,
                    Some(RevocationCode::KeySuperseded | RevocationCode::KeyRetired)
                ),
                reason: match text {
                    Some(text) => format!("{reason}: {text}"),
                    None => reason,
                },
            }
        })
        .min_by_key(|revocation| (!revocation.hard, revocation.at))
}

fn newer<'a>(current: Option<&'a Signature>, candidate: &'a Signature) -> Option<&'a Signature> {
    match current {
        Some(current) if current.created() >= candidate.created() => Some(current),
        _ => Some(candidate),
    }
}

/// Whether `sig` names `key` as its issuer (a signature naming no issuer might be by anyone).
fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let fingerprints = sig.issuer_fingerprint();
    let ids = sig.issuer();
    (fingerprints.is_empty() && ids.is_empty())
        || fingerprints.iter().any(|fp| **fp == key.fingerprint())
        || ids.iter().any(|id| **id == key.key_id())
}

/// Names the key that made `sig`, for messages.
fn issuer(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        format!("key {}", upper_hex(fp))
    } else if let Some(id) = sig.issuer().first() {
        format!("key id {}", hex::encode_upper(id))
    } else {
        "an unnamed key".to_owned()
    }
}

fn upper_hex(fingerprint: &Fingerprint) -> String {
    hex::encode_upper(fingerprint.as_bytes())
}

/// Keeps the first read error, which rpgp would turn into a string, so that a failing disk is
/// reported as [`VerifyError::Io`] and not as a bad signature.
struct TrackedReader<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for TrackedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|err| {
            if err.kind() == io::ErrorKind::Interrupted {
                return err;
            }
            let reported = io::Error::new(err.kind(), err.to_string());
            self.error.get_or_insert(err);
            reported
        })
    }
}

#[cfg(test)]
mod tests;
