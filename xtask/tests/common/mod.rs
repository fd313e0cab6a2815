//! Helpers for the end-to-end tests: a scratch directory per test, running the real
//! `xtask` binary in it, scrubbing paths out of its output, copies of the matrix, and
//! small archives crafted byte by byte. Each test binary (`cli`, `faults`) uses a part of it.
#![allow(dead_code)]

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};

/// The pin of `Python-3.11.2.tgz` in `matrix/versions.toml`.
pub const PIN_3_11_2_SHA256: &str =
    "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849";
/// The pinned size of `Python-3.11.2.tgz`.
pub const PIN_3_11_2_SIZE: u64 = 26_437_858;

/// The real CPython archives, the repository's sibling `../shared/cpython-sources`.
pub fn shared_sources() -> Utf8PathBuf {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/cpython-sources");
    let archive = dir.join("Python-3.11.2.tgz");
    assert!(
        archive.is_file(),
        "the end-to-end tests need the real CPython archives: {archive} is missing; \
         check out the shared sources next to the repository (../shared/cpython-sources)"
    );
    dir.canonicalize_utf8().expect("resolving ../shared/cpython-sources")
}

/// The repository's `matrix/` directory.
pub fn matrix_dir() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../matrix")
}

/// What one run of `cargo xtask` did, with the scratch paths scrubbed out.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output, scrubbed.
    pub stdout: String,
    /// Standard error, scrubbed.
    pub stderr: String,
}

impl Run {
    /// `exit N`, then stdout and stderr, each under a `--- name` line when not empty.
    pub fn render(&self) -> String {
        let code = self.code.map_or("killed by a signal".to_owned(), |c| c.to_string());
        let mut out = format!("exit {code}\n");
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.is_empty() {
                out.push_str(&format!("--- {name}\n{text}"));
            }
        }
        out
    }
}

/// One test's scratch directory (`$TMP` in snapshots) with its work directory
/// `$TMP/work`, and the substitutions that make output stable.
pub struct Case {
    _dir: tempfile::TempDir,
    /// The scratch directory.
    pub root: Utf8PathBuf,
    /// `--work-dir`, passed to every run.
    pub work: Utf8PathBuf,
    /// The real archives (`$SHARED` in snapshots).
    pub shared: Utf8PathBuf,
    scrubs: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

impl Case {
    /// A fresh scratch directory.
    pub fn new() -> Case {
        let dir = tempfile::tempdir().expect("creating a scratch directory");
        let root = Utf8PathBuf::try_from(dir.path().to_owned()).expect("utf-8 temp dir");
        let shared = shared_sources();
        let scrubs =
            vec![(shared.to_string(), "$SHARED".to_owned()), (root.to_string(), "$TMP".to_owned())];
        Case { work: root.join("work"), _dir: dir, root, shared, scrubs, env: Vec::new() }
    }

    /// Also replaces `from` with `to` in output (applied in the order added, after the paths).
    pub fn scrub(&mut self, from: &str, to: &str) {
        self.scrubs.push((from.to_owned(), to.to_owned()));
    }

    /// Sets an environment variable for later runs.
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Runs `cargo xtask --work-dir $TMP/work ARGS` from `$TMP`, with none of the user's
    /// `DEBUG_MATRIX_*` variables.
    pub fn xtask(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--work-dir")
            .arg(&self.work)
            .args(args)
            .current_dir(&self.root)
            .env_remove("DEBUG_MATRIX_DIR")
            .env_remove("DEBUG_MATRIX_MIRROR")
            .env("NO_COLOR", "1");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("running the xtask binary");
        Run {
            code: out.status.code(),
            stdout: self.scrubbed(&out.stdout),
            stderr: self.scrubbed(&out.stderr),
        }
    }

