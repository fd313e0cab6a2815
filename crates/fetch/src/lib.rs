//! Gets pinned archives into a content-addressed cache.
//!
//! [`Fetcher::fetch`] looks for an archive in this order and stops at the first source that
//! delivers bytes matching the pin:
//!
//! 1. the cache: `<cache>/sha256/<digest>/<file name>` (present only if verified before);
//! 2. each mirror, in order: a local directory, a `file://` URL or an `https://` base URL;
//! 3. upstream (python.org), unless disabled.
//!
//! Bytes are hashed while they stream into a temporary file inside the cache; only a file
//! whose size and sha256 match the pin is renamed into place (atomically). A file that does
//! not match is deleted, and the error names the file, the source, and both digests. No more
//! than the pinned size plus one byte is ever read from a source, so an endless one cannot
//! fill the disk. Network errors are retried with exponential backoff; a failing source falls
//! through to the next one; a failure to write the cache stops the fetch.
//!
//! Leftovers: a run holds an advisory lock (`flock`) on its `.download-*` temporary while it
//! writes; [`remove_stale_downloads`] (called by every fetch) removes the ones nobody holds,
//! which killed runs left, and never another live run's.

use std::{
    fmt, fs,
    io::{self, Read, Write},
    str::FromStr,
    time::Duration,
};

use backon::{BlockingRetryable, ExponentialBuilder};
use camino::{Utf8Path, Utf8PathBuf};
use verify::{HashingWriter, Pin, VerifyError};

/// An archive to fetch: its file name, where upstream has it, and its pin.
#[derive(Debug, Clone)]
pub struct Archive {
    /// File name, e.g. `Python-3.13.5.tar.xz`; mirrors are searched for this name.
    pub file_name: String,
    /// Full upstream URL.
    pub upstream_url: String,
    /// The size and sha256 the bytes must have.
    pub pin: Pin,
}

/// A place archives can be copied from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// A local directory holding archives by file name.
    Dir(Utf8PathBuf),
    /// An `http(s)://` base URL; the archive is `<base>/<file name>`.
    Url(String),
}

impl FromStr for Mirror {
    type Err = String;

    /// Parses `file:///path` (percent-decoded), `https://host/base` (or `http://`: the pin,
    /// not the transport, is what makes an archive trusted), or a plain directory path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(
                "a mirror cannot be empty: give a directory, file:///path or https://host/base"
                    .to_owned(),
            );
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            let uri = s
                .parse::<ureq::http::Uri>()
                .map_err(|e| format!("mirror `{s}` is not a valid URL: {e}"))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(format!("mirror `{s}` has no host"));
            }
            return Ok(Mirror::Url(s.trim_end_matches('/').to_owned()));
        }
        if let Some(rest) = s.strip_prefix("file:") {
            // file:///abs/path or file://localhost/abs/path; nothing else names a local path.
            let path = rest
                .strip_prefix("//")
                .map(|p| p.strip_prefix("localhost").unwrap_or(p))
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| {
                    format!("mirror `{s}`: a file URL is file:///absolute/path (or give the directory itself)")
                })?;
            let decoded = percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| format!("mirror `{s}` is not a UTF-8 path"))?;
            return Ok(Mirror::Dir(Utf8PathBuf::from(decoded.as_ref())));
        }
        if s.contains("://") {
            return Err(format!(
                "mirror `{s}`: only directories, file:// and https:// are supported"
            ));
        }
        Ok(Mirror::Dir(Utf8PathBuf::from(s)))
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mirror::Dir(dir) => write!(f, "mirror {dir}"),
            Mirror::Url(url) => write!(f, "mirror {url}"),
        }
    }
}

/// Where a fetched archive came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// It was already in the cache: no work was done.
    Cache,
    /// Copied or downloaded from this mirror.
    Mirror(Mirror),
    /// Downloaded from this upstream URL.
    Upstream(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Cache => write!(f, "cache"),
            Origin::Mirror(m) => write!(f, "{m}"),
            Origin::Upstream(url) => write!(f, "upstream {url}"),
        }
    }
}

/// An archive in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its path in the cache.
    pub path: Utf8PathBuf,
    /// Where it came from in this run.
    pub origin: Origin,
}

