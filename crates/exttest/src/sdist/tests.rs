use std::cell::RefCell;

use expect_test::expect;

use super::*;

fn temp() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("a UTF-8 path");
    (dir, path)
}

fn spec() -> PypiSpec {
    PypiSpec::parse("markupsafe==3.0.2").expect("a pin")
}

const GOOD: &[u8] = b"the real sdist";

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A download like pip's: the sdist's file in the directory it is given.
fn pip(bytes: &'static [u8]) -> impl FnOnce(&Utf8Path) -> anyhow::Result<()> {
    move |into| Ok(fs::write(into.join("markupsafe-3.0.2.tar.gz"), bytes)?)
}

/// What `check_cached` says, with the temporary directory shown as `$DIR`.
fn show(dir: &Utf8Path, pin: Option<&str>) -> String {
    format!("{:?}", check_cached(dir, pin)).replace(dir.as_str(), "$DIR")
}

#[test]
fn a_cached_sdist_is_checked_against_its_recorded_digest_and_the_pin() {
    let (_t, dir) = temp();
    expect!["Missing"].assert_eq(&show(&dir, None));
    let sdist = dir.join("markupsafe-3.0.2.tar.gz");
    fs::write(&sdist, GOOD).expect("write");
    // Cached by a version that recorded nothing: not trusted.
    expect![[r#"Bad { path: "$DIR/markupsafe-3.0.2.tar.gz", why: "has no sdist.sha256 recorded at its download" }"#]]
        .assert_eq(&show(&dir, None));
    fs::write(dir.join(RECORD), format!("{}  markupsafe-3.0.2.tar.gz\n", digest(GOOD)))
        .expect("write");
    expect![[r#"Good("$DIR/markupsafe-3.0.2.tar.gz")"#]].assert_eq(&show(&dir, None));
    expect![[r#"Good("$DIR/markupsafe-3.0.2.tar.gz")"#]]
        .assert_eq(&show(&dir, Some(&digest(GOOD))));
    let pin = "0".repeat(64);
    expect![[r#"Bad { path: "$DIR/markupsafe-3.0.2.tar.gz", why: "has sha256 <digest>, not the 0000000000000000000000000000000000000000000000000000000000000000 its suite pins" }"#]]
        .assert_eq(&show(&dir, Some(&pin)).replace(&digest(GOOD), "<digest>"));
    // Truncated.
    fs::write(&sdist, &GOOD[..4]).expect("write");
    let shown = show(&dir, None)
        .replace(&digest(&GOOD[..4]), "<truncated>")
        .replace(&digest(GOOD), "<recorded>");
    expect![[r#"Bad { path: "$DIR/markupsafe-3.0.2.tar.gz", why: "has sha256 <truncated>, not the <recorded> recorded at its download: truncated or replaced" }"#]]
        .assert_eq(&shown);
    // Replaced by another project's sdist.
    fs::remove_file(&sdist).expect("remove");
    fs::write(dir.join("evil-1.0.tar.gz"), GOOD).expect("write");
    expect![[r#"Bad { path: "$DIR/evil-1.0.tar.gz", why: "is not the file recorded at its download (markupsafe-3.0.2.tar.gz)" }"#]]
        .assert_eq(&show(&dir, None));
}

#[test]
fn a_damaged_cached_sdist_is_downloaded_again_and_never_used() {
    let (_t, sdists) = temp();
    let notes = RefCell::new(Vec::new());
    let note = |n: &str| notes.borrow_mut().push(n.replace(sdists.as_str(), "$SDISTS"));
    let first = sdist(&sdists, &spec(), None, note, pip(GOOD)).expect("downloaded");
    assert_eq!(first, sdists.join("markupsafe-3.0.2/markupsafe-3.0.2.tar.gz"));
    assert_eq!(sha256_file(&first).expect("read"), digest(GOOD));
    // Used from the cache while it holds: no download.
    let again = sdist(&sdists, &spec(), Some(&digest(GOOD)), note, |_| panic!("downloaded"))
        .expect("cached");
    assert_eq!(again, first);
    // Truncated in the cache: downloaded again, said so.
    fs::write(&first, b"the").expect("truncate");
    let fresh = sdist(&sdists, &spec(), None, note, pip(GOOD)).expect("downloaded again");
    assert_eq!(fs::read(&fresh).expect("read"), GOOD);
    let notes = notes
        .borrow()
        .join("\n")
        .replace(&digest(b"the"), "<truncated>")
        .replace(&digest(GOOD), "<recorded>");
    expect!["the cached sdist $SDISTS/markupsafe-3.0.2/markupsafe-3.0.2.tar.gz has sha256 <truncated>, not the <recorded> recorded at its download: truncated or replaced; downloading it again"]
        .assert_eq(&notes);
    // No temporaries left.
    let names: Vec<String> = fs::read_dir(&sdists)
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["markupsafe-3.0.2"]);
}

#[test]
fn a_download_that_fails_the_pin_is_refused_and_not_kept() {
    let (_t, sdists) = temp();
    let pin = "0".repeat(64);
    let err = sdist(&sdists, &spec(), Some(&pin), |_| {}, pip(GOOD)).expect_err("refused");
    let message = format!("{err:#}").replace(&digest(GOOD), "<digest>");
    expect!["the sdist of markupsafe==3.0.2 from PyPI has sha256 <digest>, but its suite pins 0000000000000000000000000000000000000000000000000000000000000000: not kept, not tested; check the pin against https://pypi.org/project/markupsafe/3.0.2/#files"]
        .assert_eq(&message);
    assert_eq!(fs::read_dir(&sdists).expect("read").count(), 0, "nothing kept");
}
