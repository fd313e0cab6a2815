//! Reads back what a built interpreter really is and compares it with its variant's promise.
//!
//! - [`probe`] runs [`PROBE_SCRIPT`] (`src/probe.py`) with the interpreter and parses the one
//!   JSON object it prints into [`Facts`]. It is this crate's only process boundary.
//! - [`parse_facts`] is that parsing alone, for facts stored earlier.
//! - [`compare`] checks [`Facts`] against a [`matrix::Promise`] and returns the
//!   [`Mismatch`]es; [`render_diff`] turns them into text. Both are pure.
//!
//! The interpreter runs as `python -s -c <script>`, not `-I`: `-I` implies `-E`, which ignores
//! every `PYTHON*` variable, so a variant's `PYTHONMALLOC=pymalloc_debug` would never reach the
//! interpreter. Isolation is kept another way: inherited `PYTHON*` variables are removed (only
//! the caller's `env` sets them), `-s` skips the user site, and the script drops the current
//! directory from `sys.path` itself (what `-P` does on 3.11+).

mod compare;

use std::collections::BTreeMap;
use std::fmt;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

pub use crate::compare::{Mismatch, compare, render_diff};

/// The Python script [`probe`] runs; it prints one JSON object that parses as [`Facts`].
pub const PROBE_SCRIPT: &str = include_str!("probe.py");

/// What a built interpreter reports about itself, as printed by [`PROBE_SCRIPT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// `sys.version_info` as `3.13.5`.
    pub version: String,
    /// `sys.abiflags` (`""`, `"d"`, `"t"`, `"td"`).
    pub abiflags: String,
    /// `sysconfig.get_config_var("EXT_SUFFIX")`.
    pub ext_suffix: Option<String>,
    /// A fixed list of build macros (`Py_DEBUG`, `Py_TRACE_REFS`, `Py_REF_DEBUG`,
    /// `WITH_PYMALLOC`, `WITH_VALGRIND`, `Py_GIL_DISABLED`, `Py_ENABLE_SHARED`), each read
    /// twice: from `sysconfig` and from `pyconfig.h`.
    pub config_vars: BTreeMap<String, ConfigVar>,
    /// Where `sysconfig.get_config_h_filename()` says `pyconfig.h` is.
    pub pyconfig_h: Option<Utf8PathBuf>,
    /// Why `pyconfig.h` could not be read, if it could not.
    pub pyconfig_h_error: Option<String>,
    /// `sysconfig.get_config_var("CONFIG_ARGS")`: what `configure` was run with.
    pub config_args: Option<String>,
    /// `sysconfig.get_config_var("CC")`.
    pub cc: Option<String>,
    /// Whether `sys.gettotalrefcount` exists.
    pub has_gettotalrefcount: bool,
    /// Whether `sys.getobjects` exists.
    pub has_getobjects: bool,
    /// `sys._is_gil_enabled()` read before any import, `true` where the function is missing.
    pub gil_enabled: bool,
    /// `pymem_getallocatorsname()` from `_testinternalcapi` or `_testcapi`; `None` if neither
    /// could tell.
    pub allocator: Option<String>,
    /// Why the allocator could not be read, if it could not.
    pub allocator_error: Option<String>,
    /// `PYTHONMALLOC` as the interpreter saw it.
    pub pythonmalloc: Option<String>,
    /// Modules of a fixed list that failed to import.
    pub failed_imports: Vec<FailedImport>,
    /// The refcount-total check; `None` when `sys.gettotalrefcount` does not exist.
    pub refcount_check: Option<RefcountCheck>,
    /// The `sys.getobjects` check; `None` when `sys.getobjects` does not exist.
    pub getobjects_check: Option<GetobjectsCheck>,
    /// Each known sanitizer (`address`, `thread`, `undefined`): whether its runtime and its
    /// flag are in the interpreter. Empty in facts stored before the probe read them.
    #[serde(default)]
    pub sanitizers: BTreeMap<String, SanitizerCheck>,
}

/// Whether one sanitizer is in the interpreter, read twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanitizerCheck {
    /// A symbol only the sanitizer's runtime defines (`__tsan_init`).
    pub symbol: String,
    /// Whether the symbol resolves in the running interpreter (`ctypes.CDLL(None)`); `None`
    /// if ctypes could not tell.
    pub runtime: Option<bool>,
    /// Whether sysconfig's `PY_CFLAGS` has the sanitizer's `-fsanitize=` flag.
    pub cflag: bool,
    /// Why the runtime could not be looked up.
    pub error: Option<String>,
}

