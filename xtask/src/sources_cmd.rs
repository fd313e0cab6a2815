//! `list`, `fetch` and `verify`: reporting on the matrix and preparing verified sources.

use anyhow::bail;
use matrix::Matrix;
use sources::SignatureStatus;
use xshell::Shell;

use crate::{
    Context,
    flags::{Fetch, List, Verify},
};

impl List {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let cells = ctx.cells()?;
        if self.json {
            let toolchain = build::read_toolchain()?;
            let keys: Vec<String> =
                cells.iter().map(|c| configure::plan(c, &toolchain).key).collect();
            println!("{}", report::cell_list_json(&cells, &keys));
        } else {
            print!("{}", report::cell_list_text(&cells));
        }
        Ok(())
    }
}

fn describe_signature(status: &Option<SignatureStatus>) -> String {
    match status {
        None => String::new(),
        Some(SignatureStatus::NotSigned) => ", no signing key pinned".to_owned(),
        Some(SignatureStatus::Unavailable) => {
            ", no .asc signature available (sha256 pin checked)".to_owned()
        }
        Some(SignatureStatus::Good(info)) => {
            format!(", good signature by {} ({})", info.signer, info.fingerprint)
        }
    }
}

impl Fetch {
    pub(crate) fn run(self, ctx: &Context, _sh: &Shell) -> anyhow::Result<()> {
        let cells = ctx.cells()?;
        let fetcher = ctx.fetcher();
        let mut worked = false;
        for release in Matrix::releases_of(&cells) {
            let prepared = sources::prepare(&fetcher, &ctx.layout, &ctx.matrix.dir, release)?;
            worked |= prepared.did_work();
            let archive = match &prepared.archive.origin {
                fetch::Origin::Cache => "archive cached".to_owned(),
                origin => format!("fetched from {origin}, sha256 verified"),
            };
            let source = if prepared.extracted { "extracted" } else { "already extracted" };
            println!(
                "{}: {archive}{}; {source} in {}",
                release.version,
                describe_signature(&prepared.signature),
                prepared.source_dir
            );
        }
        if !worked {
            println!("nothing to do: every archive is cached and every source is extracted");
        }
        Ok(())
    }
}

impl Verify {
    pub(crate) fn run(self, ctx: &Context, _sh: &Shell) -> anyhow::Result<()> {
        let cells = ctx.cells()?;
        let fetcher = ctx.fetcher();
        let mut failures = Vec::new();
        let mut checked = 0;
        for release in Matrix::releases_of(&cells) {
            match sources::verify_cached(&fetcher, &ctx.matrix.dir, release) {
                Ok(check) => match &check.path {
                    None => println!("{}: not cached (run `cargo xtask fetch`)", release.version),
                    Some(path) => {
                        checked += 1;
                        println!(
                            "{}: {path}: size and sha256 match the pin{}",
                            release.version,
                            describe_signature(&check.signature)
                        );
                    }
                },
                Err(err) => {
                    eprintln!("{}: FAILED: {err:#}", release.version);
                    failures.push(release.version.to_string());
                }
            }
        }
        if !failures.is_empty() {
            bail!("verification failed for {}", failures.join(", "));
        }
        println!("verified {checked} cached archive(s)");
        Ok(())
    }
}

impl crate::flags::ReportCmd {
    pub(crate) fn run(self, ctx: &Context) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let dir = ctx.layout.report_dir();
        let json = dir.join("report.json");
        let mut doc = report::Document::read(&json)?;
        for root in &self.merge {
            let mut found = 0;
            for path in report_files(root)? {
                doc.merge_file(&path)?;
                found += 1;
            }
            println!("merged {found} report.json file(s) from {root}");
        }
        if doc.cells.is_empty() {
            bail!(
                "{json} holds no cell: run `cargo xtask test` or `cargo xtask matrix` first (or --merge DIR)"
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir}"))?;
        build::write_atomically(&json, &doc)?;
        let markdown = report::render::markdown(&doc);
        for (name, text) in [
            ("report.md", markdown.clone()),
            ("junit.xml", report::render::junit(&doc)?),
            ("report.html", report::render::html(&doc)?),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {path}"))?;
            println!("wrote {path}");
        }
        if let Some(summary) = &self.summary {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(summary)
                .with_context(|| format!("opening {summary}"))?;
            file.write_all(markdown.as_bytes()).with_context(|| format!("writing {summary}"))?;
        }
        if self.annotations {
            print!("{}", report::render::annotations(&doc));
        }
        let problems = doc.problems();
        if self.check && !problems.is_empty() {
            bail!(
                "{} of {} cells are not ok: {}",
                problems.len(),
                doc.cells.len(),
                problems.join(", ")
            );
        }
        Ok(())
    }
}

/// Every `report.json` under `root`.
fn report_files(root: &camino::Utf8Path) -> anyhow::Result<Vec<camino::Utf8PathBuf>> {
    use anyhow::Context as _;
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry.with_context(|| format!("reading {dir}"))?;
            let Ok(path) = camino::Utf8PathBuf::from_path_buf(entry.path()) else { continue };
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name() == Some("report.json") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
