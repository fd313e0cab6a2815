//! `cargo xtask build --check`: is a build reproducible? As `nix-build --check` does, an
//! already built cell is built again from scratch and the two installed trees are compared
//! file by file.
//!
//! The rebuild varies what Debian's `reprotest` varies and this machine can
//! ([`Variation::standard`]): `TZ`, locale, `HOME`, `PATH`, an environment noise variable
//! (inside the build, over the plan's fixed environment: the build must not depend on them
//! even unpinned), the number (and so the order) of parallel make jobs, a configure without
//! the shared `config.cache`, and the umask the tool is run with (outside the plan's fixed
//! [`configure::UMASK`], which it must not reach: the first check found `__pycache__`
//! directories, scripts and grammar pickles installed with the user's umask); time only as the real clock moves (no faketime here;
//! `SOURCE_DATE_EPOCH` is the plan's). The install prefix and build directory are the same
//! paths (the first build's trees are moved aside into `<build>/check/` and back), so what
//! is compared is the build, not where it was made. Differences are explained per file as
//! `diffoscope` would ([`explain`]); the first build is always restored, and a rebuild that
//! differs is kept in `check/rebuild-prefix` to look at. An interrupted check is undone by
//! the next one (the first build's trees are moved back).
//!
//! The same run lists the installed files that name the source or build directory
//! ([`embedded`]): a compiled file never may.

pub mod compare;
pub mod embedded;
pub mod explain;

use std::{collections::BTreeMap, fs, time::Instant};

use camino::{Utf8Path, Utf8PathBuf};
use configure::BuildPlan;
use workdir::BuildDirs;

use crate::{BuildStatus, Builder, Job, prefix};
pub use compare::{Comparison, Difference, compare_trees};
pub use embedded::Embedded;

/// What the rebuild changes, the way `reprotest` names its variations.
#[derive(Debug, Clone)]
pub struct Variation {
    /// Set (or replaced) in every build step's environment.
    pub env: BTreeMap<String, String>,
    /// The umask every step runs with (octal).
    pub umask: String,
    /// `make -j`.
    pub make_jobs: usize,
}

impl Variation {
    /// The variation of a rebuild whose first build ran `make -j<first_jobs>`.
    pub fn standard(first_jobs: usize) -> Variation {
        let path = std::env::var("PATH").unwrap_or_default();
        let env = [
            ("TZ", "Etc/GMT-14".to_owned()),
            ("LC_ALL", "C.UTF-8".to_owned()),
            ("LANG", "C.UTF-8".to_owned()),
            ("LANGUAGE", "fr_CH:fr".to_owned()),
            ("HOME", "/nonexistent/debug-matrix-check".to_owned()),
            ("PATH", format!("{path}:/debug-matrix-check/i_capture_the_path")),
            ("DEBUG_MATRIX_CAPTURE_ENVIRONMENT", "i_capture_the_environment".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Variation { env, umask: "0002".to_owned(), make_jobs: first_jobs.max(1) + 2 }
    }

    /// One line per variation, for the output and report.json.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![
            format!("umask {} (outside the plan's {})", self.umask, configure::UMASK),
            format!("make -j{}", self.make_jobs),
            "configure without the shared config.cache".to_owned(),
        ];
        out.extend(self.env.iter().map(|(k, v)| match k.as_str() {
            "PATH" => "PATH with a directory appended".to_owned(),
            _ => format!("{k}={v}"),
        }));
        out.push("a later clock (SOURCE_DATE_EPOCH fixed; no faketime)".to_owned());
        out
    }
}

/// `argv` run under `umask`.
pub(crate) fn under_umask(umask: &str, argv: Vec<String>) -> Vec<String> {
    let mut out =
        vec!["/bin/sh".to_owned(), "-c".to_owned(), format!("umask {umask} && exec \"$0\" \"$@\"")];
    out.extend(argv);
    out
}

/// The check of one build.
#[derive(Debug, Clone)]
pub struct ReproCheck {
    /// The cells that share the build.
    pub cells: Vec<String>,
    /// The build's key.
    pub key: String,
    /// What came of it.
    pub outcome: ReproOutcome,
}

/// How a check ended.
#[derive(Debug, Clone)]
pub enum ReproOutcome {
    /// Rebuilt and compared.
    Compared {
        /// The comparison of the first build with the rebuild.
        comparison: Comparison,
        /// Installed files of the first build that name the source or build directory.
        embedded: Vec<Embedded>,
        /// [`Variation::describe`].
        varied: Vec<String>,
        /// Seconds the rebuild took.
        seconds: u64,
        /// Where the differing rebuild was kept.
        kept: Option<Utf8PathBuf>,
    },
    /// Not checked: not built yet, damaged, in use, or the rebuild failed.
    Failed {
        /// Why, with what to do.
        message: String,
    },
    /// Interrupted; the first build was restored.
    Cancelled,
}

