//! Real Sigstore bundles from the public-good instance, and what must refuse them.
//!
//! The bundles and their files are `sigstore-verify` 0.15.1's own test data
//! (`test_data/bundles/`, Apache-2.0), signed on the real public-good instance by people, not
//! by us: `cosign-v3-blob.sigstore.json` is a message signature made by cosign with an email
//! identity from GitHub's OAuth (the shape of python.org's bundles from 3.14 on, signed by
//! hugo@python.org), logged in Rekor v1 and timestamped; `conda-attestation-rekor2.sigstore.json`
//! is an in-toto attestation made on Sigstore's *staging* instance and logged in Rekor v2
//! (Ed25519 checkpoints, RFC 3161 timestamps): the pinned public-good root must refuse it, and
//! the staging root (`staging-trusted-root.json`, from `sigstore-trust-root` 0.15.1) accepts
//! it, which proves the Ed25519 and timestamp paths of our RustCrypto provider too.
//! No python.org bundle is reachable from these machines.

use camino::{Utf8Path, Utf8PathBuf};
use expect_test::{Expect, expect};

use super::*;

fn data_dir() -> Utf8PathBuf {
    Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigstore")
}

const BLOB: &str = "cosign-v3-blob.txt";
const BLOB_BUNDLE: &str = "cosign-v3-blob.sigstore.json";
const CONDA: &str = "signed-package-2.1.0-hb0f4dca_0.conda";
const CONDA_BUNDLE: &str = "conda-attestation-rekor2.sigstore.json";

const GITHUB: &str = "https://github.com/login/oauth";
const GOOGLE: &str = "https://accounts.google.com";

fn who(email: &str, issuer: &str) -> SigstoreIdentity {
    SigstoreIdentity { email: email.to_owned(), issuer: issuer.to_owned() }
}

/// Checks `bundle` over `data` (paths) against the pinned root, or the staging root, and
/// renders the outcome with the directories replaced by `$DATA` and `$TMP`.
fn check_on(
    staging: bool,
    data: &Utf8Path,
    bundle: &Utf8Path,
    expected: SigstoreIdentity,
    expect: Expect,
) {
    let outcome = if staging {
        let root = std::fs::read_to_string(data_dir().join("staging-trusted-root.json"))
            .expect("test data");
        check_with_root(data, bundle, &expected, &root)
    } else {
        check_bundle(data, bundle, &expected)
    };
    let outcome = match outcome {
        Ok(info) => format!("ok: {info:?}"),
        Err(err) => err.to_string(),
    };
    let mut outcome = outcome.replace(data_dir().as_str(), "$DATA");
    // `$TMP/`: the temporary directory's random part.
    let tmp = std::env::temp_dir().join("sigstore-");
    let tmp = tmp.to_str().expect("utf-8");
    while let Some(at) = outcome.find(tmp) {
        let rest = at + tmp.len();
        let end = outcome[rest..].find('/').map_or(outcome.len(), |i| rest + i);
        outcome.replace_range(at..end, "$TMP");
    }
    expect.assert_eq(&outcome);
}

fn check(data: &Utf8Path, bundle: &Utf8Path, expected: SigstoreIdentity, expect: Expect) {
    check_on(false, data, bundle, expected, expect);
}

/// A copy of `name` in a temporary directory with its byte at `at` flipped.
fn tampered(dir: &tempfile::TempDir, name: &str, at: usize) -> Utf8PathBuf {
    let mut bytes = std::fs::read(data_dir().join(name)).expect("test data");
    bytes[at] ^= 0x01;
    let path = Utf8PathBuf::try_from(dir.path().join(name)).expect("utf-8");
    std::fs::write(&path, bytes).expect("write");
    path
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sigstore-").tempdir().expect("tempdir")
}

#[test]
fn a_real_bundle_verifies_against_its_signer() {
    let d = data_dir();
    check(
        &d.join(BLOB),
        &d.join(BLOB_BUNDLE),
        who("w.vollprecht@gmail.com", GITHUB),
        expect![[
            r#"ok: BundleInfo { email: "w.vollprecht@gmail.com", issuer: "https://github.com/login/oauth", logged_at: Some("2025-12-03T18:36:43Z") }"#
        ]],
    );
}

#[test]
fn a_bundle_of_another_sigstore_instance_is_refused() {
    let d = data_dir();
    check(
        &d.join(CONDA),
        &d.join(CONDA_BUNDLE),
        who("jku@goto.fi", GITHUB),
        expect![
            "sigstore bundle $DATA/conda-attestation-rekor2.sigstore.json does not verify $DATA/signed-package-2.1.0-hb0f4dca_0.conda: invalid RFC 3161 timestamp: TSA timestamp verification failed: Failed to verify timestamp signature: CMS signer does not match any trusted TSA certificate; it is not a bundle of the Sigstore public-good instance, or it was altered"
        ],
    );
    // The same bundle against its own (staging) root: Rekor v2, Ed25519, RFC 3161.
    check_on(
        true,
        &d.join(CONDA),
        &d.join(CONDA_BUNDLE),
        who("jku@goto.fi", GITHUB),
        expect![[
            r#"ok: BundleInfo { email: "jku@goto.fi", issuer: "https://github.com/login/oauth", logged_at: None }"#
        ]],
    );
}