    /// Starts `cargo xtask --work-dir $TMP/work ARGS` like [`Case::xtask`], without waiting
    /// for it and with its output discarded (for tests that kill it).
    pub fn spawn_xtask(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--work-dir")
            .arg(&self.work)
            .args(args)
            .current_dir(&self.root)
            .env_remove("DEBUG_MATRIX_DIR")
            .env_remove("DEBUG_MATRIX_MIRROR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("starting the xtask binary")
    }

    /// Runs `cargo xtask --work-dir $TMP/work ARGS` with the size of any file it writes
    /// limited to `kib` KiB (`ulimit -f`, with SIGXFSZ ignored so that a write past it fails
    /// with EFBIG, as on a full disk, instead of killing the process). The arguments reach
    /// the binary as `"$@"`, never through the shell's parser.
    pub fn xtask_with_file_size_limit(&self, kib: u64, args: &[&str]) -> Run {
        let mut cmd = Command::new("sh");
        // `ulimit -f` counts 512-byte blocks in POSIX sh.
        cmd.arg("-c")
            .arg(format!("ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"", kib * 2))
            .arg(env!("CARGO_BIN_EXE_xtask"))
            .arg("--work-dir")
            .arg(&self.work)
            .args(args)
            .current_dir(&self.root)
            .env_remove("DEBUG_MATRIX_DIR")
            .env_remove("DEBUG_MATRIX_MIRROR")
            .env("NO_COLOR", "1");
        let out = cmd.output().expect("running the xtask binary under sh");
        Run {
            code: out.status.code(),
            stdout: self.scrubbed(&out.stdout),
            stderr: self.scrubbed(&out.stderr),
        }
    }

    fn scrubbed(&self, bytes: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for (from, to) in &self.scrubs {
            text = text.replace(from, to);
        }
        text
    }

    /// A new directory `$TMP/<name>`.
    pub fn dir(&self, name: &str) -> Utf8PathBuf {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {dir}: {e}"));
        dir
    }

    /// A copy of the repository's `matrix/` at `$TMP/matrix` (keys included).
    pub fn copy_matrix(&self) -> Utf8PathBuf {
        let dest = self.dir("matrix");
        copy_tree(&matrix_dir(), &dest);
        dest
    }

    /// The copied matrix with `from` replaced by `to` (exactly once) in `file`.
    pub fn matrix_with(&self, file: &str, from: &str, to: &str) -> Utf8PathBuf {
        let dir = self.copy_matrix();
        edit(&dir.join(file), from, to);
        dir
    }

    /// The source trees (and anything else) in `$TMP/work/src`, sorted; empty if it does
    /// not exist.
    pub fn sources(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Ok(entries) = self.work.join("src").read_dir_utf8() {
            for entry in entries {
                names.push(entry.expect("listing src/").file_name().to_owned());
            }
        }
        names.sort();
        names
    }

    /// Every file or symlink (not directory) below `$TMP/work/cache`, relative to it.
    pub fn cached_files(&self) -> Vec<String> {
        walk(&self.work.join("cache"))
            .into_iter()
            .filter(|(_, meta)| !meta.is_dir())
            .map(|(path, _)| path)
            .collect()
    }

    /// Every path below `$TMP` whose last component is one of `names`.
    pub fn find_named(&self, names: &[&str]) -> Vec<String> {
        walk(&self.root)
            .into_iter()
            .map(|(path, _)| path)
            .filter(|path| names.iter().any(|n| Utf8Path::new(path).file_name() == Some(n)))
            .collect()
    }
}

/// A directory in which no file can be created or removed while this guard lives, even by
/// root: mode 0555, and where that does not stop the test process (root), the immutable
/// attribute (`chattr +i`). Dropping it makes the directory writable again.
pub struct ReadOnlyDir {
    path: Utf8PathBuf,
    immutable: bool,
}

impl ReadOnlyDir {
    /// Makes `path` read-only; fails the test if neither way works here.
    pub fn new(path: &Utf8Path) -> ReadOnlyDir {
        fs::set_permissions(path, fs::Permissions::from_mode(0o555))
            .unwrap_or_else(|e| panic!("chmod 555 {path}: {e}"));
        let mut guard = ReadOnlyDir { path: path.to_owned(), immutable: false };
        if guard.writable() {
            let status = Command::new("chattr").arg("+i").arg(path).status();
            guard.immutable = status.as_ref().is_ok_and(|s| s.success());
            assert!(
                guard.immutable && !guard.writable(),
                "cannot make {path} read-only: the tests run as root and `chattr +i` failed \
                 ({status:?}); run them as another user or on a file system with attributes"
            );
        }
        guard
    }

    fn writable(&self) -> bool {
        let probe = self.path.join(".probe");
        let created = fs::write(&probe, b"").is_ok();
        if created {
            let _ = fs::remove_file(&probe);
        }
        created
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        }
        let _ = fs::set_permissions(&self.path, fs::Permissions::from_mode(0o755));
    }
}

/// Every path below `dir` (not following symlinks), relative to it, sorted, with its
/// metadata; empty if `dir` does not exist.
fn walk(dir: &Utf8Path) -> Vec<(String, fs::Metadata)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(next) = todo.pop() {
        let Ok(entries) = next.read_dir_utf8() else { continue };
        for entry in entries {
            let path = entry.expect("listing a directory").into_path();
            let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("stat {path}: {e}"));
            if meta.is_dir() {
                todo.push(path.clone());
            }
            let rel = path.strip_prefix(dir).expect("below the walked directory");
            out.push((rel.to_string(), meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn copy_tree(from: &Utf8Path, to: &Utf8Path) {
    for entry in from.read_dir_utf8().unwrap_or_else(|e| panic!("listing {from}: {e}")) {
        let entry = entry.expect("listing the matrix");
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("creating {dest}: {e}"));
            copy_tree(entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap_or_else(|e| panic!("copying to {dest}: {e}"));
        }
    }
}

/// Replaces `from` with `to` in `path`; `from` must occur exactly once.
pub fn edit(path: &Utf8Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert_eq!(text.matches(from).count(), 1, "{path} should hold `{from}` exactly once");
    fs::write(path, text.replacen(from, to, 1)).unwrap_or_else(|e| panic!("writing {path}: {e}"));
}

/// Inverts every bit of the byte in the middle of `path`.
pub fn flip_middle_byte(path: &Utf8Path) {
    let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {path}: {e}"));
}

/// Whether `path` is a regular file someone may execute.
pub fn is_executable(path: &Utf8Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One entry of a crafted archive, written with a raw, unchecked name.
pub enum Entry<'a> {
    /// A directory.
    Dir(&'a str),
    /// A regular file, mode 0755, and its contents.
    File(&'a str, &'a [u8]),
    /// A symlink and its target.
    Symlink(&'a str, &'a str),
    /// A hard link and its target (relative to the archive root, as tar stores it).
    HardLink(&'a str, &'a str),
}

/// A gzip-compressed tar of `entries`. Names go into the header bytes directly, because
/// the tar crate's `set_path` refuses `..`.
pub fn tgz(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let (name, kind, data, link): (&str, tar::EntryType, &[u8], &str) = match *entry {
            Entry::Dir(name) => (name, tar::EntryType::Directory, b"", ""),
            Entry::File(name, data) => (name, tar::EntryType::Regular, data, ""),
            Entry::Symlink(name, target) => (name, tar::EntryType::Symlink, b"", target),
            Entry::HardLink(name, target) => (name, tar::EntryType::Link, b"", target),
        };
        let mut header = tar::Header::new_gnu();
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o755);
        header.set_mtime(1_600_000_000);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).expect("appending to a Vec cannot fail");
    }
    let tar = builder.into_inner().expect("finishing a Vec archive");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip into a Vec");
    gz.finish().expect("gzip into a Vec")
}

/// The lowercase hex SHA-256 of `data` (FIPS 180-4), so a test can pin an archive it made
/// without another dependency.
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
        for (k, w) in K.iter().zip(w) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(w);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (h, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
    state.iter().map(|word| format!("{word:08x}")).collect()
}
