//! Reading `matrix/cpython-tests.toml`: test profiles and known failures, with errors that
//! name file, line and column (as the `matrix` crate does for the matrix files).

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use toml::Spanned;

/// Options the tool passes itself; a profile must not set them (see [`Profile::command_line`]).
const OWN_OPTIONS: &[&str] = &["-j", "--multiprocess", "--timeout", "--junit-xml", "--tempdir"];

/// Interpreter options that would ignore `PYTHON*` variables, and with them the variant's
/// runtime environment (`PYTHONMALLOC=…`).
const ENV_IGNORING: &[&str] = &["-E", "-I"];

/// Why `cpython-tests.toml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read, is not valid TOML, or does not have the documented shape
    /// (the matrix files' error, naming file, line and column).
    #[error(transparent)]
    File(#[from] matrix::MatrixError),
    /// A known failure names a variant the matrix does not have (a typo would otherwise
    /// never apply, silently).
    #[error(
        "{path}: known failure `{test}` names variant `{variant}`, which matrix/variants.toml does not define (it has {known}); fix the name"
    )]
    UnknownVariant {
        /// The file.
        path: Utf8PathBuf,
        /// The known failure's test module.
        test: String,
        /// The unknown variant.
        variant: String,
        /// The variants there are.
        known: String,
    },
    /// A profile the file does not define.
    #[error("unknown test profile `{given}`: {path} defines {known}")]
    UnknownProfile {
        /// What the user asked for.
        given: String,
        /// The file.
        path: Utf8PathBuf,
        /// The profiles there are.
        known: String,
    },
}

/// The whole `cpython-tests.toml`.
#[derive(Debug, Clone)]
pub struct TestsFile {
    /// Where it was read from (for messages).
    pub path: Utf8PathBuf,
    /// `[profile.NAME]` tables by name.
    pub profiles: BTreeMap<String, Profile>,
    /// `[[known-failure]]` entries, in file order.
    pub known_failures: Vec<KnownFailure>,
}

/// One way of running regrtest (`[profile.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `smoke`, `full`.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Test modules to run; empty means regrtest's own default selection (what `make test` runs).
    pub tests: Vec<String>,
    /// Interpreter options before `-m test`.
    pub python_args: Vec<String>,
    /// regrtest options besides the ones the tool sets itself.
    pub args: Vec<String>,
    /// Per test file, in seconds: regrtest's `--timeout` (`timeout-seconds`).
    pub timeout_seconds: u64,
    /// The whole run, in minutes; past it the run's process group is killed
    /// (`run-timeout-minutes`).
    pub run_timeout_minutes: u64,
}

/// A test module that fails in some environments for reasons outside CPython and the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFailure {
    /// The regrtest module name, `test_socket`.
    pub test: String,
    /// The environments (`--environment`, `DEBUG_MATRIX_ENVIRONMENT`) it fails in; empty:
    /// every environment (then `variants` says where).
    pub environments: Vec<String>,
    /// The variants it fails on; empty: every variant.
    pub variants: Vec<String>,
    /// Why, for the report.
    pub reason: String,
}

/// The paths of one invocation, which the tool chooses (see [`Profile::command_line`]).
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// regrtest `-j`: worker processes.
    pub jobs: usize,
    /// Where regrtest writes its JUnit XML.
    pub junit: &'a Utf8Path,
    /// regrtest's `--tempdir` (and the run's working directory).
    pub tempdir: &'a Utf8Path,
}

impl Profile {
    /// The command line: `<python> <python-args> -m test -jN --timeout T --junit-xml X
    /// --tempdir D <args> <tests>`.
    pub fn command_line(&self, python: &Utf8Path, inv: &Invocation<'_>) -> Vec<String> {
        let mut line = vec![python.to_string()];
        line.extend(self.python_args.iter().cloned());
        line.extend(["-m".into(), "test".into(), format!("-j{}", inv.jobs)]);
        line.extend(["--timeout".into(), self.timeout_seconds.to_string()]);
        line.extend(["--junit-xml".into(), inv.junit.to_string()]);
        line.extend(["--tempdir".into(), inv.tempdir.to_string()]);
        line.extend(self.args.iter().cloned());
        line.extend(self.tests.iter().cloned());
        line
    }
}

