//! Constraints files (pip's format: `name==version`, optionally `; marker`, `#` comments):
//! `matrix/constraints.txt` for every suite, a suite's own `constraints` file on top. Pure:
//! [`Pins::parse`] reads one, [`effective`] layers them for one suite (the suite's own file
//! wins for the names it pins; the suite's own project is never pinned), [`explain`] turns
//! pip's failure under them into what to do, and [`update`] writes the global file from the
//! environments a run recorded (`cargo xtask test --update-constraints`).

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};

use crate::environment::{Environment, PackageSource, normalize};

/// One line of a constraints file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The [`normalize`]d name it constrains.
    pub name: String,
    /// The requirement as written, comment dropped (`pytest==9.2.0; python_version >= "3.10"`).
    pub spec: String,
    /// Its line number, from 1.
    pub line: usize,
}

/// A parsed constraints file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// The file, as given.
    pub path: Utf8PathBuf,
    /// Its constraints, in file order.
    pub pins: Vec<Pin>,
}

impl Pins {
    /// Parses `text`, the contents of `path`. Options (`-c`, `--index-url`) and lines that
    /// name no distribution are refused, naming the line.
    pub fn parse(path: &Utf8Path, text: &str) -> Result<Pins, String> {
        let mut pins = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = match raw.find('#') {
                Some(at) if at == 0 || raw[..at].ends_with(char::is_whitespace) => &raw[..at],
                _ => raw,
            }
            .trim();
            if line.is_empty() {
                continue;
            }
            let requirement = if line.starts_with('-') {
                Err("options and includes are not read here".to_owned())
            } else {
                line.parse::<pep508_rs::Requirement>().map_err(|e| e.message.to_string())
            };
            let name = match requirement {
                Ok(r) => r.name.to_string(),
                Err(why) => {
                    return Err(format!(
                        "{path}:{}: `{line}` is not a constraint (NAME==VERSION, optionally \
                         with `; marker`): {why}",
                        i + 1
                    ));
                }
            };
            pins.push(Pin { name, spec: line.to_owned(), line: i + 1 });
        }
        Ok(Pins { path: path.to_owned(), pins })
    }

    /// The names it pins.
    pub fn names(&self) -> BTreeSet<String> {
        self.pins.iter().map(|p| p.name.clone()).collect()
    }
}

/// The constraints one suite's installs get: `global`'s pins except those `own` (the
/// suite's own file) also names, then `own`'s; none for the suite's own `projects` (a
/// `--pypi NAME==VERSION` of another version, or a local project, must not be held back).
/// Each line says where it came from, so that pip's errors and the file read alike.
pub fn effective(global: Option<&Pins>, own: Option<&Pins>, projects: &[&str]) -> String {
    let projects: BTreeSet<String> = projects.iter().map(|p| normalize(p)).collect();
    let overridden = own.map(Pins::names).unwrap_or_default();
    let mut out = String::from(
        "# written by debug-matrix for this suite: the constraints below, each with its origin\n",
    );
    for (pins, skip) in [(global, &overridden), (own, &BTreeSet::new())] {
        let Some(pins) = pins else { continue };
        for p in &pins.pins {
            if skip.contains(&p.name) || projects.contains(&p.name) {
                continue;
            }
            out.push_str(&format!("{}  # {}:{}\n", p.spec, pins.path, p.line));
        }
    }
    out
}

/// What to say when pip failed under the constraints `effective` (the text [`effective`]
/// wrote) with `log` (its output): the pinned package pip could not satisfy, the file and
/// line that pin it, and what to do. `None` when pip's output names no pinned package.
pub fn explain(log: &str, effective: &str) -> Option<String> {
    let resolving =
        ["ResolutionImpossible", "conflicting dependencies", "Could not find a version"];
    if !resolving.iter().any(|s| log.contains(s)) {
        return None;
    }
    // pip: "The user requested (constraint) pytest==9.2.0", or "Could not find a version
    // that satisfies the requirement setuptools>=90" for a name the constraints pin.
    let mut named: Vec<String> = Vec::new();
    for line in log.lines() {
        let line = line.trim();
        let spec = line
            .strip_prefix("The user requested (constraint) ")
            .or_else(|| line.split("satisfies the requirement ").nth(1));
        if let Some(spec) = spec {
            named.push(normalize(name_of(spec)));
        }
    }
    let hits: Vec<String> = effective
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (spec, origin) = l.split_once("  # ").unwrap_or((l, "?"));
            named.contains(&normalize(name_of(spec))).then(|| format!("`{spec}` ({origin})"))
        })
        .collect();
    if hits.is_empty() {
        return None;
    }
    Some(format!(
        "pip cannot satisfy the constraints {} together with what the suite's build or tests require. \
         Either pin a version that fits in the suite's own constraints file (`constraints` in \
         matrix/extensions.toml, or [tool.debug-matrix] in its pyproject.toml), or refresh \
         matrix/constraints.txt from an unpinned run: `cargo xtask test … --update-constraints`",
        hits.join(", ")
    ))
}

