//! The layout of the work directory (`--work-dir`, `DEBUG_MATRIX_DIR`, default
//! `target/debug-matrix`). Every path the tool writes is named here, so that "where does X
//! live" has one answer. Pure: nothing here touches the file system.
//!
//! ```text
//! <work>/cache/sha256/<digest>/<archive>   verified archives (+ .asc), content-addressed
//! <work>/src/<version>-<digest12>/         one extracted source tree per release, shared by variants
//!     .debug-matrix-files                  the record of its files, made at extraction
//! <work>/builds/<key16>/                  one build per cache key (see the `configure` crate):
//!     build/                               the out-of-tree build directory
//!     prefix/                              the `make install` prefix
//!     logs/<phase>.log                     one log per phase (configure, make, install, …)
//!     configure.done                       configure finished for this key
//!     manifest.json                        written last: the build is complete
//! <work>/builds/config-cache/<group>.cache  configure results shared within a release
//! <work>/cells/<cell>/                     per-cell results ([`CellDirs`]):
//!     check.json                           the interpreter check of the current build
//!     bin/python                           `python` for `cargo xtask run`/`shell`
//!     test-cpython-<profile>.{log,xml,json} regrtest's log, JUnit XML and judged results
//!     ext/<suite>/                         one extension suite ([`SuiteDirs`]): venv/, src/,
//!                                          run/, logs, events (files named by `exttest`)
//! <work>/shared/pip-cache/                 pip's cache, shared by every cell
//! <work>/shared/sdists/<name>-<version>/   sdists fetched for `--pypi`
//! <work>/bench/                            `cargo xtask bench` scratch space
//! <work>/report/report.json                the results document; report.md, junit.xml,
//!                                          report.html beside it
//! <work>/locks/                            advisory locks (crate `worklock`): one per build
//!                                          key, source tree, cell, and the results document
//! ```

use camino::{Utf8Path, Utf8PathBuf};
use matrix::{Cell, Release};

/// The work directory and every path under it.
#[derive(Debug, Clone)]
pub struct Layout {
    root: Utf8PathBuf,
}

impl Layout {
    /// A layout rooted at `root`.
    pub fn new(root: Utf8PathBuf) -> Layout {
        Layout { root }
    }

    /// The work directory itself.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// Root of the content-addressed archive cache.
    pub fn cache_dir(&self) -> Utf8PathBuf {
        self.root.join("cache")
    }

    /// The extracted source tree of `release`; its existence means extraction completed
    /// (it is renamed into place only when whole).
    pub fn source_dir(&self, release: &Release) -> Utf8PathBuf {
        let short = release.sha256.get(..12).unwrap_or(&release.sha256);
        self.root.join("src").join(format!("{}-{short}", release.version))
    }

    /// The root of all builds; each lives in `<builds>/<key16>/` (see [`BuildDirs`]).
    pub fn builds_dir(&self) -> Utf8PathBuf {
        self.root.join("builds")
    }

    /// The directories of the build with cache key `key`.
    pub fn build(&self, key: &str) -> BuildDirs {
        let root = self.builds_dir().join(key.get(..16).unwrap_or(key));
        BuildDirs {
            build: root.join("build"),
            prefix: root.join("prefix"),
            logs: root.join("logs"),
            configure_done: root.join("configure.done"),
            manifest: root.join("manifest.json"),
            root,
        }
    }

    /// The seed `config.cache` of configure-cache group `group`.
    pub fn config_cache(&self, group: &str) -> Utf8PathBuf {
        self.builds_dir().join("config-cache").join(format!("{group}.cache"))
    }

    /// Per-cell results: interpreter checks, test runs.
    pub fn cell_dir(&self, cell: &Cell<'_>) -> Utf8PathBuf {
        self.root.join("cells").join(cell.name())
    }

    /// The files and directories of `cell`'s results.
    pub fn cell(&self, cell: &Cell<'_>) -> CellDirs {
        CellDirs { root: self.cell_dir(cell) }
    }

    /// What every cell shares: pip's cache, fetched sdists.
    pub fn shared_dir(&self) -> Utf8PathBuf {
        self.root.join("shared")
    }

    /// pip's download cache.
    pub fn pip_cache(&self) -> Utf8PathBuf {
        self.shared_dir().join("pip-cache")
    }

    /// Sdists fetched for `--pypi`, one directory per `NAME==VERSION` under it.
    pub fn sdists_dir(&self) -> Utf8PathBuf {
        self.shared_dir().join("sdists")
    }

