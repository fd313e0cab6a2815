//! [`Environment`]: what a suite's venv held when its tests ran (every distribution, its
//! version and whether it came from a wheel or was built from source), pip's and pytest's
//! versions, what pip installed into the isolated build environment of the suite's project,
//! and which constraints files pinned it. Read from pip's `--report` files and its log; pure.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

/// Where an installed distribution came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageSource {
    /// A wheel (from the index, a find-links directory or pip's cache).
    Wheel,
    /// Built here from an sdist (or a VCS checkout).
    Sdist,
    /// Built here from a local project directory (an `--ext` or `path` suite).
    Local,
    /// Already in the venv when it was made (`ensurepip`'s pip, and setuptools before 3.12).
    Venv,
}

impl PackageSource {
    /// Whether pip built it here (from an sdist or a project directory).
    pub fn built_here(self) -> bool {
        matches!(self, PackageSource::Sdist | PackageSource::Local)
    }
}

impl std::fmt::Display for PackageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PackageSource::Wheel => "wheel",
            PackageSource::Sdist => "sdist",
            PackageSource::Local => "local",
            PackageSource::Venv => "venv",
        })
    }
}

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Its name as its metadata spells it (`MarkupSafe`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it came from.
    pub source: PackageSource,
}

/// What a suite's tests ran with: report.json's `environment` of a suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The venv's pip (`ensurepip`'s, from the cell's CPython release).
    pub pip: String,
    /// The pytest the tests ran with (`None`: not installed, a suite's own test command).
    pub pytest: Option<String>,
    /// The suite's own distribution (never pinned by the constraints).
    pub project: String,
    /// The constraints files that pinned the installs, as given (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Utf8PathBuf>,
    /// Every distribution in the venv, by name.
    pub packages: Vec<Package>,
    /// What pip installed into the isolated build environment of the suite's project (the
    /// build backend and its requirements), from pip's log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build: Vec<Package>,
}

/// A distribution name normalised as PEP 503 does (`Setuptools_SCM` → `setuptools-scm`), for
/// names pip reported; one that is not a PEP 508 name (pip never reports one) is kept as given,
/// lowercased.
pub fn normalize(name: &str) -> String {
    crate::config::normalize(name.trim()).unwrap_or_else(|_| name.trim().to_lowercase())
}

/// The parts of pip's `--report` read here.
#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    install: Vec<Install>,
}

#[derive(Deserialize)]
struct Install {
    download_info: DownloadInfo,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct DownloadInfo {
    url: String,
    #[serde(default)]
    dir_info: Option<serde_json::Value>,
    #[serde(default)]
    vcs_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    version: String,
}

/// What pip's `--report` (JSON) says it installed, by [`normalize`]d name, added to
/// `sources` (a later report's entry replaces an earlier one's).
pub fn add_report(sources: &mut BTreeMap<String, Package>, report: &str) -> serde_json::Result<()> {
    let report: Report = serde_json::from_str(report)?;
    for i in report.install {
        let info = &i.download_info;
        let source = if info.dir_info.is_some() {
            PackageSource::Local
        } else if info.vcs_info.is_none() && info.url.ends_with(".whl") {
            PackageSource::Wheel
        } else {
            PackageSource::Sdist
        };
        sources.insert(
            normalize(&i.metadata.name),
            Package { name: i.metadata.name, version: i.metadata.version, source },
        );
    }
    Ok(())
}

/// What pip installed into isolated build environments, from the log of a `pip install -v`:
/// the indented `Successfully installed NAME-VERSION …` lines of its build subprocesses. A
/// package counts as built from source where the log names its sdist (`NAME-VERSION.tar.gz`
/// or `.zip`), else as a wheel. Sorted by name, each once.
pub fn build_packages(log: &str) -> Vec<Package> {
    let mut found: BTreeMap<String, Package> = BTreeMap::new();
    for line in log.lines() {
        if !line.starts_with(char::is_whitespace) {
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("Successfully installed ") else {
            continue;
        };
        for item in rest.split_whitespace() {
            let Some((name, version)) = item.rsplit_once('-') else { continue };
            let sdist = [".tar.gz", ".zip"].iter().any(|ext| {
                log.contains(&format!("{name}-{version}{ext}"))
                    || log.contains(&format!("{}-{version}{ext}", name.replace('-', "_")))
            });
            let source = if sdist { PackageSource::Sdist } else { PackageSource::Wheel };
            found.insert(
                normalize(name),
                Package { name: name.to_owned(), version: version.to_owned(), source },
            );
        }
    }
    found.into_values().collect()
}

/// The venv's distributions (`name`, `version` as `debug_matrix_inspect.py` lists them),
/// each with its source from `sources` (pip's reports): one no report names came with the
/// venv ([`PackageSource::Venv`]). The suite's own distribution `project` built from an
/// sdist (`pypi` suites) is [`PackageSource::Sdist`], though pip built it from the unpacked
/// directory. Sorted by normalised name.
pub fn packages(
    installed: &[(String, String)],
    sources: &BTreeMap<String, Package>,
    project: &str,
    project_from_sdist: bool,
) -> Vec<Package> {
    let mut out: Vec<Package> = installed
        .iter()
        .map(|(name, version)| {
            let key = normalize(name);
            let mut source = match sources.get(&key) {
                Some(p) if &p.version == version => p.source,
                // Reinstalled since, by something that wrote no report: say what we know.
                Some(p) => p.source,
                None => PackageSource::Venv,
            };
            if project_from_sdist && key == normalize(project) {
                source = PackageSource::Sdist;
            }
            Package { name: name.clone(), version: version.clone(), source }
        })
        .collect();
    out.sort_by_key(|p| normalize(&p.name));
    out.dedup_by_key(|p| normalize(&p.name));
    out
}

#[cfg(test)]
mod tests;
