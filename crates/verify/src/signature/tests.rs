//! The OpenPGP checks against the release managers' real keys and signatures, and what must
//! refuse them.

use std::fs;

use camino::Utf8PathBuf;
use expect_test::{Expect, expect};

use super::*;

/// Thomas Wouters, release manager of CPython 3.12 and 3.13; the key expired on 2026-07-02.
const WOUTERS: &str = "7169605F62C751356D054A26A821E680E5FA6305";

fn keys_dir() -> Utf8PathBuf {
    Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../matrix/keys"))
}

fn sources_dir() -> Utf8PathBuf {
    Utf8PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/cpython-sources"))
}

fn wouters_key() -> String {
    fs::read_to_string(keys_dir().join(format!("{WOUTERS}.asc")))
        .expect("the pinned key is in the repo")
}

/// The outcome as two lines (`ok` or the error's variant, then the info or the message),
/// with machine-specific directories replaced by placeholders.
fn render(outcome: Result<SignatureInfo, VerifyError>, dirs: &[(&Utf8Path, &str)]) -> String {
    let mut text = match outcome {
        Ok(info) => format!("ok\n{} {}", info.fingerprint, info.signer),
        Err(err) => {
            let variant = match err {
                VerifyError::Key { .. } => "Key",
                VerifyError::Signature { .. } => "Signature",
                VerifyError::Io { .. } => "Io",
                VerifyError::Size { .. }
                | VerifyError::Digest { .. }
                | VerifyError::Bundle { .. } => "unexpected",
            };
            format!("{variant}\n{err}")
        }
    };
    for (dir, placeholder) in dirs {
        text = text.replace(dir.as_str(), placeholder);
    }
    text
}

/// Writes the key, signature and data into `$TMP` as `key.asc`, `data.asc` and `data`,
/// checks them against `fingerprint`, and compares the outcome with `expect`.
fn check(key: &str, fingerprint: &str, signature: &str, data: &[u8], expect: Expect) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dir = Utf8PathBuf::try_from(dir.path().to_path_buf()).expect("a UTF-8 temporary path");
    let (key_path, signature_path, data_path) =
        (dir.join("key.asc"), dir.join("data.asc"), dir.join("data"));
    fs::write(&key_path, key).expect("writing the key");
    fs::write(&signature_path, signature).expect("writing the signature");
    fs::write(&data_path, data).expect("writing the data");
    let outcome = check_signature(&data_path, &signature_path, &key_path, fingerprint);
    expect.assert_eq(&render(outcome, &[(&dir, "$TMP")]));
}

/// The release tarball and its `.asc` from `../shared/cpython-sources` beside the
/// repository; a missing file fails the test that needs it.
fn release() -> (Utf8PathBuf, Utf8PathBuf) {
    let data = sources_dir().join("Python-3.13.5.tar.xz");
    let signature = sources_dir().join("Python-3.13.5.tar.xz.asc");
    for file in [&data, &signature] {
        assert!(
            file.is_file(),
            "{file} is missing: this test needs the real CPython 3.13.5 tarball and its \
             .asc in ../shared/cpython-sources beside the repository (CI has them there); \
             download both from https://www.python.org/ftp/python/3.13.5/ into that directory"
        );
    }
    (data, signature)
}