impl ReproCheck {
    /// Whether the rebuild is identical and no compiled file names a build directory.
    pub fn ok(&self) -> bool {
        matches!(&self.outcome, ReproOutcome::Compared { comparison, embedded, .. }
            if comparison.differences.is_empty() && embedded.iter().all(|e| e.allowed.is_some()))
    }

    /// What `build --check` prints: `reproducible: N files identical` or the differences.
    pub fn render(&self) -> String {
        let label = self.cells.join(", ");
        match &self.outcome {
            ReproOutcome::Compared { comparison, embedded, varied, seconds, kept } => {
                let mut out = if comparison.differences.is_empty() {
                    format!(
                        "{label}: reproducible: {} files identical (rebuilt in {seconds}s)\n",
                        comparison.identical
                    )
                } else {
                    let files = comparison.files - comparison.identical;
                    let directories = comparison.differences.len() - files;
                    let directories = match directories {
                        0 => String::new(),
                        n => format!(" and {n} directories"),
                    };
                    let mut s = format!(
                        "{label}: NOT reproducible: {files} of {} files{directories} differ \
                         (rebuilt in {seconds}s, kept in {}):\n",
                        comparison.files,
                        kept.as_ref().map_or("-".to_owned(), ToString::to_string)
                    );
                    for d in &comparison.differences {
                        s.push_str(&format!("  {}: {}\n", d.path, d.what));
                    }
                    s
                };
                out.push_str(&format!("  rebuilt with: {}\n", varied.join(", ")));
                let allowed = embedded.iter().filter(|e| e.allowed.is_some()).count();
                out.push_str(&format!(
                    "  {allowed} installed files name the source or build directory, each as \
                     README lists\n"
                ));
                for e in embedded.iter().filter(|e| e.allowed.is_none()) {
                    let kind = if e.compiled { "a compiled file" } else { "not listed" };
                    out.push_str(&format!(
                        "  {}: names the {} directory ({kind}): must not\n",
                        e.path,
                        e.names.join(" and ")
                    ));
                }
                out
            }
            ReproOutcome::Failed { message } => format!("{label}: not checked: {message}\n"),
            ReproOutcome::Cancelled => format!("{label}: check cancelled\n"),
        }
    }
}

