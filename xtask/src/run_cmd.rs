//! `run` and `shell`: step into a cell to reproduce a finding by hand.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{
    Context,
    build_cmd::{build_cells, cancel_flag},
    flags::{RunIn, ShellIn},
};

/// The environment of a cell: its interpreter (or a suite's venv) first on PATH, the variant's
/// runtime environment, `PYTHON*` variables of the caller's shell removed.
fn cell_command(
    ctx: &Context,
    cell_name: &str,
    suite: Option<&str>,
    program: &str,
) -> anyhow::Result<Command> {
    let cells = ctx.named_cells(&[cell_name.to_owned()])?;
    let cancel = cancel_flag()?;
    let (builder, _, outcomes) = build_cells(ctx, &cells, None, 1, &cancel)?;
    let (cell, outcome) = (&cells[0], &outcomes[0]);
    if !outcome.ok() {
        bail!("{cell_name} is not usable: run `cargo xtask build {cell_name}` and read its error");
    }
    // `make install` names the interpreter python3; `python` should be it too.
    let shim = ctx.layout.cell_dir(cell).join("bin");
    std::fs::create_dir_all(&shim).with_context(|| format!("creating {shim}"))?;
    let link = shim.join("python");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(outcome.dirs.python(), &link)
        .with_context(|| format!("linking {link}"))?;
    let mut bin_dirs = vec![shim, outcome.dirs.prefix.join("bin")];
    let mut cmd = Command::new(program);
    if let Some(suite) = suite {
        let venv = ctx.layout.cell_dir(cell).join("ext").join(suite).join("venv");
        if !venv.join("bin/python").is_file() {
            bail!(
                "{venv} does not exist: run `cargo xtask test {cell_name} --suite {suite}` first"
            );
        }
        bin_dirs.insert(0, venv.join("bin"));
        cmd.env("VIRTUAL_ENV", &venv);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let new_path = std::env::join_paths(
        bin_dirs.iter().map(|d| d.as_std_path().to_owned()).chain(std::env::split_paths(&path)),
    )
    .context("building PATH")?;
    for (key, _) in std::env::vars() {
        if key.starts_with("PYTHON") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PATH", new_path)
        .envs(&builder.plan(cell).runtime_env)
        .env("DEBUG_MATRIX_CELL", cell_name);
    Ok(cmd)
}

impl RunIn {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let (program, args) = self.command.split_first().context("no command given after --")?;
        let mut cmd = cell_command(ctx, &self.cell, self.suite.as_deref(), program)?;
        let status = cmd.args(args).status().with_context(|| format!("running {program}"))?;
        if !status.success() {
            bail!("`{}` in {} exited with {status}", self.command.join(" "), self.cell);
        }
        Ok(())
    }
}

impl ShellIn {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_owned());
        let mut cmd = cell_command(ctx, &self.cell, self.suite.as_deref(), &shell)?;
        eprintln!(
            "entering {}: `python` is the cell's interpreter; exit the shell to leave",
            self.cell
        );
        cmd.status().with_context(|| format!("running {shell}"))?;
        Ok(())
    }
}
