//! `cargo xtask`: the debug-matrix command line. It parses flags ([`flags`]) and dispatches
//! each command to the `pipeline` crate (one file per command); it holds no state and no
//! logic. See ARCHITECTURE.md.

mod bench;
mod build;
mod fetch;
mod flags;
mod init;
mod list;
mod matrix;
mod report;
mod run;
mod shell;
mod test;
mod test_cpython;
mod verify;

use std::process::ExitCode;

use camino::{Utf8Path, Utf8PathBuf};
use clap::Parser;
use pipeline::Session;

use crate::flags::{Command, Flags};

fn main() -> ExitCode {
    pipeline::serve_watchdog_if_asked();
    let flags = Flags::parse();
    match dispatch(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(flags: Flags) -> anyhow::Result<()> {
    let session = Session::open(flags.global.session_options(project_root()))?;
    match flags.command {
        Command::List(cmd) => cmd.run(&session),
        Command::Fetch(cmd) => cmd.run(&session),
        Command::Verify(cmd) => cmd.run(&session),
        Command::Matrix(cmd) => cmd.run(&session),
        Command::Build(cmd) => cmd.run(&session),
        Command::TestCpython(cmd) => cmd.run(&session),
        Command::Test(cmd) => cmd.run(&session),
        Command::Bench(cmd) => cmd.run(&session),
        Command::Report(cmd) => cmd.run(&session),
        Command::Run(cmd) => cmd.run(&session),
        Command::Shell(cmd) => cmd.run(&session),
        Command::Init(cmd) => cmd.run(),
    }
}

/// The repository root: the parent of the `xtask` crate.
fn project_root() -> Utf8PathBuf {
    let manifest = Utf8Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}
