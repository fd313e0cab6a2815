//! The build plan of a cell: what `configure`, `make` and `make install` are run with, the
//! fixed environment they run in, and the cache key that identifies the output.
//!
//! Pure: given a cell and the facts of the machine ([`Toolchain`]), [`plan`] returns the
//! same [`BuildPlan`] every time, and nothing here spawns a process. The key covers
//! everything that changes the installed interpreter: the archive digest, the variant's build
//! definition (configure arguments and macros, not its runtime environment), the fixed
//! environment, the toolchain identity, what configure would find on the machine (the
//! headers of the optional modules' libraries, [`Toolchain::detected`]) and [`PLAN_FORMAT`].
//! Two variants that build alike (`release` and `pymalloc-debug`, which differ only at run
//! time) share one build.
//!
//! The key never holds a path: the source and build directories reach the compiler only
//! through [`BuildPlan::prefix_map_args`], which maps them to fixed names, so builds in two
//! work directories share a key and their compiled files do not name either directory.

use std::collections::BTreeMap;

use camino::Utf8Path;
use matrix::Cell;
use sha2::{Digest, Sha256};

/// Bumped whenever the way builds are made changes, so old cache entries stop matching.
pub const PLAN_FORMAT: u32 = 2;

/// The umask of every build step: the permissions `make install` gives to what it does not
/// `chmod` itself (`__pycache__` directories, the `bin/` scripts, lib2to3's grammar pickles)
/// follow it, so a user's umask would otherwise change the installed tree.
pub const UMASK: &str = "0022";

/// The name the source directory has in compiled files (debug info, `__FILE__`): point a
/// debugger at the real one with `set substitute-path /debug-matrix/source <source dir>`.
pub const SOURCE_MAPPED: &str = "/debug-matrix/source";

/// The name the build directory has in compiled files.
pub const BUILD_MAPPED: &str = "/debug-matrix/build";

/// Arguments every build gets, whatever the variant.
pub const FIXED_CONFIGURE_ARGS: &[&str] = &[
    // pip is not needed in the prefix: venvs bring their own via ensurepip.
    "--with-ensurepip=no",
];

/// Variables removed from the build environment so the user's shell cannot change a build
/// behind the cache key's back.
pub const SCRUBBED_ENV: &[&str] = &[
    "CFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "LIBS",
    "CC",
    "CXX",
    "CPP",
    "LD",
    "AR",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "CFLAGS_NODIST",
    "LDFLAGS_NODIST",
    "EXTRA_CFLAGS",
    "OPT",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONMALLOC",
    "PYTHONDEVMODE",
    "PYTHONWARNINGS",
    "PYTHONDONTWRITEBYTECODE",
    "VIRTUAL_ENV",
    "CONFIG_SITE",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
];