    /// Scratch space of `cargo xtask bench`.
    pub fn bench_dir(&self) -> Utf8PathBuf {
        self.root.join("bench")
    }

    /// Where the run's results document and its renderings go.
    pub fn report_dir(&self) -> Utf8PathBuf {
        self.root.join("report")
    }

    /// The lock held while the build with cache key `key` is made or checked complete.
    pub fn build_lock(&self, key: &str) -> Utf8PathBuf {
        self.locks_dir().join(format!("build-{}.lock", key.get(..16).unwrap_or(key)))
    }

    /// The lock held while `release`'s archive is fetched and its source tree extracted.
    pub fn source_lock(&self, release: &Release) -> Utf8PathBuf {
        let dir = self.source_dir(release);
        self.locks_dir().join(format!("src-{}.lock", dir.file_name().unwrap_or("source")))
    }

    /// The lock held while tests run on `cell` (its venvs and result files).
    pub fn cell_lock(&self, cell: &Cell<'_>) -> Utf8PathBuf {
        self.locks_dir().join(format!("cell-{}.lock", cell.name()))
    }

    /// The lock held around every read-modify-write of the results document.
    pub fn report_lock(&self) -> Utf8PathBuf {
        self.locks_dir().join("report.lock")
    }

    fn locks_dir(&self) -> Utf8PathBuf {
        self.root.join("locks")
    }

    /// The results document, `report/report.json`.
    pub fn report_json(&self) -> Utf8PathBuf {
        self.report_dir().join("report.json")
    }
}

/// The results of one cell, `<work>/cells/<cell>/`.
#[derive(Debug, Clone)]
pub struct CellDirs {
    /// The directory itself.
    pub root: Utf8PathBuf,
}

impl CellDirs {
    /// The interpreter check of the cell's current build.
    pub fn check_record(&self) -> Utf8PathBuf {
        self.root.join("check.json")
    }

    /// A directory holding `python`, linked to the cell's interpreter.
    pub fn bin(&self) -> Utf8PathBuf {
        self.root.join("bin")
    }

    /// regrtest's files for `profile`.
    pub fn regrtest(&self, profile: &str) -> RegrtestFiles {
        let file = |ext: &str| self.root.join(format!("test-cpython-{profile}.{ext}"));
        RegrtestFiles { log: file("log"), junit: file("xml"), results: file("json") }
    }

    /// The directory of extension suite `suite`.
    pub fn suite(&self, suite: &str) -> SuiteDirs {
        let root = self.root.join("ext").join(suite);
        SuiteDirs { venv: root.join("venv"), root }
    }
}

/// The files of one regrtest profile's run in a cell's directory.
#[derive(Debug, Clone)]
pub struct RegrtestFiles {
    /// `test-cpython-<profile>.log`: regrtest's stdout and stderr.
    pub log: Utf8PathBuf,
    /// `test-cpython-<profile>.xml`: regrtest's JUnit XML.
    pub junit: Utf8PathBuf,
    /// `test-cpython-<profile>.json`: the judged run.
    pub results: Utf8PathBuf,
}

/// One extension suite's directory in a cell: `exttest` names the files inside it.
#[derive(Debug, Clone)]
pub struct SuiteDirs {
    /// `<cell>/ext/<suite>`.
    pub root: Utf8PathBuf,
    /// The suite's virtual environment, made from the cell's interpreter.
    pub venv: Utf8PathBuf,
}

/// The directories and marker files of one build.
#[derive(Debug, Clone)]
pub struct BuildDirs {
    /// `<work>/builds/<key16>`.
    pub root: Utf8PathBuf,
    /// The out-of-tree build directory.
    pub build: Utf8PathBuf,
    /// The installation prefix.
    pub prefix: Utf8PathBuf,
    /// One log per phase.
    pub logs: Utf8PathBuf,
    /// Exists once configure finished for this key.
    pub configure_done: Utf8PathBuf,
    /// Written last: its existence means the build is complete.
    pub manifest: Utf8PathBuf,
}

impl BuildDirs {
    /// The log of `phase`.
    pub fn log(&self, phase: &str) -> Utf8PathBuf {
        self.logs.join(format!("{phase}.log"))
    }

    /// The installed interpreter.
    pub fn python(&self) -> Utf8PathBuf {
        self.prefix.join("bin/python3")
    }
}

#[cfg(test)]
mod tests;
