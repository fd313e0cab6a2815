//! `run` and `shell`: a command inside a cell, to reproduce a finding by hand.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{BuiltCell, Session};

/// The command `program` in `cell`'s environment: its interpreter (or a suite's venv) first
/// on PATH as `python`, the variant's runtime environment, the caller's `PYTHON*` variables
/// removed, `DEBUG_MATRIX_CELL` set.
pub(crate) fn command_in_cell(
    session: &Session,
    cell: &BuiltCell<'_>,
    suite: Option<&str>,
    program: &str,
) -> anyhow::Result<Command> {
    let name = cell.cell.name();
    if !cell.usable() {
        bail!("{name} is not usable ({}): run `cargo xtask build {name}`", cell.why_unusable());
    }
    let dirs = session.layout.cell(&cell.cell);
    // `make install` names the interpreter python3; `python` should be it too.
    let shim = dirs.bin();
    std::fs::create_dir_all(&shim).with_context(|| format!("creating {shim}"))?;
    let link = shim.join("python");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(cell.outcome.dirs.python(), &link)
        .with_context(|| format!("linking {link}"))?;
    let mut bin_dirs = vec![shim, cell.outcome.dirs.prefix.join("bin")];
    let mut cmd = Command::new(program);
    process::scrub_python_env(&mut cmd);
    if let Some(suite) = suite {
        let venv = dirs.suite(suite).venv;
        if !venv.join("bin/python").is_file() {
            bail!("{venv} does not exist: run `cargo xtask test {name} --suite {suite}` first");
        }
        bin_dirs.insert(0, venv.join("bin"));
        cmd.env("VIRTUAL_ENV", &venv);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let new_path = std::env::join_paths(
        bin_dirs.iter().map(|d| d.as_std_path().to_owned()).chain(std::env::split_paths(&path)),
    )
    .context("building PATH")?;
    cmd.env("PATH", new_path).envs(&cell.plan.runtime_env).env("DEBUG_MATRIX_CELL", &name);
    Ok(cmd)
}
