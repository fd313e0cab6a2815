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
            (pinned in matrix/versions.toml; the file was not kept)
          - mirror $TMP/truncated: hello.tgz from mirror $TMP/truncated has the wrong size: expected 5 bytes, got 4 bytes (pinned in matrix/versions.toml)"#]]
    .assert_eq(&f.scrub(err.to_string()));
    expect!["[]"].assert_eq(&format!("{:?}", cache_entries(&f)));
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