impl TestsFile {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Utf8Path) -> Result<TestsFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| matrix::MatrixError::Read { path: path.to_owned(), source })?;
        TestsFile::parse(path, &text)
    }

    /// Validates `text`, read from `path` (named in messages).
    pub fn parse(path: &Utf8Path, text: &str) -> Result<TestsFile, ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            ConfigError::File(matrix::MatrixError::at(path, text, span, message))
        };
        let raw: RawFile = matrix::parse_toml(path, text)?;
        let mut profiles = BTreeMap::new();
        for (name, raw) in raw.profile {
            let span = raw.span();
            let raw = raw.into_inner();
            if !is_name(&name) {
                return Err(at(
                    span,
                    format!("profile name `{name}` must be lowercase letters, digits and `-`"),
                ));
            }
            let mut tests: Vec<String> = Vec::new();
            for t in raw.tests {
                let (span, t) = (t.span(), t.into_inner());
                if !is_module(&t) {
                    return Err(at(
                        span,
                        format!("`{t}` is not a test module name (e.g. test_sys)"),
                    ));
                }
                if tests.contains(&t) {
                    return Err(at(span, format!("`{t}` is listed twice")));
                }
                tests.push(t);
            }
            for arg in &raw.args {
                let a = arg.get_ref();
                if let Some(own) = own_option(a) {
                    return Err(at(
                        arg.span(),
                        format!(
                            "`{own}` is set by the tool (--timeout from `timeout-seconds`, -j from \
                             `cargo xtask test-cpython --jobs`, the paths from the cell directory)"
                        ),
                    ));
                }
                if a == "--fast-ci" || a == "--slow-ci" {
                    return Err(at(
                        arg.span(),
                        format!(
                            "`{a}` re-executes the interpreter with -E, which drops the variant's \
                             runtime-env; spell out its options instead (see the comment at the top)"
                        ),
                    ));
                }
            }
            for arg in &raw.python_args {
                if ENV_IGNORING.contains(&arg.get_ref().as_str()) {
                    return Err(at(
                        arg.span(),
                        format!(
                            "`{}` ignores PYTHON* variables and so the variant's runtime-env",
                            arg.get_ref()
                        ),
                    ));
                }
            }
            for t in [&raw.timeout_seconds, &raw.run_timeout_minutes] {
                if *t.get_ref() == 0 {
                    return Err(at(t.span(), "a timeout must be positive".to_owned()));
                }
            }
            profiles.insert(
                name.clone(),
                Profile {
                    name,
                    description: raw.description,
                    tests,
                    python_args: raw.python_args.into_iter().map(Spanned::into_inner).collect(),
                    args: raw.args.into_iter().map(Spanned::into_inner).collect(),
                    timeout_seconds: raw.timeout_seconds.into_inner(),
                    run_timeout_minutes: raw.run_timeout_minutes.into_inner(),
                },
            );
        }
        let mut known_failures: Vec<KnownFailure> = Vec::new();
        for raw in raw.known_failure {
            let span = raw.span();
            let raw = raw.into_inner();
            if !is_module(&raw.test) {
                return Err(at(
                    span,
                    format!("`{}` is not a test module name (e.g. test_socket)", raw.test),
                ));
            }
            if raw.environments.is_empty() && raw.variants.is_empty() {
                return Err(at(
                    span,
                    format!("known failure `{}` names no environment and no variant", raw.test),
                ));
            }
            for env in &raw.environments {
                if !is_name(env) {
                    return Err(at(
                        span,
                        format!("environment `{env}` must be lowercase letters, digits and `-`"),
                    ));
                }
                let twice = known_failures.iter().any(|k| {
                    k.test == raw.test && k.environments.contains(env) && k.variants == raw.variants
                });
                if twice {
                    return Err(at(
                        span,
                        format!("`{}` is already a known failure in `{env}`", raw.test),
                    ));
                }
            }
            if raw.reason.trim().is_empty() {
                return Err(at(span, format!("known failure `{}` needs a reason", raw.test)));
            }
            known_failures.push(KnownFailure {
                test: raw.test,
                environments: raw.environments,
                variants: raw.variants,
                reason: raw.reason,
            });
        }
        Ok(TestsFile { path: path.to_owned(), profiles, known_failures })
    }

    /// Checks that every known failure's variants are among `variants` (the matrix's).
    pub fn check_variants(&self, variants: &[&str]) -> Result<(), ConfigError> {
        for k in &self.known_failures {
            if let Some(bad) = k.variants.iter().find(|v| !variants.contains(&v.as_str())) {
                return Err(ConfigError::UnknownVariant {
                    path: self.path.clone(),
                    test: k.test.clone(),
                    variant: bad.clone(),
                    known: variants.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The profile called `name`.
    pub fn profile(&self, name: &str) -> Result<&Profile, ConfigError> {
        self.profiles.get(name).ok_or_else(|| ConfigError::UnknownProfile {
            given: name.to_owned(),
            path: self.path.clone(),
            known: self.profiles.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
        })
    }

    /// The known failures of `environment` on `variant`. Environments the file does not
    /// mention have none but those of the variant.
    pub fn known_failures_in(&self, environment: &str, variant: &str) -> Vec<KnownFailure> {
        self.known_failures
            .iter()
            .filter(|k| {
                k.environments.is_empty() || k.environments.iter().any(|e| e == environment)
            })
            .filter(|k| k.variants.is_empty() || k.variants.iter().any(|v| v == variant))
            .cloned()
            .collect()
    }
}

/// The option of the tool's own that `arg` sets, if any (`-j4`, `--timeout=5`, `--tempdir`).
fn own_option(arg: &str) -> Option<&'static str> {
    OWN_OPTIONS.iter().copied().find(|o| {
        arg == *o || arg.starts_with(&format!("{o}=")) || (*o == "-j" && arg.starts_with("-j"))
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A regrtest module name: a Python identifier (`test_sys`, `test_asyncio`).
fn is_module(s: &str) -> bool {
    s.starts_with("test") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    profile: BTreeMap<String, Spanned<RawProfile>>,
    #[serde(default)]
    known_failure: Vec<Spanned<RawKnownFailure>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProfile {
    description: String,
    #[serde(default)]
    tests: Vec<Spanned<String>>,
    #[serde(default)]
    python_args: Vec<Spanned<String>>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    timeout_seconds: Spanned<u64>,
    run_timeout_minutes: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKnownFailure {
    test: String,
    #[serde(default)]
    environments: Vec<String>,
    #[serde(default)]
    variants: Vec<String>,
    reason: String,
}
