//! Proves that bytes are the pinned release, before anything is built from them.
//!
//! - [`Pin`]: the size and sha256 an archive must have (from `matrix/versions.toml`).
//! - [`HashingWriter`]: hashes while a download streams into a file, so checking costs no
//!   second read.
//! - [`check_file`]: re-reads a stored file and compares it with its pin.
//! - [`check_signature`]: checks a detached OpenPGP signature (`.asc`) against a pinned key.
//! - [`check_bundle`]: checks a Sigstore bundle (`.sigstore`) against a pinned signer
//!   identity, offline, with the Sigstore public-good trust root compiled in.
//!
//! Errors are typed ([`VerifyError`]) because callers branch on them: a mismatching mirror
//! is skipped for the next source, a missing file is fetched, a bad signature stops everything.
//! They say what is wrong with the bytes, not what happened to the file: the caller, which
//! keeps or removes it, says that. An I/O error is the error's `source`, never repeated in
//! its message, so a chain (`{:#}`) prints it once.

mod signature;
mod sigstore;

use std::{fs::File, io};

use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

pub use crate::signature::{SignatureInfo, check_signature};
pub use crate::sigstore::{BundleInfo, SigstoreIdentity, check_bundle};

/// The size and sha256 an archive must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Why bytes were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The size differs from the pin (a truncated or padded file).
    #[error(
        "{what} has the wrong size: expected {expected} bytes, got {actual} bytes (pinned in matrix/versions.toml)"
    )]
    Size {
        /// The file and where it came from.
        what: String,
        /// Pinned size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// The sha256 differs from the pin.
    #[error(
        "{what} does not match its pin:\n  expected sha256 {expected}\n  actual   sha256 {actual}\n(pinned in matrix/versions.toml)"
    )]
    Digest {
        /// The file and where it came from.
        what: String,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: Utf8PathBuf,
        /// The I/O error (the error's source, so it is printed once in a chain).
        #[source]
        source: io::Error,
    },
    /// The pinned key file is unusable or is not the pinned fingerprint.
    #[error("signing key {path}: {message}")]
    Key {
        /// The key file.
        path: Utf8PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The signature does not verify, or cannot be parsed.
    #[error("signature {path} does not verify {data}: {message}")]
    Signature {
        /// The `.asc` file.
        path: Utf8PathBuf,
        /// The signed file.
        data: Utf8PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A Sigstore bundle does not verify the file, or cannot be read as one.
    #[error("sigstore bundle {path} does not verify {data}: {message}")]
    Bundle {
        /// The `.sigstore` file.
        path: Utf8PathBuf,
        /// The signed file.
        data: Utf8PathBuf,
        /// What was expected and what was found.
        message: String,
    },
}

/// A writer that forwards bytes to `inner` while counting and hashing them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: io::Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    /// Compares what was written with `pin`; `what` names the file and its origin in errors.
    pub fn check(&self, pin: &Pin, what: &str) -> Result<(), VerifyError> {
        compare(self.len, &hex::encode(self.hasher.clone().finalize()), pin, what)
    }

    /// Returns the inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn compare(len: u64, digest: &str, pin: &Pin, what: &str) -> Result<(), VerifyError> {
    if len != pin.size {
        return Err(VerifyError::Size { what: what.to_owned(), expected: pin.size, actual: len });
    }
    if digest != pin.sha256 {
        return Err(VerifyError::Digest {
            what: what.to_owned(),
            expected: pin.sha256.clone(),
            actual: digest.to_owned(),
        });
    }
    Ok(())
}

/// Re-reads `path` and compares its size and sha256 with `pin`.
pub fn check_file(path: &Utf8Path, pin: &Pin) -> Result<(), VerifyError> {
    let io_err = |source| VerifyError::Io { path: path.to_owned(), source };
    let mut file = File::open(path).map_err(io_err)?;
    let mut writer = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut writer).map_err(io_err)?;
    writer.check(pin, path.as_str())
}

#[cfg(test)]
mod tests;
