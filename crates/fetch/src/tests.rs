use camino::Utf8PathBuf;
use expect_test::expect;

use super::*;

const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: Utf8PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Utf8PathBuf::try_from(tmp.path().to_path_buf()).expect("utf-8 temp path");
        Fixture { _tmp: tmp, root }
    }

    fn mirror(&self, name: &str, content: &[u8]) -> Mirror {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("hello.tgz"), content).expect("write");
        Mirror::Dir(dir)
    }

    fn fetcher(&self, mirrors: Vec<Mirror>) -> Fetcher {
        Fetcher::new(self.root.join("cache"), mirrors, false).with_retries(0)
    }

    /// Replaces the temp root in messages so snapshots are stable.
    fn scrub(&self, s: String) -> String {
        s.replace(self.root.as_str(), "$TMP")
    }
}

fn archive() -> Archive {
    Archive {
        file_name: "hello.tgz".into(),
        upstream_url: "https://example.invalid/hello.tgz".into(),
        pin: Pin { sha256: HELLO.into(), size: 5 },
    }
}

fn cache_entries(f: &Fixture) -> Vec<String> {
    let dir = f.root.join("cache/sha256").join(HELLO);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn second_fetch_comes_from_the_cache() {
    let f = Fixture::new();
    let fetcher = f.fetcher(vec![f.mirror("good", b"hello")]);
    let first = fetcher.fetch(&archive()).expect("fetch from mirror");
    assert_eq!(f.scrub(first.origin.to_string()), "mirror $TMP/good");
    assert_eq!(fs::read(&first.path).expect("read"), b"hello");
    let second = fetcher.fetch(&archive()).expect("fetch from cache");
    assert_eq!(second.origin, Origin::Cache);
    assert_eq!(second.path, first.path);
    expect![[r#"["hello.tgz"]"#]].assert_eq(&format!("{:?}", cache_entries(&f)));
}

#[test]
fn a_bad_mirror_falls_through_and_its_bytes_are_not_kept() {
    let f = Fixture::new();
    let fetcher = f.fetcher(vec![
        Mirror::Url("http://127.0.0.1:9".into()),
        f.mirror("empty", b"hello").clone_without_file(),
        f.mirror("corrupt", b"jello"),
        f.mirror("truncated", b"hell"),
        f.mirror("good", b"hello"),
    ]);
    let fetched = fetcher.fetch(&archive()).expect("the last mirror is good");
    assert_eq!(f.scrub(fetched.origin.to_string()), "mirror $TMP/good");
    expect![[r#"["hello.tgz"]"#]].assert_eq(&format!("{:?}", cache_entries(&f)));
}

#[test]
fn every_source_failing_names_each_and_keeps_nothing() {
    let f = Fixture::new();
    let fetcher = f.fetcher(vec![f.mirror("corrupt", b"jello"), f.mirror("truncated", b"hell")]);
    let err = fetcher.fetch(&archive()).expect_err("no good source");
    expect![[r#"
        could not fetch hello.tgz: no source delivered the pinned bytes
          - mirror $TMP/corrupt: hello.tgz from mirror $TMP/corrupt does not match its pin:
              expected sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
              actual   sha256 187c9bceeb919e1b3e6d20fa50ecabf7d9d50b5343e8f9a3d912abb13929102e
            (pinned in matrix/versions.toml); the bytes were not kept
          - mirror $TMP/truncated: hello.tgz from mirror $TMP/truncated has the wrong size: expected 5 bytes, got 4 bytes (pinned in matrix/versions.toml); the bytes were not kept"#]]
    .assert_eq(&f.scrub(err.to_string()));
    expect!["[]"].assert_eq(&format!("{:?}", cache_entries(&f)));
}

/// An endless source (a mirror file that is a symlink to `/dev/zero`) is read up to the
/// pinned size plus one byte, then refused; nothing is kept.
#[test]
fn an_endless_source_is_cut_at_the_pinned_size() {
    let f = Fixture::new();
    let dir = f.root.join("endless");
    fs::create_dir_all(&dir).expect("mkdir");
    std::os::unix::fs::symlink("/dev/zero", dir.join("hello.tgz")).expect("symlink");
    let err = f.fetcher(vec![Mirror::Dir(dir)]).fetch(&archive()).expect_err("endless");
    expect![[r#"
        could not fetch hello.tgz: no source delivered the pinned bytes
          - mirror $TMP/endless: hello.tgz from mirror $TMP/endless is larger than its pinned size of 5 bytes (pinned in matrix/versions.toml): reading stopped after 6 bytes and the bytes were not kept"#]]
    .assert_eq(&f.scrub(err.to_string()));
    expect!["[]"].assert_eq(&format!("{:?}", cache_entries(&f)));
}

/// A failure to write is reported as writing (naming the file), not as reading the source;
/// a failure to read names the source.
#[test]
fn write_and_read_failures_are_told_apart() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(5))
        }
    }
    let outcome = |r: Result<u64, CopyError>| match r {
        Ok(n) => format!("ok {n}"),
        Err(CopyError::Write(e)) => format!("write: {e}"),
        Err(CopyError::Source(e)) => format!("source: {e}"),
    };
    expect!["write: No space left on device (os error 28)"].assert_eq(&outcome(copy_capped(
        &b"hello"[..],
        &mut Full,
        5,
        "/m/hello.tgz",
        "x",
    )));
    expect!["source: reading /m/hello.tgz: Input/output error (os error 5)"]
        .assert_eq(&outcome(copy_capped(Broken, &mut Vec::new(), 5, "/m/hello.tgz", "x")));
    expect!["ok 5"].assert_eq(&outcome(copy_capped(&b"hello"[..], &mut Vec::new(), 5, "", "x")));
}

/// A `.download-*` left by a killed run is removed by the next fetch; one that a live run
/// holds locked is not.
#[test]
fn stale_downloads_are_removed_and_live_ones_kept() {
    let f = Fixture::new();
    let dir = f.root.join("cache/sha256").join(HELLO);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join(".download-killed"), b"hel").expect("a stale partial download");
    fs::write(dir.join(".download-live"), b"he").expect("a live partial download");
    let live = fs::File::open(dir.join(".download-live")).expect("open");
    live.lock().expect("locked as a live run holds it");
    let fetcher = f.fetcher(vec![f.mirror("good", b"hello")]);
    fetcher.fetch(&archive()).expect("fetch from mirror");
    expect![[r#"[".download-live", "hello.tgz"]"#]].assert_eq(&format!("{:?}", cache_entries(&f)));
    drop(live);
    // Also when the archive is already cached.
    let again = fetcher.fetch(&archive()).expect("fetch from cache");
    assert_eq!(again.origin, Origin::Cache);
    expect![[r#"["hello.tgz"]"#]].assert_eq(&format!("{:?}", cache_entries(&f)));
}

/// A source either has no `.asc` (the next source is asked) or delivers a usable one: a file
/// too large to be a signature, or one that cannot be read, is an error naming it, never
/// skipped. (A small file that is not a signature is cached here and refused when checked.)
#[test]
fn a_signature_file_is_absent_or_usable() {
    let f = Fixture::new();
    let none = f.mirror("none", b"hello");
    let big = f.mirror("big", b"hello");
    fs::write(big_path(&big), vec![b'x'; (MAX_SIGNATURE_BYTES + 1) as usize]).expect("write");
    let err = f.fetcher(vec![none.clone(), big]).fetch_signature(&archive()).expect_err("big");
    expect!["$TMP/big/hello.tgz.asc: is larger than 1048576 bytes, so it is not a detached signature (those are a few hundred bytes); fix or remove it at the source, then run again"]
        .assert_eq(&f.scrub(err.to_string()));
    let unreadable = f.mirror("dir", b"hello");
    fs::create_dir(big_path(&unreadable)).expect("an .asc that is a directory");
    let err = f.fetcher(vec![unreadable]).fetch_signature(&archive()).expect_err("a directory");
    expect!["$TMP/dir/hello.tgz.asc: cannot be read: Is a directory (os error 21); fix or remove it at the source, then run again"]
        .assert_eq(&f.scrub(err.to_string()));
    expect!["[]"].assert_eq(&format!("{:?}", cache_entries(&f)));
    let small = f.mirror("small", b"hello");
    fs::write(big_path(&small), b"not a signature").expect("write");
    let got = f.fetcher(vec![none, small]).fetch_signature(&archive()).expect("small");
    assert!(got.is_some_and(|p| p.ends_with("hello.tgz.asc")));
}

/// A `.sigstore` bundle is fetched as the `.asc` is, beside the archive in the cache, from the
/// first source that has one; the two never stand in for each other.
#[test]
fn a_bundle_is_fetched_beside_the_archive() {
    let f = Fixture::new();
    let none = f.mirror("none", b"hello");
    let with_asc = f.mirror("asc", b"hello");
    fs::write(big_path(&with_asc), b"an asc").expect("write");
    let fetcher = f.fetcher(vec![none.clone(), with_asc]);
    assert_eq!(fetcher.fetch_bundle(&archive()).expect("no bundle anywhere"), None);
    let big = f.mirror("big", b"hello");
    fs::write(bundle_path(&big), vec![b'{'; (MAX_SIGNATURE_BYTES + 1) as usize]).expect("write");
    let err = f.fetcher(vec![big]).fetch_bundle(&archive()).expect_err("big");
    expect!["$TMP/big/hello.tgz.sigstore: is larger than 1048576 bytes, so it is not a Sigstore bundle (those are a few kilobytes); fix or remove it at the source, then run again"]
        .assert_eq(&f.scrub(err.to_string()));
    let with_bundle = f.mirror("bundle", b"hello");
    fs::write(bundle_path(&with_bundle), b"{}").expect("write");
    let got = f.fetcher(vec![none, with_bundle]).fetch_bundle(&archive()).expect("bundle");
    let got = got.expect("a bundle");
    assert!(got.ends_with("hello.tgz.sigstore"), "{got}");
    assert_eq!(fs::read(&got).expect("cached"), b"{}");
}

fn bundle_path(mirror: &Mirror) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{}", big_path(mirror)).replace(".asc", ".sigstore"))
}

fn big_path(mirror: &Mirror) -> Utf8PathBuf {
    match mirror {
        Mirror::Dir(dir) => dir.join("hello.tgz.asc"),
        Mirror::Url(_) => unreachable!("a directory mirror"),
    }
}

/// An OS error is printed once in the chain `main` prints.
#[test]
fn a_cache_that_cannot_be_written_names_it_once() {
    let f = Fixture::new();
    fs::write(f.root.join("cache"), b"a file where the cache directory should be").expect("w");
    let err = f.fetcher(vec![f.mirror("good", b"hello")]).fetch(&archive()).expect_err("cache");
    expect!["cannot write the cache $TMP/cache/sha256/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824; check that the work directory is writable and its file system has free space: Not a directory (os error 20)"]
        .assert_eq(&f.scrub(chain(&err)));
}

#[test]
fn mirror_spellings() {
    let parse = |s: &str| match s.parse::<Mirror>() {
        Ok(m) => format!("{m:?}"),
        Err(e) => format!("error: {e}"),
    };
    expect![[r#"Dir("/srv/python")"#]].assert_eq(&parse("file:///srv/python"));
    expect![[r#"Dir("/srv/py thon")"#]].assert_eq(&parse("file:///srv/py%20thon"));
    expect![[r#"Dir("/srv/python")"#]].assert_eq(&parse("file://localhost/srv/python"));
    expect!["error: mirror `file:mirror`: a file URL is file:///absolute/path (or give the directory itself)"]
        .assert_eq(&parse("file:mirror"));
    expect!["error: mirror `file://host/srv`: a file URL is file:///absolute/path (or give the directory itself)"]
        .assert_eq(&parse("file://host/srv"));
    expect!["error: a mirror cannot be empty: give a directory, file:///path or https://host/base"]
        .assert_eq(&parse(""));
    expect!["error: mirror `https://` is not a valid URL: empty string"]
        .assert_eq(&parse("https://"));
    expect![[r#"Dir("../shared/cpython-sources")"#]].assert_eq(&parse("../shared/cpython-sources"));
    expect![[r#"Url("https://mirror.example/python")"#]]
        .assert_eq(&parse("https://mirror.example/python/"));
    expect!["error: mirror `ftp://x/y`: only directories, file:// and https:// are supported"]
        .assert_eq(&parse("ftp://x/y"));
}

#[test]
fn cache_key_is_the_digest() {
    expect!["/c/sha256/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824/hello.tgz"]
        .assert_eq(cache_path(Utf8Path::new("/c"), &archive()).as_str());
}

impl Mirror {
    fn clone_without_file(&self) -> Mirror {
        if let Mirror::Dir(dir) = self {
            fs::remove_file(dir.join("hello.tgz")).expect("remove");
        }
        self.clone()
    }
}
