//! The pipeline: the order of the stages and the typed results carried from one to the next.
//!
//! ```text
//! Session ─► Sources::prepare ─────► Built::build ─► cpython::run (regrtest)
//!             (fetch, verify,         (configure,     suites::run (extension suites)
//!              extract per release)    make, install,        │
//!                                      promise check)        ▼
//!                                                     results: report.json
//! ```
//!
//! Every command of `cargo xtask` is a slice of it ([`commands`]); `matrix` is all of it, each
//! stage run once, so every phase it records is what really happened in this run. A stage
//! takes the typed result of the one before (a [`Built`] needs [`Sources`], a regrtest run
//! needs a usable [`BuiltCell`]); nothing re-enters an earlier stage. The results document
//! is written only here ([`results`]), from these types.

pub mod commands;
mod cpython;
mod enter;
pub mod results;
mod stages;
mod suites;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use matrix::{Cell, Matrix};

pub use exttest::init::InitOptions;
pub use matrix::Selection;
/// Call first in `main`: serves as a watchdog when started as one, else enables watchdogs
/// (every process group dies with the tool, SIGKILL included; see `process::watchdog`).
pub use process::watchdog::serve_if_asked as serve_watchdog_if_asked;

pub use crate::{
    cpython::RegrtestOptions,
    stages::{BuildOptions, Built, BuiltCell, PreparedSource, Sources},
    suites::SuiteOptions,
};

/// What a session is opened with: where the matrix and the work directory are, which cells,
/// where archives come from.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// The project root (suites' relative paths resolve against it).
    pub project_root: Utf8PathBuf,
    /// `matrix/` unless given.
    pub matrix_dir: Option<Utf8PathBuf>,
    /// `<project>/target/debug-matrix` unless given.
    pub work_dir: Option<Utf8PathBuf>,
    /// The cells selected by flags (`--set`, `--version`, `--variant`).
    pub selection: Selection,
    /// Archive mirrors, tried in order (`--mirror`, then `DEBUG_MATRIX_MIRROR`).
    pub mirrors: Vec<String>,
    /// Whether python.org may be tried after the mirrors.
    pub upstream: bool,
}

/// One run of the tool: the loaded matrix, the work directory, the selection, the archive
/// sources, and the cancellation flag every process polls.
pub struct Session {
    /// The loaded, validated matrix.
    pub matrix: Matrix,
    /// Every path under the work directory.
    pub layout: workdir::Layout,
    /// The project root.
    pub project_root: Utf8PathBuf,
    selection: Selection,
    /// As given: parsed only by commands that fetch, so a bad mirror never breaks `list`.
    mirrors: Vec<String>,
    upstream: bool,
    cancel: Arc<AtomicBool>,
    /// Whether this run recorded results ([`results::update`]): then the command shows them.
    recorded: AtomicBool,
}

impl Session {
    /// Loads the matrix and resolves the work directory and mirrors; installs the Ctrl-C
    /// handler (once per process) that sets [`Session::cancelled`].
    pub fn open(options: SessionOptions) -> anyhow::Result<Session> {
        let root = options.project_root;
        let matrix_dir = options.matrix_dir.unwrap_or_else(|| root.join("matrix"));
        let matrix = Matrix::load(&matrix_dir)?;
        if options.work_dir.as_ref().is_some_and(|w| w.as_str().trim().is_empty()) {
            anyhow::bail!(
                "the work directory is empty (--work-dir \"\" or DEBUG_MATRIX_DIR set to \"\"): \
                 give a directory, or unset DEBUG_MATRIX_DIR for the default target/debug-matrix"
            );
        }
        let work_dir = absolute(
            &options.work_dir.unwrap_or_else(|| root.join("target").join("debug-matrix")),
        )?;
        Ok(Session {
            matrix,
            layout: workdir::Layout::new(work_dir),
            project_root: root,
            selection: options.selection,
            mirrors: options.mirrors,
            upstream: options.upstream,
            cancel: interrupt_flag()?,
            recorded: AtomicBool::new(false),
        })
    }

