//! `matrix`: the whole pipeline, each stage the command of the same name. A failing stage is
//! reported and the later stages still run on what is usable; the exit status says whether
//! anything failed.

use xshell::Shell;

use crate::{
    Context,
    flags::{Build, Fetch, MatrixRun, Test, TestCpython, Verify},
};

impl MatrixRun {
    pub(crate) fn run(self, ctx: &Context, sh: &Shell) -> anyhow::Result<()> {
        // Without sources nothing else can run: these two stop the pipeline.
        Fetch {}.run(ctx, sh)?;
        Verify {}.run(ctx, sh)?;
        let mut failed: Vec<String> = Vec::new();
        let mut stage = |name: &str, result: anyhow::Result<()>| {
            if let Err(err) = result {
                eprintln!("error: {name}: {err:#}");
                failed.push(name.to_owned());
            }
        };
        stage(
            "build",
            Build { cells: self.cells.clone(), jobs: 1, make_jobs: None, phase_timeout: 60 }
                .run(ctx),
        );
        stage(
            "test-cpython",
            TestCpython {
                cells: self.cells.clone(),
                profile: self.profile.clone(),
                environment: self.environment.clone(),
                jobs: None,
                make_jobs: None,
            }
            .run(ctx),
        );
        stage(
            "test",
            Test {
                cells: self.cells.clone(),
                ext: self.ext.clone(),
                pypi: Vec::new(),
                suite: self.suite.clone(),
                malloc: None,
                timeout: None,
                select: None,
            }
            .run(ctx),
        );
        if !failed.is_empty() {
            anyhow::bail!("the matrix failed in: {}", failed.join(", "));
        }
        println!("the matrix is green: {}", ctx.layout.report_dir().join("report.json"));
        Ok(())
    }
}