/// The fixed environment every build runs in.
pub fn fixed_env() -> BTreeMap<String, String> {
    [
        ("LC_ALL", "C"),
        ("LANG", "C"),
        ("TZ", "UTC"),
        // 2025-01-01T00:00:00Z: a fixed timestamp for anything that embeds build time.
        ("SOURCE_DATE_EPOCH", "1735689600"),
        ("PYTHONHASHSEED", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// What identifies the machine's toolchain, read by the caller (`cc --version`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// First line of `cc --version`, e.g. `gcc (Debian 12.2.0-14+deb12u1) 12.2.0`.
    pub compiler: String,
    /// `cc -dumpmachine`, e.g. `x86_64-linux-gnu`.
    pub target: String,
    /// What configure would find on this machine: one line per optional library's header,
    /// `_gdbm: gdbm.h in /usr/include` or `_gdbm: missing` (read by `builder::detect`). A
    /// machine that gains or loses a library builds a different interpreter, so this is part
    /// of the key.
    pub detected: Vec<String>,
}

/// Everything a cell's build runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The cache key: hex sha256 of every input that changes the output.
    pub key: String,
    /// Arguments to `configure`, after `--prefix=…`.
    pub configure_args: Vec<String>,
    /// Arguments to `make` (besides `-jN`), e.g. `EXTRA_CFLAGS=-DPy_REF_DEBUG`.
    pub make_args: Vec<String>,
    /// The fixed environment of every build step.
    pub env: BTreeMap<String, String>,
    /// The environment every run of the built interpreter gets (the variant's runtime env).
    pub runtime_env: BTreeMap<String, String>,
    /// Builds in the same group may seed configure with each other's `config.cache`
    /// (autoconf's results about the compiler and system); `None`: this build may not.
    pub config_cache_group: Option<String>,
}

impl BuildPlan {
    /// The `configure` command line for `prefix`, as a person would type it in the build dir.
    pub fn configure_line(&self, source_dir: &Utf8Path, prefix: &Utf8Path) -> Vec<String> {
        let mut line =
            vec![source_dir.join("configure").into_string(), format!("--prefix={prefix}")];
        line.extend(self.configure_args.iter().cloned());
        line
    }

    /// The `make` variable that maps the source and build directories to [`SOURCE_MAPPED`]
    /// and [`BUILD_MAPPED`] in everything compiled (debug info, `__FILE__`), given to `make`
    /// and `make install` only: on the command line it is neither in the installed
    /// `Makefile` nor in sysconfig, and `CFLAGS_NODIST` never reaches extensions built later.
    pub fn prefix_map_args(&self, source_dir: &Utf8Path, build_dir: &Utf8Path) -> Vec<String> {
        vec![format!(
            "CFLAGS_NODIST=-ffile-prefix-map={source_dir}={SOURCE_MAPPED} \
             -ffile-prefix-map={build_dir}={BUILD_MAPPED}"
        )]
    }

    /// A short form of the key for directory names and messages.
    pub fn short_key(&self) -> &str {
        self.key.get(..16).unwrap_or(&self.key)
    }
}

/// The build plan of `cell` on `toolchain`.
pub fn plan(cell: &Cell<'_>, toolchain: &Toolchain) -> BuildPlan {
    let variant = cell.variant;
    let mut configure_args: Vec<String> =
        FIXED_CONFIGURE_ARGS.iter().map(|s| (*s).to_owned()).collect();
    configure_args.extend(variant.configure.iter().cloned());
    if !variant.cflags.is_empty() {
        // VAR=VALUE on the configure line is recorded in config.status and sysconfig.
        configure_args.push(format!("CFLAGS={}", variant.cflags.join(" ")));
    }
    let mut make_args = Vec::new();
    if !variant.extra_cflags.is_empty() {
        make_args.push(format!("EXTRA_CFLAGS={}", variant.extra_cflags.join(" ")));
    }
    make_args.extend(variant.make_vars.iter().cloned());
    let env = fixed_env();

    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &str| {
        // Length-prefixed so that no two different inputs hash the same text.
        hasher.update(format!("{name}:{}:{value}\n", value.len()));
    };
    field("format", &PLAN_FORMAT.to_string());
    field("archive-sha256", &cell.release.sha256);
    field("version", &cell.release.version.to_string());
    for arg in &configure_args {
        field("configure", arg);
    }
    for arg in &make_args {
        field("make", arg);
    }
    for (k, v) in &env {
        field("env", &format!("{k}={v}"));
    }
    for k in SCRUBBED_ENV {
        field("scrubbed", k);
    }
    field("compiler", &toolchain.compiler);
    field("target", &toolchain.target);
    field("prefix-map", &format!("{SOURCE_MAPPED} {BUILD_MAPPED}"));
    field("umask", UMASK);
    for line in &toolchain.detected {
        field("detected", line);
    }
    let key = hex::encode(hasher.finalize());

    BuildPlan {
        key,
        configure_args,
        make_args,
        env,
        runtime_env: variant.runtime_env.clone(),
        config_cache_group: config_cache_group(cell, toolchain),
    }
}

/// The group of builds whose configure results are interchangeable: same release, same
/// compiler, no flags that change what the compiler and linker accept. Variants with
/// `CFLAGS` or a sanitizer (which rewrites `LDFLAGS` inside configure) stay alone.
fn config_cache_group(cell: &Cell<'_>, toolchain: &Toolchain) -> Option<String> {
    let v = cell.variant;
    if !v.cflags.is_empty() || v.configure.iter().any(|a| a.contains("sanitizer")) {
        return None;
    }
    // What configure found is in `config.cache` too (`ac_cv_header_gdbm_h=no`): a machine
    // that gained a library must not be told it lacks it by an older build's cache.
    let compiler = hex::encode(Sha256::digest(format!(
        "{}\n{}\n{}",
        toolchain.compiler,
        toolchain.target,
        toolchain.detected.join("\n")
    )));
    Some(format!("{}-{}", cell.release.version, &compiler[..12]))
}

#[cfg(test)]
mod tests;
