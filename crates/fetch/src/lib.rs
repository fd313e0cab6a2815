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
//! not match is deleted, and the error names the file, the source, and both digests.
//! Network errors are retried with exponential backoff; a failing source falls through to
//! the next one.

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
    /// The bytes do not match the pin; they were deleted.
    #[error(transparent)]
    Mismatch(#[from] VerifyError),
    /// Network or file system failure (retried for network sources).
    #[error("{0}")]
    Transport(String),
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
    #[error("cache {path}: {source}")]
    Cache {
        /// The cache path.
        path: Utf8PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn describe_attempts(file_name: &str, attempts: &[(Origin, SourceError)]) -> String {
    let mut s = format!("could not fetch {file_name}: no source delivered the pinned bytes");
    if attempts.is_empty() {
        s.push_str("\n  no source to try: pass --mirror DIR (or set DEBUG_MATRIX_MIRROR), or allow upstream");
    }
    for (origin, err) in attempts {
        s.push_str(&format!("\n  - {origin}: {}", err.to_string().replace('\n', "\n    ")));
    }
    s
}

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
    pub fn fetch(&self, archive: &Archive) -> Result<Fetched, FetchError> {
        let dest = self.cache_path(archive);
        if dest.is_file() {
            return Ok(Fetched { path: dest, origin: Origin::Cache });
        }
        let dir = dest.parent().unwrap_or(&self.cache_dir).to_owned();
        fs::create_dir_all(&dir)
            .map_err(|source| FetchError::Cache { path: dir.clone(), source })?;
        let mut attempts = Vec::new();
        for origin in self.origins(archive) {
            match self.copy_from(&origin, archive, &dir, &dest) {
                Ok(()) => return Ok(Fetched { path: dest, origin }),
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
    pub fn fetch_signature(&self, archive: &Archive) -> Result<Option<Utf8PathBuf>, FetchError> {
        let archive_path = self.cache_path(archive);
        let dest = Utf8PathBuf::from(format!("{archive_path}.asc"));
        if dest.is_file() {
            return Ok(Some(dest));
        }
        let dir = dest.parent().unwrap_or(&self.cache_dir).to_owned();
        fs::create_dir_all(&dir)
            .map_err(|source| FetchError::Cache { path: dir.clone(), source })?;
        let sig = Archive {
            file_name: format!("{}.asc", archive.file_name),
            upstream_url: format!("{}.asc", archive.upstream_url),
            pin: Pin { sha256: String::new(), size: 0 },
        };
        for origin in self.origins(&sig) {
            let Ok(mut reader) = self.open(&origin, &sig) else { continue };
            let mut bytes = Vec::new();
            if reader.read_to_end(&mut bytes).is_ok() && bytes.len() < 1 << 20 {
                let tmp = tempfile::NamedTempFile::new_in(&dir)
                    .map_err(|source| FetchError::Cache { path: dir.clone(), source })?;
                fs::write(tmp.path(), &bytes)
                    .and_then(|()| tmp.persist(&dest).map(drop).map_err(|e| e.error))
                    .map_err(|source| FetchError::Cache { path: dest.clone(), source })?;
                return Ok(Some(dest));
            }
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
        let is_network = matches!(origin, Origin::Upstream(_) | Origin::Mirror(Mirror::Url(_)));
        let attempt = || self.copy_once(origin, archive, dir, dest);
        if !is_network {
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
        let mut reader = self.open(origin, archive)?;
        let transport = |what: &str, e: io::Error| SourceError::Transport(format!("{what}: {e}"));
        // Dropping `tmp` on any error deletes the partial or mismatching bytes.
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dir)
            .map_err(|e| transport(dir.as_str(), e))?;
        let mut writer = HashingWriter::new(io::BufWriter::new(tmp.as_file()));
        io::copy(&mut reader, &mut writer).map_err(|e| transport("reading", e))?;
        writer.flush().map_err(|e| transport("writing", e))?;
        let what = format!("{} from {origin}", archive.file_name);
        writer.check(&archive.pin, &what)?;
        drop(writer);
        tmp.as_file().sync_all().map_err(|e| transport("syncing", e))?;
        tmp.persist(dest).map_err(|e| transport(dest.as_str(), e.error))?;
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
                    Err(e) => Err(SourceError::Transport(format!("{path}: {e}"))),
                }
            }
            Origin::Mirror(Mirror::Url(base)) => {
                http_get(&format!("{base}/{}", archive.file_name), &archive.file_name)
            }
            Origin::Upstream(url) => http_get(url, &archive.file_name),
        }
    }
}

/// Where `archive` lives under the cache root `cache_dir`. Pure: the content-addressed key.
pub fn cache_path(cache_dir: &Utf8Path, archive: &Archive) -> Utf8PathBuf {
    cache_dir.join("sha256").join(&archive.pin.sha256).join(&archive.file_name)
}

fn http_get(url: &str, label: &str) -> Result<Box<dyn Read>, SourceError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
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