#[test]
fn another_signer_is_refused() {
    let d = data_dir();
    // The pins of python.org's release lines, applied to bundles someone else signed.
    check(
        &d.join(BLOB),
        &d.join(BLOB_BUNDLE),
        who("hugo@python.org", GITHUB),
        expect![
            "sigstore bundle $DATA/cosign-v3-blob.sigstore.json does not verify $DATA/cosign-v3-blob.txt: it was signed by w.vollprecht@gmail.com, but the pinned signer is hugo@python.org (issuer https://github.com/login/oauth)"
        ],
    );
    check_on(
        true,
        &d.join(CONDA),
        &d.join(CONDA_BUNDLE),
        who("thomas@python.org", GOOGLE),
        expect![
            "sigstore bundle $DATA/conda-attestation-rekor2.sigstore.json does not verify $DATA/signed-package-2.1.0-hb0f4dca_0.conda: it was signed by jku@goto.fi, but the pinned signer is thomas@python.org (issuer https://accounts.google.com)"
        ],
    );
}

#[test]
fn the_right_signer_from_another_issuer_is_refused() {
    let d = data_dir();
    check(
        &d.join(BLOB),
        &d.join(BLOB_BUNDLE),
        who("w.vollprecht@gmail.com", GOOGLE),
        expect![
            "sigstore bundle $DATA/cosign-v3-blob.sigstore.json does not verify $DATA/cosign-v3-blob.txt: w.vollprecht@gmail.com was vouched for by the OIDC issuer https://github.com/login/oauth, but the pinned issuer is https://accounts.google.com"
        ],
    );
}

#[test]
fn a_file_with_one_byte_flipped_is_refused() {
    let d = data_dir();
    let dir = temp();
    check(
        &tampered(&dir, BLOB, 3),
        &d.join(BLOB_BUNDLE),
        who("w.vollprecht@gmail.com", GITHUB),
        expect![
            "sigstore bundle $DATA/cosign-v3-blob.sigstore.json does not verify $TMP/cosign-v3-blob.txt: the bundle signs sha256 e194b99df6639501325c5f44da79fe3a8efae6f239bd79443a19787e06fb1764, but the file has sha256 9af9c397f987e038ae74c42979757677d33c1aceed627b83fd6b6cd289c2ee09: this is not the file that was signed"
        ],
    );
    check_on(
        true,
        &tampered(&dir, CONDA, 700),
        &d.join(CONDA_BUNDLE),
        who("jku@goto.fi", GITHUB),
        expect![
            "sigstore bundle $DATA/conda-attestation-rekor2.sigstore.json does not verify $TMP/signed-package-2.1.0-hb0f4dca_0.conda: its signature does not cover the file (sha256 63d8f25b13f5bf038f290c00d1b954c3b3fc6ce2e21226073ccd20391382dd7c): the file or the bundle was altered (artifact mismatch: artifact hash does not match any subject in attestation)"
        ],
    );
}

#[test]
fn a_damaged_bundle_is_refused() {
    let d = data_dir();
    let dir = temp();
    // A byte of the signature (base64 in the JSON) changed: the digest still matches.
    let text = std::fs::read_to_string(d.join(BLOB_BUNDLE)).expect("test data");
    let at = text.find("\"signature\":\"").expect("a message signature") + 20;
    let bundle = tampered(&dir, BLOB_BUNDLE, at);
    check(
        &d.join(BLOB),
        &bundle,
        who("w.vollprecht@gmail.com", GITHUB),
        expect![
            "sigstore bundle $TMP/cosign-v3-blob.sigstore.json does not verify $DATA/cosign-v3-blob.txt: invalid RFC 3161 timestamp: TSA timestamp verification failed: Timestamp message hash mismatch: expected baa85fece9ebe7eaeb84f81048043633df3044de12ba7025b770d17ce75e7a6e, got af91303d2b97378f7425003b615515f75947e287393d795e138bf9b2adc3fbdb; it is not a bundle of the Sigstore public-good instance, or it was altered"
        ],
    );

    let junk = Utf8PathBuf::try_from(dir.path().join("junk.sigstore")).expect("utf-8");
    std::fs::write(&junk, "<html>not found</html>").expect("write");
    check(
        &d.join(BLOB),
        &junk,
        who("w.vollprecht@gmail.com", GITHUB),
        expect![
            "sigstore bundle $TMP/junk.sigstore does not verify $DATA/cosign-v3-blob.txt: it is not a Sigstore bundle (expected value at line 1 column 1)"
        ],
    );
}