#[test]
fn release_signature_made_before_the_key_expired_verifies() {
    let (data, signature) = release();
    let key = keys_dir().join(format!("{WOUTERS}.asc"));
    let outcome = check_signature(&data, &signature, &key, WOUTERS);
    expect![[r#"
        ok
        7169605F62C751356D054A26A821E680E5FA6305 Thomas Wouters <thomas@python.org>"#]]
    .assert_eq(&render(outcome, &[]));
}

#[test]
fn tampered_release_fails() -> Result<(), Box<dyn std::error::Error>> {
    let (data, signature) = release();
    let dir = tempfile::tempdir()?;
    let dir = Utf8PathBuf::try_from(dir.path().to_path_buf())?;
    let tampered = dir.join("Python-3.13.5.tar.xz");
    let mut bytes = fs::read(&data)?;
    let middle = bytes.len() / 2;
    if let Some(byte) = bytes.get_mut(middle) {
        *byte ^= 0x01;
    }
    fs::write(&tampered, bytes)?;
    let key = keys_dir().join(format!("{WOUTERS}.asc"));
    let outcome = check_signature(&tampered, &signature, &key, WOUTERS);
    let rendered = render(outcome, &[(&dir, "$TMP"), (&sources_dir(), "$SHARED")]);
    expect![[r#"
        Signature
        signature $SHARED/Python-3.13.5.tar.xz.asc does not verify $TMP/Python-3.13.5.tar.xz: it is not a good signature by 7169605F62C751356D054A26A821E680E5FA6305 over the file's contents; the file is corrupt or was tampered with: re-download the archive and its .asc"#]]
    .assert_eq(&rendered);
    Ok(())
}

#[test]
fn wrong_pinned_fingerprint_fails() {
    let wrong = "0000000000000000000000000000000000000000";
    check(
        &wouters_key(),
        wrong,
        SUB_2020_06_01,
        b"hello\n",
        expect![[r#"
            Key
            signing key $TMP/key.asc: holds the key 7169605F62C751356D054A26A821E680E5FA6305, but the pinned fingerprint is 0000000000000000000000000000000000000000; replace the file with the release manager's key 0000000000000000000000000000000000000000"#]],
    );
}

#[test]
fn unparsable_files_fail() {
    check(
        &wouters_key(),
        WOUTERS,
        "this is not a signature\n",
        b"hello\n",
        expect![[r#"
            Signature
            signature $TMP/data.asc does not verify $TMP/data: it is not an armored OpenPGP signature (not enough bytes in buffer: armor header); re-download the archive and its .asc"#]],
    );
    check(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5Cg==\n-----END PGP PUBLIC KEY BLOCK-----\n",
        WOUTERS,
        SUB_2020_06_01,
        b"hello\n",
        expect![[r#"
            Key
            signing key $TMP/key.asc: is not an armored OpenPGP public key (IO error: unknown packet header version 1101110); replace it with the release manager's published key"#]],
    );
}

#[test]
fn signatures_are_judged_at_their_creation_time() {
    // Made by the signing subkey while both keys were valid.
    check(
        TEST_KEY,
        TEST_FINGERPRINT,
        SUB_2020_06_01,
        b"hello\n",
        expect![[r#"
            ok
            B499A4E8DB1D5FA580625DE92F9954DFD7E1357E Test Signer <signer@example.invalid>"#]],
    );
    // The pin may be written as gpg prints it.
    check(
        TEST_KEY,
        "b499 a4e8 db1d 5fa5 8062  5de9 2f99 54df d7e1 357e",
        SUB_2020_06_01,
        b"hello\n",
        expect![[r#"
            ok
            B499A4E8DB1D5FA580625DE92F9954DFD7E1357E Test Signer <signer@example.invalid>"#]],
    );
    check(
        TEST_KEY,
        TEST_FINGERPRINT,
        SUB_2020_06_01,
        b"jello\n",
        expect![[r#"
            Signature
            signature $TMP/data.asc does not verify $TMP/data: it is not a good signature by 0996AEDCBAB9432A3DAE0D2980657E37383F3CEB over the file's contents; the file is corrupt or was tampered with: re-download the archive and its .asc"#]],
    );
    check(
        TEST_KEY,
        TEST_FINGERPRINT,
        SUB_2020_10_01,
        b"hello\n",
        expect![[r#"
            Signature
            signature $TMP/data.asc does not verify $TMP/data: it was made on 2020-10-01 00:00:00 UTC, after the subkey 0996AEDCBAB9432A3DAE0D2980657E37383F3CEB expired on 2020-09-01 12:00:00 UTC; if the release manager extended the key since, refresh $TMP/key.asc from their published key, else re-download the archive and its .asc"#]],
    );
    check(
        TEST_KEY,
        TEST_FINGERPRINT,
        PRIMARY_2021_06_01,
        b"hello\n",
        expect![[r#"
            Signature
            signature $TMP/data.asc does not verify $TMP/data: it was made on 2021-06-01 00:00:00 UTC, after the key B499A4E8DB1D5FA580625DE92F9954DFD7E1357E expired on 2021-01-01 12:00:00 UTC; if the release manager extended the key since, refresh $TMP/key.asc from their published key, else re-download the archive and its .asc"#]],
    );
    check(
        TEST_KEY_REVOKED,
        TEST_FINGERPRINT,
        SUB_2020_06_01,
        b"hello\n",
        expect![[r#"
            Key
            signing key $TMP/key.asc: the key B499A4E8DB1D5FA580625DE92F9954DFD7E1357E is revoked (no reason given), so nothing it signed is trusted; ask upstream which key signs this release and pin that one"#]],
    );
    check(
        &wouters_key(),
        WOUTERS,
        SUB_2020_06_01,
        b"hello\n",
        expect![[r#"
            Signature
            signature $TMP/data.asc does not verify $TMP/data: it was made by key 0996AEDCBAB9432A3DAE0D2980657E37383F3CEB, which is not the pinned key 7169605F62C751356D054A26A821E680E5FA6305 or one of its valid signing subkeys; check that $TMP/key.asc is the key of the release manager who signed this release"#]],
    );
}

// A test key and signatures over "hello\n", made with GnuPG 2.2 and a faked clock:
//
//   gpg --faked-system-time '20200101T000000!' --quick-gen-key 'Test Signer <signer@example.invalid>' ed25519 sign,cert never
//   gpg --faked-system-time '20200101T000000!' --quick-add-key $FPR ed25519 sign never
//   gpg --faked-system-time '20200601T000000!' -u "$SUB!" --armor --detach-sign data   # SUB_2020_06_01
//   gpg --faked-system-time '20201001T000000!' -u "$SUB!" --armor --detach-sign data   # SUB_2020_10_01
//   gpg --faked-system-time '20210601T000000!' -u "$FPR!" --armor --detach-sign data   # PRIMARY_2021_06_01
//   gpg --faked-system-time '20200102T000000!' --quick-set-expire $FPR 2021-01-01
//   gpg --faked-system-time '20200102T000000!' --quick-set-expire $FPR 2020-09-01 $SUB
//   gpg --armor --export $FPR                                                        # TEST_KEY
//   gpg --import openpgp-revocs.d/$FPR.rev; gpg --armor --export $FPR                # TEST_KEY_REVOKED
//
// So the primary key expires on 2021-01-01 and the subkey on 2020-09-01 (both at noon, as
// gpg places dates), and the revocation (no reason given) is dated 2020-01-01.

const TEST_FINGERPRINT: &str = "B499A4E8DB1D5FA580625DE92F9954DFD7E1357E";

const TEST_KEY: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEXgvhABYJKwYBBAHaRw8BAQdAAKspfEaeBoAfg8VGNqiYic4NS+B6Bu9p2FYX
maZypzO0JFRlc3QgU2lnbmVyIDxzaWduZXJAZXhhbXBsZS5pbnZhbGlkPoiWBBMW
CAA+AhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAFiEEtJmk6NsdX6WAYl3pL5lU
39fhNX4FAl4NMoAFCQHjLcAACgkQL5lU39fhNX7lGAEArOK+btmugQMA2/EkxSLr
x4s0soLgGfBQLTzgty9J/mIA/jnmMgrbjEYg3OvMc6ax+IRwE2o49s5NlMxlXrM9
qBcIuDMEXgvhABYJKwYBBAHaRw8BAQdAU6bsYyiOr4+HaZg44QAhzlxRByBB5kM7
YemsEbDz0N+I9QQYFggAJgIbAhYhBLSZpOjbHV+lgGJd6S+ZVN/X4TV+BQJeDTKA
BQkBQlbAAIF2IAQZFggAHRYhBAmWrty6uUMqPa4NKYBlfjc4PzzrBQJeC+EAAAoJ
EIBlfjc4PzzrLr0BAImQZtI1U8Fi1KQioTFMLAtbbm8bLD2SpCJjPNDH1oIYAQCt
drJwlVrcwNLBhVd04+VuqmfQlaNGB/wB3DJ+BgdnAwkQL5lU39fhNX5bzQD+JHva
cWXdodt8nHo+vVDBQZYZW1ov4CrWPyvjyBbiDCwBAP80nsRdrEa2wuylXoazbPJg
nsA6eyAcLjnBXT1lmqUA
=sq7b
-----END PGP PUBLIC KEY BLOCK-----
";

const TEST_KEY_REVOKED: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEXgvhABYJKwYBBAHaRw8BAQdAAKspfEaeBoAfg8VGNqiYic4NS+B6Bu9p2FYX
maZypzOIeAQgFggAIBYhBLSZpOjbHV+lgGJd6S+ZVN/X4TV+BQJeC+EAAh0AAAoJ
EC+ZVN/X4TV+uokA+wdQj3lmLgek9RqgQejtBcpyE/RQR5SD1cIcFr+kjZOaAP9+
NYgNmZJnqMUA1lUIUcKZl0TiXVMA61jFaZmTgXKxALQkVGVzdCBTaWduZXIgPHNp
Z25lckBleGFtcGxlLmludmFsaWQ+iJYEExYIAD4CGwMFCwkIBwIGFQoJCAsCBBYC
AwECHgECF4AWIQS0maTo2x1fpYBiXekvmVTf1+E1fgUCXg0ygAUJAeMtwAAKCRAv
mVTf1+E1fuUYAQCs4r5u2a6BAwDb8STFIuvHizSyguAZ8FAtPOC3L0n+YgD+OeYy
CtuMRiDc68xzprH4hHATajj2zk2UzGVesz2oFwi4MwReC+EAFgkrBgEEAdpHDwEB
B0BTpuxjKI6vj4dpmDjhACHOXFEHIEHmQzth6awRsPPQ34j1BBgWCAAmAhsCFiEE
tJmk6NsdX6WAYl3pL5lU39fhNX4FAl4NMoAFCQFCVsAAgXYgBBkWCAAdFiEECZau
3Lq5Qyo9rg0pgGV+Nzg/POsFAl4L4QAACgkQgGV+Nzg/POsuvQEAiZBm0jVTwWLU
pCKhMUwsC1tubxssPZKkImM80MfWghgBAK12snCVWtzA0sGFV3Tj5W6qZ9CVo0YH
/AHcMn4GB2cDCRAvmVTf1+E1flvNAP4ke9pxZd2h23ycej69UMFBlhlbWi/gKtY/
K+PIFuIMLAEA/zSexF2sRrbC7KVehrNs8mCewDp7IBwuOcFdPWWapQA=
=2xiI
-----END PGP PUBLIC KEY BLOCK-----
";

const SUB_2020_06_01: &str = "-----BEGIN PGP SIGNATURE-----

iHUEABYIAB0WIQQJlq7curlDKj2uDSmAZX43OD886wUCXtRFAAAKCRCAZX43OD88
65GEAP9u8dwbOPS7BDkFiQtN03rADt9p47hKD2se/jrWkEApnQD+JqLeG59ZgEjl
q63nFn4c5irbqzVlT7zOAx5o/oW9EgU=
=m+p1
-----END PGP SIGNATURE-----
";

const SUB_2020_10_01: &str = "-----BEGIN PGP SIGNATURE-----

iHUEABYIAB0WIQQJlq7curlDKj2uDSmAZX43OD886wUCX3UcAAAKCRCAZX43OD88
69UbAP0V52epG1B6mc/F4G+Sxa4H99Vl9Sew2geqJegHvUDptwEAs7lo2JLD4Gaq
HhiADDNqHwG2MGEpytq+gMfF8+7ptQs=
=Utyq
-----END PGP SIGNATURE-----
";

const PRIMARY_2021_06_01: &str = "-----BEGIN PGP SIGNATURE-----

iHUEABYIAB0WIQS0maTo2x1fpYBiXekvmVTf1+E1fgUCYLV4gAAKCRAvmVTf1+E1
frSuAPsE+n3fUa6WOMoR1QgBrZf7l0PQs/He5LJ5E+quQX8vRgEA6WbYA5Mh3FAD
I03Sj64JlUneL+mwT+XAmVmoZ9Pp5Qg=
=G5qx
-----END PGP SIGNATURE-----
";
