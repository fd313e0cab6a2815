//! The suite's pins and its record: the constraints file its installs get ([`pin`]), where
//! each package in the venv came from ([`record_sources`], from pip's `--report` files), and
//! the [`Environment`] report.json records ([`environment`]).

use std::{collections::BTreeMap, fs};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use super::CellEnv;
use crate::{
    constraints,
    environment::{self, Environment, Package},
    layout::Installed,
    suite::{Source, Suite},
};

/// Writes the constraints of `suite`'s installs into its directory `dir` and returns that
/// file ([`constraints::effective`]: `matrix/constraints.txt`, the suite's own file on top,
/// never the suite's own project); `None` when nothing pins it.
pub(super) fn pin(
    env: &CellEnv<'_>,
    suite: &Suite,
    dir: &Utf8Path,
) -> anyhow::Result<Option<Utf8PathBuf>> {
    let read = |path: &Utf8Path, whose: &str| -> anyhow::Result<constraints::Pins> {
        let text = fs::read_to_string(path).with_context(|| {
            format!("reading {whose} constraints file {path}; fix `constraints` or create it")
        })?;
        constraints::Pins::parse(path, &text).map_err(anyhow::Error::msg)
    };
    let global = env.constraints.as_deref().map(|p| read(p, "the")).transpose()?;
    let own = match &suite.constraints {
        Some(p) => Some(read(p, &format!("suite `{}`'s", suite.name))?),
        None => None,
    };
    if global.is_none() && own.is_none() {
        return Ok(None);
    }
    let project = match &suite.source {
        Source::Pypi(spec) => Some(spec.name.clone()),
        Source::Dir(dir) => crate::suite::project_name(dir),
    };
    let projects: Vec<&str> =
        [Some(suite.name.as_str()), project.as_deref()].into_iter().flatten().collect();
    let text = constraints::effective(global.as_ref(), own.as_ref(), &projects);
    let file = dir.join("constraints.txt");
    fs::write(&file, text).with_context(|| format!("writing {file}"))?;
    Ok(Some(file))
}

/// Adds what pip's `--report` file `report` says it installed to the venv's record of where
/// each package came from (`sources`, kept with the venv: a cached venv's earlier installs
/// wrote theirs).
pub(super) fn record_sources(sources: &Utf8Path, report: &Utf8Path) -> anyhow::Result<()> {
    let mut known: BTreeMap<String, Package> = fs::read_to_string(sources)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let text = fs::read_to_string(report).with_context(|| format!("reading {report}"))?;
    environment::add_report(&mut known, &text)
        .with_context(|| format!("reading pip's report {report}"))?;
    fs::write(sources, serde_json::to_string_pretty(&known)?)
        .with_context(|| format!("writing {sources}"))
}

/// The suite's [`Environment`]: the inspection's `packages` (its output `inspection`), their
/// sources, and the build environment from pip's log of the project's build.
pub(super) fn environment(
    inspection: &[u8],
    sources: &Utf8Path,
    build_log: &Utf8Path,
    installed: &Installed,
    suite: &Suite,
) -> anyhow::Result<Environment> {
    #[derive(Deserialize)]
    struct Listed {
        packages: Vec<(String, String)>,
    }
    let listed: Listed = serde_json::from_slice(inspection)?;
    let known: BTreeMap<String, Package> = fs::read_to_string(sources)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let from_sdist = matches!(suite.source, Source::Pypi(_));
    let packages = environment::packages(&listed.packages, &known, &installed.dist, from_sdist);
    let version = |name: &str| {
        packages.iter().find(|p| environment::normalize(&p.name) == name).map(|p| p.version.clone())
    };
    Ok(Environment {
        pip: version("pip").unwrap_or_else(|| "none".to_owned()),
        pytest: version("pytest"),
        project: installed.dist.clone(),
        constraints: Vec::new(),
        build: environment::build_packages(&fs::read_to_string(build_log).unwrap_or_default()),
        packages,
    })
}