impl Builder<'_> {
    /// Rebuilds each job's build (once per key) under [`Variation::standard`] and compares.
    /// One build at a time: the rebuild is the slow part, and the first build is moved aside.
    pub fn check_reproducible(&self, jobs: &[Job<'_>]) -> Vec<ReproCheck> {
        let mut checks: Vec<(BuildPlan, &Job<'_>, Vec<String>)> = Vec::new();
        for job in jobs {
            let plan = self.plan(&job.cell);
            match checks.iter_mut().find(|(p, _, _)| p.key == plan.key) {
                Some((_, _, cells)) => cells.push(job.cell.name()),
                None => checks.push((plan, job, vec![job.cell.name()])),
            }
        }
        checks
            .into_iter()
            .map(|(plan, job, cells)| {
                let outcome = if self.cancelled() {
                    ReproOutcome::Cancelled
                } else {
                    self.check_one(&plan, job, &cells)
                };
                ReproCheck { cells, key: plan.key, outcome }
            })
            .collect()
    }

    fn check_one(&self, plan: &BuildPlan, job: &Job<'_>, cells: &[String]) -> ReproOutcome {
        let dirs = self.layout.build(&plan.key);
        let label = cells.join(", ");
        let fail = |message: String| ReproOutcome::Failed { message };
        let what = format!("the build {} ({label})", plan.short_key());
        let _lock = match worklock::acquire(&self.layout.build_lock(&plan.key), &what, &self.cancel)
        {
            Ok(held) => held,
            Err(worklock::LockError::Cancelled { .. }) => return ReproOutcome::Cancelled,
            Err(e) => return fail(e.to_string()),
        };
        let aside = Aside::of(&dirs);
        if let Err(e) = aside.restore(&dirs) {
            return fail(format!("undoing an interrupted check: {e:#}"));
        }
        let build_first = format!("run `cargo xtask build {}` first", cells[0]);
        if !dirs.manifest.is_file() {
            return fail(format!("not built yet ({} is missing); {build_first}", dirs.manifest));
        }
        if let Some(why) = prefix::damage(&dirs, &plan.key) {
            return fail(format!("the build is not whole ({why}); {build_first}"));
        }
        let users: Vec<String> =
            [&dirs.build, &dirs.prefix].iter().flat_map(|d| prefix::users_of(d)).collect();
        if !users.is_empty() {
            return fail(format!(
                "the build is in use by process {}: it is never moved while in use; rerun when \
                 it ends",
                users.join(", ")
            ));
        }
        if let Err(e) = aside.move_first(&dirs) {
            let _ = aside.restore(&dirs);
            return fail(format!("moving the first build aside: {e:#}"));
        }
        let variation = Variation::standard(self.options.make_jobs);
        self.say(format!("{label}: rebuilding to check reproducibility ({})", dirs.root));
        let bar = self.progress.add(indicatif::ProgressBar::new_spinner());
        let started = Instant::now();
        let rebuilt = self.run_phases(plan, job, &dirs, &bar, &label, Some(&variation));
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs();
        let outcome = match rebuilt {
            Err(BuildStatus::Cancelled) => ReproOutcome::Cancelled,
            Err(BuildStatus::Failed { phase, message, log, .. }) => {
                // The rebuild's logs are kept in `check/rebuild-logs/` (the first build's
                // are put back).
                let log = aside.rebuild_logs.join(log.file_name().unwrap_or_default());
                fail(format!("the rebuild's {phase} failed ({message}); log: {log}"))
            }
            Err(_) => fail("the rebuild did not finish".to_owned()),
            Ok(_) => self.compare(&aside, &dirs, &job.source_dir, &variation, seconds),
        };
        let kept = matches!(&outcome, ReproOutcome::Compared { kept: Some(_), .. });
        if let Err(e) = aside.keep_rebuild(&dirs, kept).and_then(|()| aside.restore(&dirs)) {
            return fail(format!(
                "restoring the first build: {e:#}; its trees are in {}: move them back or \
                 run `cargo xtask build --check {label}` again",
                aside.root
            ));
        }
        outcome
    }

    fn compare(
        &self,
        aside: &Aside,
        dirs: &BuildDirs,
        source_dir: &Utf8Path,
        variation: &Variation,
        seconds: u64,
    ) -> ReproOutcome {
        let compared = compare_trees(&aside.first_prefix, &dirs.prefix);
        let embedded = embedded::scan(&aside.first_prefix, source_dir, &dirs.build);
        match (compared, embedded) {
            (Ok(comparison), Ok(embedded)) => {
                let kept =
                    (!comparison.differences.is_empty()).then(|| aside.rebuild_prefix.clone());
                ReproOutcome::Compared {
                    comparison,
                    embedded,
                    varied: variation.describe(),
                    seconds,
                    kept,
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                ReproOutcome::Failed { message: format!("comparing the builds: {e:#}") }
            }
        }
    }
}

/// `<build>/check/`: where the first build waits while the rebuild is made.
struct Aside {
    root: Utf8PathBuf,
    first_prefix: Utf8PathBuf,
    first_build: Utf8PathBuf,
    first_logs: Utf8PathBuf,
    rebuild_prefix: Utf8PathBuf,
    rebuild_logs: Utf8PathBuf,
}

impl Aside {
    fn of(dirs: &BuildDirs) -> Aside {
        let root = dirs.root.join("check");
        Aside {
            first_prefix: root.join("first-prefix"),
            first_build: root.join("first-build"),
            first_logs: root.join("first-logs"),
            rebuild_prefix: root.join("rebuild-prefix"),
            rebuild_logs: root.join("rebuild-logs"),
            root,
        }
    }

    fn pairs<'a>(&'a self, dirs: &'a BuildDirs) -> [(&'a Utf8Path, &'a Utf8Path); 3] {
        [
            (&dirs.prefix, &self.first_prefix),
            (&dirs.build, &self.first_build),
            (&dirs.logs, &self.first_logs),
        ]
    }

    fn move_first(&self, dirs: &BuildDirs) -> anyhow::Result<()> {
        fs::create_dir_all(&self.root)?;
        for (live, aside) in self.pairs(dirs) {
            if live.exists() {
                rename(live, aside)?;
            }
        }
        Ok(())
    }

    /// Moves the rebuild's prefix (when `kept`) and logs into `check/`, removing the rest.
    fn keep_rebuild(&self, dirs: &BuildDirs, kept: bool) -> anyhow::Result<()> {
        remove(&self.rebuild_prefix)?;
        remove(&self.rebuild_logs)?;
        if kept && dirs.prefix.exists() {
            rename(&dirs.prefix, &self.rebuild_prefix)?;
        }
        if dirs.logs.exists() {
            rename(&dirs.logs, &self.rebuild_logs)?;
        }
        Ok(())
    }

    /// Puts the first build's trees back where they were (what the rebuild left there is
    /// removed); nothing to do when none is aside.
    fn restore(&self, dirs: &BuildDirs) -> anyhow::Result<()> {
        for (live, aside) in self.pairs(dirs) {
            if aside.exists() {
                remove(live)?;
                rename(aside, live)?;
            }
        }
        Ok(())
    }
}

fn rename(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    fs::rename(from, to).with_context(|| format!("moving {from} to {to}"))
}

fn remove(path: &Utf8Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).with_context(|| format!("removing {path}")),
        Ok(_) => fs::remove_file(path).with_context(|| format!("removing {path}")),
    }
}

#[cfg(test)]
mod tests;