/// Why one source did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source does not have the file (missing file, HTTP 404).
    #[error("not found at {0}")]
    NotFound(String),
    /// The bytes do not match the pin; they were deleted. (Not the error's `source`: its
    /// message is already in this one, and a chain would print it twice.)
    #[error("{0}; the bytes were not kept")]
    Mismatch(VerifyError),
    /// The source has more bytes than the pin; reading stopped one byte past the pinned size.
    #[error(
        "{what} is larger than its pinned size of {size} bytes (pinned in matrix/versions.toml): reading stopped after {} bytes and the bytes were not kept", size + 1
    )]
    TooLarge {
        /// The file and where it came from.
        what: String,
        /// The pinned size.
        size: u64,
    },
    /// Network or file system failure reading the source (retried for network sources).
    #[error("{0}")]
    Transport(String),
    /// The temporary file in the cache could not be written: no other source is tried.
    #[error("cannot write {path}")]
    Write {
        /// The temporary file (or the directory it was to be created in).
        path: Utf8PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl From<VerifyError> for SourceError {
    fn from(err: VerifyError) -> Self {
        SourceError::Mismatch(err)
    }
}

/// Why an archive could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Every source was tried and none delivered the pinned bytes.
    #[error("{}", describe_attempts(file_name, attempts))]
    AllSourcesFailed {
        /// The archive.
        file_name: String,
        /// Each source tried and why it failed.
        attempts: Vec<(Origin, SourceError)>,
    },
    /// The cache directory could not be written.
    #[error(
        "cannot write the cache {path}; check that the work directory is writable and its file system has free space"
    )]
    Cache {
        /// The cache path.
        path: Utf8PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing the bytes from a source into the cache failed; nothing was kept.
    #[error(
        "cannot write {path} while fetching {file_name} from {origin}; nothing was kept: check that the file system of the work directory has free space and is writable"
    )]
    Write {
        /// The archive.
        file_name: String,
        /// Where the bytes came from.
        origin: Origin,
        /// The temporary file.
        path: Utf8PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A source has a signature file (`.asc` or `.sigstore`) that is not usable (too large to
    /// be one, unreadable).
    #[error("{location}: {problem}; fix or remove it at the source, then run again")]
    Signature {
        /// The `.asc` or `.sigstore` at the source (a path or URL).
        location: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A temporary left by an interrupted run could not be removed.
    #[error("cannot remove {path}, left behind by an interrupted download; delete it by hand")]
    Stale {
        /// The temporary file.
        path: Utf8PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn describe_attempts(file_name: &str, attempts: &[(Origin, SourceError)]) -> String {
    let mut s = format!("could not fetch {file_name}: no source delivered the pinned bytes");
    if attempts.is_empty() {
        s.push_str("\n  no source to try: pass --mirror DIR (or set DEBUG_MATRIX_MIRROR), or allow upstream");
    }
    for (origin, err) in attempts {
        s.push_str(&format!("\n  - {origin}: {}", chain(err).replace('\n', "\n    ")));
    }
    s
}

/// `err` and its sources, `: `-separated, as anyhow prints a chain.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The largest `.asc` or `.sigstore` accepted: a detached signature is a few hundred bytes, a
/// Sigstore bundle a few kilobytes.
pub const MAX_SIGNATURE_BYTES: u64 = 1 << 20;

/// A file published beside an archive that proves where it came from.
#[derive(Debug, Clone, Copy)]
enum Companion {
    /// `<archive>.asc`, a detached OpenPGP signature.
    Signature,
    /// `<archive>.sigstore`, a Sigstore bundle.
    Bundle,
}

impl Companion {
    fn suffix(self) -> &'static str {
        match self {
            Companion::Signature => ".asc",
            Companion::Bundle => ".sigstore",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Companion::Signature => "signature",
            Companion::Bundle => "Sigstore bundle",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Companion::Signature => "a detached signature (those are a few hundred bytes)",
            Companion::Bundle => "a Sigstore bundle (those are a few kilobytes)",
        }
    }
}

/// The prefix of the temporary files downloads write into, beside their destination.
const TEMP_PREFIX: &str = ".download-";

/// Fetches archives into a content-addressed cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache_dir: Utf8PathBuf,
    mirrors: Vec<Mirror>,
    upstream: bool,
    retries: usize,
}

impl Fetcher {
    /// A fetcher with cache root `cache_dir`, trying `mirrors` in order, then upstream if
    /// `upstream` is true.
    pub fn new(cache_dir: Utf8PathBuf, mirrors: Vec<Mirror>, upstream: bool) -> Fetcher {
        Fetcher { cache_dir, mirrors, upstream, retries: 3 }
    }

    /// Sets how many times a network error is retried (default 3).
    pub fn with_retries(mut self, retries: usize) -> Fetcher {
        self.retries = retries;
        self
    }

    /// Where `archive` lives in the cache: `<cache>/sha256/<digest>/<file name>`.
    pub fn cache_path(&self, archive: &Archive) -> Utf8PathBuf {
        cache_path(&self.cache_dir, archive)
    }

    /// Returns the cached archive, fetching it from the first source that has the pinned bytes.
    ///
    /// A source whose bytes do not match the pin, or that has more bytes than the pinned size
    /// (reading stops one byte past it), is skipped for the next one. A failure to write the
    /// cache stops at once: another source would fail the same way. `.download-*`
    /// temporaries of killed runs are removed first (see [`remove_stale_downloads`]).
    pub fn fetch(&self, archive: &Archive) -> Result<Fetched, FetchError> {
        let dest = self.cache_path(archive);
        let dir = dest.parent().unwrap_or(&self.cache_dir).to_owned();
        remove_stale_downloads(&dir)?;
        if dest.is_file() {
            return Ok(Fetched { path: dest, origin: Origin::Cache });
        }
        fs::create_dir_all(&dir)
            .map_err(|source| FetchError::Cache { path: dir.clone(), source })?;
        let mut attempts = Vec::new();
        for origin in self.origins(archive) {
            match self.copy_from(&origin, archive, &dir, &dest) {
                Ok(()) => return Ok(Fetched { path: dest, origin }),
                Err(SourceError::Write { path, source }) => {
                    let _ = fs::remove_dir(&dir);
                    let file_name = archive.file_name.clone();
                    return Err(FetchError::Write { file_name, origin, path, source });
                }
                Err(err) => attempts.push((origin, err)),
            }
        }
        // Leave no empty directory behind for an archive that could not be fetched.
        let _ = fs::remove_dir(&dir);
        Err(FetchError::AllSourcesFailed { file_name: archive.file_name.clone(), attempts })
    }

    /// Fetches `<archive>.asc`, the detached signature, from the same sources into the cache,
    /// beside the archive. Returns `None` if no source has one. The signature is not pinned:
    /// it proves itself against the pinned key (see `verify::check_signature`).
    ///
    /// A source without the file (or a network source that cannot be reached) is skipped. A
    /// source that has it must deliver a usable one: a file that cannot be read, or that is
    /// larger than [`MAX_SIGNATURE_BYTES`] (no signature is), is an error, as a small file
    /// that is not a signature is when it is checked. Neither is ever silently ignored.
    pub fn fetch_signature(&self, archive: &Archive) -> Result<Option<Utf8PathBuf>, FetchError> {
        self.fetch_beside(archive, Companion::Signature)
    }

    /// Fetches `<archive>.sigstore`, the Sigstore bundle python.org publishes from 3.14 on
    /// (and beside the `.asc` for 3.10 to 3.13), as [`Fetcher::fetch_signature`] fetches the
    /// `.asc`: from the same sources, into the cache beside the archive, never pinned (it
    /// proves itself against the pinned signer, see `verify::check_bundle`), `None` if no
    /// source has one, an error if a source has an unusable one.
    pub fn fetch_bundle(&self, archive: &Archive) -> Result<Option<Utf8PathBuf>, FetchError> {
        self.fetch_beside(archive, Companion::Bundle)
    }

    fn fetch_beside(
        &self,
        archive: &Archive,
        companion: Companion,
    ) -> Result<Option<Utf8PathBuf>, FetchError> {
        let suffix = companion.suffix();
        let archive_path = self.cache_path(archive);
        let dest = Utf8PathBuf::from(format!("{archive_path}{suffix}"));
        let dir = dest.parent().unwrap_or(&self.cache_dir).to_owned();
        remove_stale_downloads(&dir)?;
        if dest.is_file() {
            return Ok(Some(dest));
        }
        fs::create_dir_all(&dir)
            .map_err(|source| FetchError::Cache { path: dir.clone(), source })?;
        let sig = Archive {
            file_name: format!("{}{suffix}", archive.file_name),
            upstream_url: format!("{}{suffix}", archive.upstream_url),
            pin: Pin { sha256: String::new(), size: 0 },
        };
        for origin in self.origins(&sig) {
            let location = location(&origin, &sig);
            let reader = match self.open(&origin, &sig) {
                Ok(reader) => reader,
                Err(SourceError::NotFound(_)) => continue,
                Err(err) if is_network(&origin) => {
                    eprintln!(
                        "fetch: {origin}: {err}; looking for the {} elsewhere",
                        companion.name()
                    );
                    continue;
                }
                Err(err) => {
                    return Err(FetchError::Signature { location, problem: chain(&err) });
                }
            };
            let mut bytes = Vec::new();
            if let Err(e) = reader.take(MAX_SIGNATURE_BYTES + 1).read_to_end(&mut bytes) {
                let problem = format!("cannot be read: {e}");
                return Err(FetchError::Signature { location, problem });
            }
            if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
                let problem = format!(
                    "is larger than {MAX_SIGNATURE_BYTES} bytes, so it is not {}",
                    companion.what()
                );
                return Err(FetchError::Signature { location, problem });
            }
            let tmp = locked_temp(&dir)
                .map_err(|source| FetchError::Cache { path: dir.clone(), source })?;
            let cache_err = |source| FetchError::Cache { path: dest.clone(), source };
            tmp.as_file().write_all(&bytes).map_err(cache_err)?;
            tmp.as_file().sync_all().map_err(cache_err)?;
            tmp.persist(&dest).map_err(|e| cache_err(e.error))?;
            return Ok(Some(dest));
        }
        Ok(None)
    }

    fn origins(&self, archive: &Archive) -> Vec<Origin> {
        let mut origins: Vec<Origin> = self.mirrors.iter().cloned().map(Origin::Mirror).collect();
        if self.upstream {
            origins.push(Origin::Upstream(archive.upstream_url.clone()));
        }
        origins
    }

    fn copy_from(
        &self,
        origin: &Origin,
        archive: &Archive,
        dir: &Utf8Path,
        dest: &Utf8Path,
    ) -> Result<(), SourceError> {
        let attempt = || self.copy_once(origin, archive, dir, dest);
        if !is_network(origin) {
            return attempt();
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_times(self.retries);
        attempt
            .retry(backoff)
            .sleep(std::thread::sleep)
            .when(|e| matches!(e, SourceError::Transport(_)))
            .notify(|e, delay| eprintln!("fetch: {origin}: {e}; retrying in {delay:?}"))
            .call()
    }

    fn copy_once(
        &self,
        origin: &Origin,
        archive: &Archive,
        dir: &Utf8Path,
        dest: &Utf8Path,
    ) -> Result<(), SourceError> {
        let reader = self.open(origin, archive)?;
        // Dropping `tmp` on any error deletes the partial or mismatching bytes.
        let tmp = locked_temp(dir)
            .map_err(|source| SourceError::Write { path: dir.to_owned(), source })?;
        let tmp_path = Utf8PathBuf::from_path_buf(tmp.path().to_owned())
            .unwrap_or_else(|_| dir.join(format!("{TEMP_PREFIX}*")));
        let write_err = |source| SourceError::Write { path: tmp_path.clone(), source };
        let mut writer = HashingWriter::new(io::BufWriter::new(tmp.as_file()));
        let what = format!("{} from {origin}", archive.file_name);
        copy_capped(reader, &mut writer, archive.pin.size, &location(origin, archive), &what)
            .map_err(|err| match err {
                CopyError::Source(err) => err,
                CopyError::Write(source) => write_err(source),
            })?;
        writer.flush().map_err(write_err)?;
        writer.check(&archive.pin, &what)?;
        drop(writer);
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(dest)
            .map_err(|e| SourceError::Write { path: dest.to_owned(), source: e.error })?;
        Ok(())
    }

    fn open(&self, origin: &Origin, archive: &Archive) -> Result<Box<dyn Read>, SourceError> {
        match origin {
            Origin::Cache => Err(SourceError::NotFound("cache".to_owned())),
            Origin::Mirror(Mirror::Dir(dir)) => {
                let path = dir.join(&archive.file_name);
                match fs::File::open(&path) {
                    Ok(file) => Ok(Box::new(file)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        Err(SourceError::NotFound(path.to_string()))
                    }
                    Err(e) => Err(SourceError::Transport(format!("cannot open {path}: {e}"))),
                }
            }
            Origin::Mirror(Mirror::Url(base)) => {
                http_get(&format!("{base}/{}", archive.file_name), &archive.file_name)
            }
            Origin::Upstream(url) => http_get(url, &archive.file_name),
        }
    }
}

fn is_network(origin: &Origin) -> bool {
    matches!(origin, Origin::Upstream(_) | Origin::Mirror(Mirror::Url(_)))
}

/// Where `origin` has `archive`: a path or a URL, for messages.
fn location(origin: &Origin, archive: &Archive) -> String {
    match origin {
        Origin::Cache => "cache".to_owned(),
        Origin::Mirror(Mirror::Dir(dir)) => dir.join(&archive.file_name).into_string(),
        Origin::Mirror(Mirror::Url(base)) => format!("{base}/{}", archive.file_name),
        Origin::Upstream(url) => url.clone(),
    }
}

/// Why [`copy_capped`] stopped.
#[derive(Debug)]
enum CopyError {
    /// The source failed or has too many bytes.
    Source(SourceError),
    /// Writing failed.
    Write(io::Error),
}

/// Copies `reader` into `writer`, reading at most `size + 1` bytes: a source with more than
/// the pinned size is refused as soon as that is known, so an endless one cannot fill the
/// disk. A read error is the source's (`location` names it), a write error the writer's.
fn copy_capped(
    reader: impl Read,
    writer: &mut impl Write,
    size: u64,
    location: &str,
    what: &str,
) -> Result<u64, CopyError> {
    let mut reader = reader.take(size.saturating_add(1));
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let err = SourceError::Transport(format!("reading {location}: {e}"));
                return Err(CopyError::Source(err));
            }
        };
        total += n as u64;
        if total > size {
            return Err(CopyError::Source(SourceError::TooLarge { what: what.to_owned(), size }));
        }
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// A new `.download-*` file in `dir`, locked (advisory, `flock`) so that no other run takes
/// it for the leftover of a killed one.
fn locked_temp(dir: &Utf8Path) -> io::Result<tempfile::NamedTempFile> {
    // Between creating the file and locking it another run's cleanup may take it for stale:
    // then the lock is taken, or the file is gone, and a new one is made.
    for _ in 0..16 {
        let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)?;
        if worklock::hold_temporary(tmp.as_file(), tmp.path())? {
            return Ok(tmp);
        }
    }
    Err(io::Error::other(format!(
        "could not create and lock a {TEMP_PREFIX}* file in {dir}: another run keeps removing them"
    )))
}