    /// The cells named (`3.13.5+debug`), or else the selection's.
    pub fn cells(&self, names: &[String]) -> anyhow::Result<Vec<Cell<'_>>> {
        if names.is_empty() {
            return Ok(self.matrix.cells(&self.selection)?);
        }
        let selection = Selection { cells: names.to_vec(), ..self.selection.clone() };
        Ok(self.matrix.cells(&selection)?)
    }

    /// Refuses a work directory CPython cannot be built in, before anything is fetched or
    /// built: its configure and Makefile do not quote paths, so a space or another shell
    /// character makes configure fail inside (while exiting 0) and every make fail after.
    pub fn check_buildable(&self) -> anyhow::Result<()> {
        let root = self.layout.root();
        if let Some(c) = root.as_str().chars().find(|c| c.is_whitespace() || "\"'$`\\".contains(*c))
        {
            anyhow::bail!(
                "the work directory {root} has {c:?} in its path, and CPython's configure and \
                 Makefile cannot build in such a path; choose another (--work-dir or \
                 DEBUG_MATRIX_DIR)"
            );
        }
        Ok(())
    }

    /// Whether a selection flag (`--set`, `--version`, `--variant`) was given.
    pub fn selects(&self) -> bool {
        let s = &self.selection;
        s.set.is_some() || !s.versions.is_empty() || !s.variants.is_empty()
    }

    /// The named set (`--set`), if any.
    pub fn set(&self) -> Option<&str> {
        self.selection.set.as_deref()
    }

    /// The archive fetcher: cache, then mirrors (`--mirror`, then `DEBUG_MATRIX_MIRROR`), then
    /// (unless refused) python.org.
    pub fn fetcher(&self) -> anyhow::Result<fetch::Fetcher> {
        let mut mirrors = Vec::new();
        for m in &self.mirrors {
            mirrors.push(m.parse::<fetch::Mirror>().map_err(|e| anyhow::anyhow!("--mirror: {e}"))?);
        }
        if let Ok(env) = std::env::var("DEBUG_MATRIX_MIRROR") {
            for m in env.split_whitespace() {
                let mirror = m
                    .parse::<fetch::Mirror>()
                    .map_err(|e| anyhow::anyhow!("DEBUG_MATRIX_MIRROR: {e}"))?;
                mirrors.push(mirror);
            }
        }
        Ok(fetch::Fetcher::new(self.layout.cache_dir(), mirrors, self.upstream))
    }

    /// Whether Ctrl-C (or SIGTERM) was received.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The flag processes poll to be killed on Ctrl-C.
    pub fn cancel_flag(&self) -> &Arc<AtomicBool> {
        &self.cancel
    }

    /// `matrix/cpython-tests.toml`, checked against the matrix's variants.
    pub fn cpython_tests(&self) -> anyhow::Result<regrtest::TestsFile> {
        let tests = regrtest::TestsFile::load(&self.matrix.dir.join("cpython-tests.toml"))?;
        let variants: Vec<&str> = self.matrix.variants.iter().map(|v| v.name.as_str()).collect();
        tests.check_variants(&variants)?;
        Ok(tests)
    }

    /// Takes `cell`'s lock (its venvs and result files), waiting for another run testing it.
    pub fn lock_cell(&self, cell: &Cell<'_>) -> anyhow::Result<worklock::Held> {
        let what = format!("the tests of {}", cell.name());
        Ok(worklock::acquire(&self.layout.cell_lock(cell), &what, &self.cancel)?)
    }

    /// The number of CPUs, for `make -j` and regrtest `-j` defaults.
    pub fn cpus(&self) -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

/// Whether a stage that polls the cancel flag is running (see [`Polling`]). Outside such a
/// stage (fetching, hashing, extracting, reading files) nothing would notice the flag, and
/// nothing is marked complete there before a rename, so Ctrl-C exits at once: locks die with
/// the process, temporaries are removed by the next run.
static POLLING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held while a stage polls the cancel flag (builds, regrtest, suites): Ctrl-C then asks
/// every process group to stop and lets the stage end cleanly; a second Ctrl-C exits at once.
pub(crate) struct Polling;

impl Polling {
    pub(crate) fn start() -> Polling {
        POLLING.fetch_add(1, Ordering::SeqCst);
        Polling
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The flag set by Ctrl-C (SIGINT) or SIGTERM; the handler is installed once per process.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        let again = handler_flag.swap(true, Ordering::SeqCst);
        if again || POLLING.load(Ordering::SeqCst) == 0 {
            eprintln!("interrupted: nothing is marked complete; rerun to resume");
            std::process::exit(130);
        }
        eprintln!(
            "interrupted: stopping every process; nothing is marked complete (Ctrl-C again \
             to exit at once)"
        );
    })
    .context("installing the Ctrl-C handler")?;
    Ok(FLAG.get_or_init(|| flag).clone())
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("resolving {path}"))?;
    Utf8PathBuf::from_path_buf(abs).map_err(|p| anyhow::anyhow!("{} is not UTF-8", p.display()))
}