/// One suite's recorded environment, for [`update`].
pub struct Ran<'a> {
    /// `3.13.5+debug`.
    pub cell: &'a matrix::CellId,
    /// The suite.
    pub suite: &'a str,
    /// What its venv and build environment held.
    pub environment: &'a Environment,
    /// The [`normalize`]d names its own constraints file pins: not the global file's business.
    pub own: BTreeSet<String>,
}

/// What [`update`] decided.
#[derive(Debug)]
pub struct Update {
    /// The new file.
    pub text: String,
    /// One line per change: added, changed, kept (pinned before, installed by no suite of
    /// this run).
    pub changes: Vec<String>,
}

/// The global constraints file from a run's environments, on top of the `old` one.
///
/// Every package a suite's venv or build environment got from a wheel or an sdist is pinned
/// `==` the version installed, except pip (it comes with the cell's CPython), what came with
/// the venv, each suite's own project, and what a suite's own file pins. Where suites
/// installed different versions of one package, each Python version (`3.11`) must agree on
/// one: then each gets a line with a `python_version` marker; if suites on one Python version
/// disagree, nothing is written and the error names the package, versions and suites (pin it
/// in a suite's own constraints file). Pins of `old` for packages no suite of this run
/// installed are kept, so a run of some suites does not unpin the others.
pub fn update(old: Option<&Pins>, ran: &[Ran<'_>]) -> Result<Update, String> {
    // name -> python version -> version -> who
    type Votes = BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<String>>>>;
    let mut votes: Votes = BTreeMap::new();
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    for r in ran {
        let python = format!("{}.{}", r.cell.version.major, r.cell.version.minor);
        let project = normalize(&r.environment.project);
        let env = r.environment;
        for p in env.packages.iter().chain(&env.build) {
            let name = normalize(&p.name);
            if name == "pip" || name == project || p.source == PackageSource::Venv {
                continue;
            }
            if r.own.contains(&name) {
                continue;
            }
            spelled.entry(name.clone()).or_insert_with(|| p.name.clone());
            let who = votes
                .entry(name)
                .or_default()
                .entry(python.clone())
                .or_default()
                .entry(p.version.clone())
                .or_default();
            let label = format!("{} on {}", r.suite, r.cell);
            if !who.contains(&label) {
                who.push(label);
            }
        }
    }
    let mut errors = Vec::new();
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, by_python) in &votes {
        let shown = &spelled[name];
        let versions: BTreeSet<&String> = by_python.values().flat_map(|v| v.keys()).collect();
        if versions.len() == 1 {
            lines.insert(
                name.clone(),
                vec![format!("{shown}=={}", versions.iter().next().map_or("", |v| v.as_str()))],
            );
            continue;
        }
        let mut per_python = Vec::new();
        for (python, by_version) in by_python {
            if by_version.len() > 1 {
                let who: Vec<String> =
                    by_version.iter().map(|(v, w)| format!("{v} by {}", w.join(", "))).collect();
                errors.push(format!("{shown} on Python {python}: {}", who.join("; ")));
                continue;
            }
            for version in by_version.keys() {
                per_python.push(format!("{shown}=={version}; python_version == \"{python}\""));
            }
        }
        lines.insert(name.clone(), per_python);
    }
    if !errors.is_empty() {
        return Err(format!(
            "suites installed different versions of one package, and one constraints file \
             cannot pin both:\n  {}\npin the version a suite needs in its own constraints \
             file (`constraints = \"…\"` in matrix/extensions.toml, relative to it) and run \
             again; the global file was not changed",
            errors.join("\n  ")
        ));
    }
    let mut changes = Vec::new();
    let old_lines: BTreeMap<String, Vec<String>> = old
        .map(|o| {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in &o.pins {
                m.entry(p.name.clone()).or_default().push(p.spec.clone());
            }
            m
        })
        .unwrap_or_default();
    for (name, new) in &lines {
        match old_lines.get(name) {
            None => changes.push(format!("added {}", new.join(", "))),
            Some(old) if old != new => {
                changes.push(format!("changed {} -> {}", old.join(", "), new.join(", ")))
            }
            Some(_) => {}
        }
    }
    for (name, old) in &old_lines {
        if !lines.contains_key(name) {
            changes.push(format!("kept {} (no suite of this run installed it)", old.join(", ")));
            lines.insert(name.clone(), old.clone());
        }
    }
    let mut text = String::from(HEADER);
    for l in lines.values().flatten() {
        text.push_str(l);
        text.push('\n');
    }
    Ok(Update { text, changes })
}

/// The header of `matrix/constraints.txt`.
pub const HEADER: &str = "\
# The versions every extension suite installs (pip's constraints format), in its venv and in
# the isolated build environment of its project: pytest, test dependencies, build backends.
# Refreshed from a run with `cargo xtask test --update-constraints` (which runs unpinned);
# a suite's own `constraints` file (matrix/extensions.toml) wins for the names it pins, and
# a suite's own project is never pinned. pip is not here: each venv has its CPython's.
";

/// The distribution name a requirement starts with (`pytest` of `pytest~=7.4`).
fn name_of(spec: &str) -> &str {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    &spec[..end]
}

#[cfg(test)]
mod tests;