/// Removes the `.download-*` files in `dir` left by killed runs and returns them. A run
/// holds an advisory lock on its temporary while it writes, so one that can be locked here
/// has no live owner; one that cannot is another run's and is left alone. A missing `dir`
/// holds nothing.
pub fn remove_stale_downloads(dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>, FetchError> {
    worklock::remove_unheld_temporaries(dir, TEMP_PREFIX).map_err(|e| match e.path == dir {
        // The cache directory itself could not be read.
        true => FetchError::Cache { path: e.path, source: e.source },
        false => FetchError::Stale { path: e.path, source: e.source },
    })
}

/// Where `archive` lives under the cache root `cache_dir`. Pure: the content-addressed key.
pub fn cache_path(cache_dir: &Utf8Path, archive: &Archive) -> Utf8PathBuf {
    cache_dir.join("sha256").join(&archive.pin.sha256).join(&archive.file_name)
}

fn http_get(url: &str, label: &str) -> Result<Box<dyn Read>, SourceError> {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) => {
            let body = response.into_body();
            let bar = match body.content_length() {
                Some(len) => indicatif::ProgressBar::new(len),
                None => indicatif::ProgressBar::no_length(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(label.to_owned());
            Ok(Box::new(bar.wrap_read(body.into_reader())))
        }
        Err(ureq::Error::StatusCode(404)) => Err(SourceError::NotFound(url.to_owned())),
        Err(ureq::Error::StatusCode(code)) if code < 500 => {
            Err(SourceError::NotFound(format!("{url} (HTTP {code})")))
        }
        Err(e) => Err(SourceError::Transport(format!("{url}: {e}"))),
    }
}

#[cfg(test)]
mod tests;