impl SanitizerCheck {
    /// Present: the runtime resolves and the flag is there.
    pub fn present(&self) -> bool {
        self.runtime == Some(true) && self.cflag
    }
}

/// One build macro as `sysconfig` and `pyconfig.h` report it; `None` is "not there".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigVar {
    /// `sysconfig.get_config_var(name)`.
    pub sysconfig: Option<ConfigValue>,
    /// `sysconfig.parse_config_h(pyconfig.h)[name]`: `0` for a `/* #undef name */` line,
    /// `None` when the header does not mention the macro at all.
    pub pyconfig_h: Option<ConfigValue>,
}

/// A configuration value: a number where it is one, the text otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// A number, e.g. `1` for a defined macro.
    Int(i64),
    /// Anything else, verbatim.
    Text(String),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Int(n) => write!(f, "{n}"),
            ConfigValue::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A module that failed to import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedImport {
    /// The module, e.g. `ssl`.
    pub module: String,
    /// Whether every build must have it (`ssl`, `zlib`, `ctypes`).
    pub required: bool,
    /// The exception, `ModuleNotFoundError: No module named '_ssl'`.
    pub error: String,
}

/// Whether `Py_IncRef` moves `sys.gettotalrefcount()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefcountCheck {
    /// How much one `Py_IncRef` raised the total, net of an identical call on `NULL`;
    /// `None` if the check could not run.
    pub delta: Option<i64>,
    /// Why the check could not run (e.g. `ctypes unavailable: …`).
    pub error: Option<String>,
}

/// Whether a fresh instance of a fresh class appears in `sys.getobjects(0, cls)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetobjectsCheck {
    /// Whether the instance was listed; `None` if the check could not run.
    pub found: Option<bool>,
    /// Why the check could not run.
    pub error: Option<String>,
}

/// Why an interpreter could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The interpreter could not be started at all.
    #[error("cannot run {python}: {source}; is the cell built and the path right?")]
    Spawn {
        /// The interpreter.
        python: Utf8PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The interpreter started but the probe script failed.
    #[error("{python} failed while probing ({status}); its stderr ends with:\n{stderr_tail}")]
    Failed {
        /// The interpreter.
        python: Utf8PathBuf,
        /// How it exited, e.g. `exit status: 1`.
        status: String,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// The probe's output is not the JSON [`Facts`] expect.
    #[error(
        "the probe's output is not its JSON facts ({source}); it begins {head:?}; \
         are probe.py and probe::Facts out of step?"
    )]
    Parse {
        /// The JSON error.
        source: serde_json::Error,
        /// The start of the output.
        head: String,
    },
}

/// Parses the JSON object [`PROBE_SCRIPT`] prints.
pub fn parse_facts(json: &str) -> Result<Facts, ProbeError> {
    serde_json::from_str(json.trim())
        .map_err(|source| ProbeError::Parse { source, head: json.chars().take(200).collect() })
}

/// Runs [`PROBE_SCRIPT`] with `python` and returns what it found.
///
/// The interpreter inherits this process's environment minus what `process::scrub_python_env` removes, plus
/// `env` (the variant's runtime environment, e.g. `PYTHONMALLOC=pymalloc_debug`); stdin is
/// empty. A non-zero exit is [`ProbeError::Failed`] with the tail of stderr.
pub fn probe(python: &Utf8Path, env: &BTreeMap<String, String>) -> Result<Facts, ProbeError> {
    let mut cmd = Command::new(python);
    cmd.args(["-s", "-c", PROBE_SCRIPT]).stdin(Stdio::null());
    process::scrub_python_env(&mut cmd);
    cmd.envs(env);
    let output =
        cmd.output().map_err(|source| ProbeError::Spawn { python: python.to_owned(), source })?;
    if !output.status.success() {
        return Err(ProbeError::Failed {
            python: python.to_owned(),
            status: output.status.to_string(),
            stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), 20),
        });
    }
    parse_facts(&String::from_utf8_lossy(&output.stdout))
}

/// The last `lines` lines of `text`, or a note that it is empty.
fn tail(text: &str, lines: usize) -> String {
    match process::tail(text, lines) {
        t if t.is_empty() => "(stderr is empty)".to_owned(),
        t => t,
    }
}

#[cfg(test)]
mod tests;
