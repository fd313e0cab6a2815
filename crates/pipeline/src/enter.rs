//! `run` and `shell`: a command inside a cell, to reproduce a finding by hand.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{BuiltCell, Session};

/// The command `program` in `cell`'s environment: its interpreter (or a suite's venv) first
/// on PATH as `python`, the variant's runtime environment, the caller's `PYTHON*` variables
/// removed, `DEBUG_MATRIX_CELL` set. `python`/`python3` as the program is the cell's (or the
/// venv's) interpreter by absolute path, never a PATH lookup that could reach the host's; a
/// missing interpreter is refused.
pub(crate) fn command_in_cell(
    session: &Session,
    cell: &BuiltCell<'_>,
    suite: Option<&str>,
    program: &str,
) -> anyhow::Result<Command> {
    let id = cell.cell.id();
    let name = id.to_string();
    let build = report::repro::build(&id);
    if !cell.usable() {
        bail!("{name} is not usable ({}): run `{build}`", cell.why_unusable());
    }
    let dirs = session.layout.cell(&cell.cell);
    let interpreter = cell.outcome.dirs.python();
    if !interpreter.is_file() {
        bail!("{name}'s interpreter {interpreter} is missing: run `{build}` to build it again");
    }
    // `make install` names the interpreter python3; `python` should be it too.
    let shim = dirs.bin();
    std::fs::create_dir_all(&shim).with_context(|| format!("creating {shim}"))?;
    link_python(&shim.join("python"), &interpreter, &name)?;
    let mut bin_dirs = vec![shim, cell.outcome.dirs.prefix.join("bin")];
    let mut python = interpreter.clone();
    let mut venv_dir = None;
    if let Some(suite) = suite {
        let venv = dirs.suite(suite).venv;
        if !venv.join("bin/python").is_file() {
            let test = report::repro::TestLine {
                cell: &id,
                suite: report::repro::SuiteArg::Named(suite),
                malloc: None,
                test: None,
                leak_loop: false,
            };
            bail!("{venv} does not exist: run `{}` first", test.line());
        }
        bin_dirs.insert(0, venv.join("bin"));
        python = venv.join("bin/python");
        venv_dir = Some(venv);
    }
    let mut cmd = Command::new(program_path(program, &python));
    process::scrub_python_env(&mut cmd);
    if let Some(venv) = &venv_dir {
        cmd.env("VIRTUAL_ENV", venv);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let new_path = std::env::join_paths(
        bin_dirs.iter().map(|d| d.as_std_path().to_owned()).chain(std::env::split_paths(&path)),
    )
    .context("building PATH")?;
    cmd.env("PATH", new_path).envs(&cell.plan.runtime_env).env("DEBUG_MATRIX_CELL", &name);
    Ok(cmd)
}

/// Points `link` (the cell's `bin/python`) at `interpreter`, replacing an old link; a
/// directory in its place is named, never silently kept.
fn link_python(
    link: &camino::Utf8Path,
    interpreter: &camino::Utf8Path,
    cell: &str,
) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.is_dir()) {
        bail!(
            "{link} is a directory where the link to {cell}'s interpreter belongs; delete it \
             (rm -r {link}) and rerun"
        );
    }
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(interpreter, link).with_context(|| format!("linking {link}"))
}

/// `program` as run: `python`, `python3` and `python3.N` are `python` (the cell's or the
/// venv's interpreter, absolute); anything else is looked up on the cell's PATH.
fn program_path(program: &str, python: &camino::Utf8Path) -> String {
    let is_python = program == "python"
        || program == "python3"
        || program
            .strip_prefix("python3.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()));
    if is_python { python.to_string() } else { program.to_owned() }
}

#[cfg(test)]
mod tests;
