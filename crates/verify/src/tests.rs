use std::io::Write;

use expect_test::{Expect, expect};

use super::*;

fn check(data: &[u8], pin: Pin, expect: Expect) {
    let mut w = HashingWriter::new(Vec::new());
    let outcome = match w.write_all(data) {
        Ok(()) => match w.check(&pin, "x.tgz from mirror /m") {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    expect.assert_eq(&outcome);
    assert_eq!(w.into_inner(), data, "bytes pass through unchanged");
}

const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

#[test]
fn pins() {
    check(b"hello", Pin { sha256: HELLO.into(), size: 5 }, expect!["ok"]);
    check(
        b"hell",
        Pin { sha256: HELLO.into(), size: 5 },
        expect![
            "x.tgz from mirror /m has the wrong size: expected 5 bytes, got 4 bytes (pinned in matrix/versions.toml)"
        ],
    );
    check(
        b"jello",
        Pin { sha256: HELLO.into(), size: 5 },
        expect![[r#"
                x.tgz from mirror /m does not match its pin:
                  expected sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
                  actual   sha256 187c9bceeb919e1b3e6d20fa50ecabf7d9d50b5343e8f9a3d912abb13929102e
                (pinned in matrix/versions.toml)"#]],
    );
}

#[test]
fn check_file_reads_from_disk() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = Utf8PathBuf::try_from(dir.path().join("f"))?;
    std::fs::write(&path, b"hello")?;
    check_file(&path, &Pin { sha256: HELLO.into(), size: 5 })?;
    let err = check_file(&path, &Pin { sha256: HELLO.into(), size: 6 });
    assert!(matches!(err, Err(VerifyError::Size { expected: 6, actual: 5, .. })), "{err:?}");
    Ok(())
}

/// The OS error is the error's source and not part of its message, so a printed chain
/// (`error: {err:#}`) holds it once.
#[test]
fn an_io_error_is_printed_once_in_a_chain() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = Utf8PathBuf::try_from(dir.path().join("missing"))?;
    let err = check_file(&path, &Pin { sha256: HELLO.into(), size: 5 }).expect_err("missing");
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    expect!["cannot read $TMP/missing: No such file or directory (os error 2)"]
        .assert_eq(&chain.replace(dir.path().to_str().ok_or("utf-8")?, "$TMP"));
    Ok(())
}
