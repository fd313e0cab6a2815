//! Runs the jobs of our GitHub Actions workflows here, as GitHub would, for exactly what they
//! use, so that `workflow.rs` can prove a run's outcome rather than lint it:
//!
//! - steps in order, `if:` evaluated (with GitHub's implicit `success() &&`), `run:` scripts as
//!   `bash --noprofile --norc -eo pipefail` in the workspace with the workflow's, job's and
//!   step's `env:`, and the files GitHub provides (`GITHUB_OUTPUT`, `GITHUB_ENV`,
//!   `GITHUB_STEP_SUMMARY`, `GITHUB_PATH`) and variables (`GITHUB_REPOSITORY`, `GITHUB_SHA`,
//!   the runner image's `ImageOS` and `ImageVersion`: [`IMAGE`]); step outcomes and conclusions
//!   (`continue-on-error`), job results as `needs.<job>.result` sees them, a job's `if:` against
//!   its needs, a matrix from `fromJson` (an `include` list), a cancelled run;
//! - repositories as on GitHub: `owner/name` is a git repository below [`Runner::repos`]; a run
//!   is of one commit, its workflow file read from that commit;
//! - reusable workflows: a job with `uses: OWNER/REPO/.github/workflows/FILE@REF` runs the
//!   called workflow read at that commit, with the caller's `github` context, `inputs` from
//!   `with:` (declared, typed, required), `job.workflow_repository` and `job.workflow_sha`
//!   naming the called workflow, its jobs in `needs` order (recorded as `CALLER/JOB`), and its
//!   `outputs:` from its jobs' as the caller's `needs.CALLER.outputs`;
//! - the actions by name: `actions/checkout` (empties the directory, then a real `git clone`
//!   of `repository` at `ref`, by GitHub's defaults: the run's repository at the run's commit,
//!   another repository at its default branch; in a called workflow both must be given, or the
//!   test fails), `actions/cache/restore` and `/save` (a store kept between test runs, as
//!   GitHub's cache is between workflow runs; an entry matches only the same `path` list, as
//!   GitHub's cache version does), `actions/upload-artifact` (the root is the one directory
//!   uploaded, or a file's parent, or the least common ancestor of several paths; hidden files
//!   left out; a name already in the run is an error, or with `overwrite: true` replaced, but
//!   only by the job that uploaded it: "re-run failed jobs", not two calls or cells colliding)
//!   and `actions/download-artifact` (with `pattern`: one directory per artifact name);
//! - `${{ }}` through [`expr`], which panics on anything it does not know, on a
//!   `needs.<job>.outputs.<name>` the job does not declare, and on a missing property;
//! - what makes a check pass: [`WorkflowRun::required`] fails the test when the job to require
//!   is `skipped` (GitHub counts a skipped required check as passing), and a matrix that
//!   expands to nothing fails its job, as on GitHub.
//!
//! The scripts' commands are real, except four shims in `gha/bin` (see each): `cargo --locked
//! xtask` runs the xtask binary under test, `rustup`, `sudo` and `apt-get` check instead of
//! installing. Workflow keys this does not implement panic.

pub mod expr;

use std::{
    collections::BTreeMap,
    fs,
    process::{Command, Stdio},
};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Map, Value, json};

/// A job's result and what it left.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// `success`, `failure`, `cancelled` or `skipped`.
    pub result: String,
    /// The job's `outputs:`.
    pub outputs: Map<String, Value>,
    /// Everything its steps wrote to `GITHUB_STEP_SUMMARY`.
    pub summary: String,
    /// `::error …`, `::warning …` and `::notice …` lines its steps printed.
    pub annotations: Vec<String>,
    /// Each step: (name, outcome, output).
    pub steps: Vec<(String, String, String)>,
}

impl JobRun {
    /// The output of the step named `name`.
    pub fn step_output(&self, name: &str) -> &str {
        &self.steps.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("no step {name}")).2
    }

    /// The outcome of the step named `name`.
    pub fn step_outcome(&self, name: &str) -> &str {
        &self.steps.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("no step {name}")).1
    }
}

/// The machine: one runner's directories, the shims, and the cache store.
pub struct Runner {
    /// Everything lives below it.
    pub root: Utf8PathBuf,
    /// `GITHUB_WORKSPACE`: one fixed path, as on GitHub (builds hold absolute paths).
    pub workspace: Utf8PathBuf,
    /// `RUNNER_TEMP`, emptied before each job.
    pub temp: Utf8PathBuf,
    /// Where `~` in a cache path points.
    pub home: Utf8PathBuf,
    /// The cache store, kept between test runs.
    pub cache: Utf8PathBuf,
    /// The xtask binary the `cargo` shim runs.
    pub xtask: Utf8PathBuf,
    /// The shims (`gha/bin`), first on PATH.
    pub bin: Utf8PathBuf,
    /// Environment every step starts from (beside GitHub's own variables).
    pub base_env: Vec<(String, String)>,
    /// The repositories GitHub holds: `<repos>/<owner>/<name>` is a git repository whose `HEAD`
    /// is its default branch.
    pub repos: Utf8PathBuf,
}

/// The runner image a job runs on, as its `ImageOS` and `ImageVersion` variables say.
pub const IMAGE: (&str, &str) = ("ubuntu24", "20261130.1");

/// One run of a workflow (or of a workflow called by one).
pub struct WorkflowRun<'r> {
    runner: &'r Runner,
    workflow: Value,
    file: String,
    /// The `github` context: the run's event, repository and commit (a caller's, in a called
    /// workflow).
    github: Value,
    /// `job.workflow_repository` and `job.workflow_sha`: where this workflow file was read.
    origin: (String, String),
    /// A workflow called by another (`workflow_call`).
    called: bool,
    /// `CALLER/` in a called workflow (its jobs' names in the run), else empty.
    prefix: String,
    inputs: Map<String, Value>,
    artifacts: Utf8PathBuf,
    /// The run was cancelled (before the next job starts).
    pub cancelled: bool,
    /// Finished jobs, by id (a called workflow's as `CALLER/JOB`).
    pub jobs: BTreeMap<String, JobRun>,
}

/// `git` with `args` in `dir`; its stdout, trimmed. Panics when it fails.
pub fn git(dir: &Utf8Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
    assert!(
        out.status.success(),
        "git -C {dir} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("git prints UTF-8").trim().to_owned()
}

impl Runner {
    /// The git repository GitHub holds as `owner/name`.
    pub fn repo(&self, name: &str) -> Utf8PathBuf {
        let dir = self.repos.join(name);
        assert!(dir.exists(), "no repository {name} (at {dir})");
        dir
    }

    /// The commit `rev` (a SHA, branch or tag) names in repository `name`.
    pub fn commit(&self, name: &str, rev: &str) -> String {
        git(&self.repo(name), &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
    }

    fn read_workflow(&self, repository: &str, sha: &str, file: &str) -> Value {
        let text = git(&self.repo(repository), &["show", &format!("{sha}:{file}")]);
        serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {file} of {repository}@{sha}: {e}"))
    }

    /// Starts a run of `.github/workflows/FILE` of repository `repository` at `rev`, for
    /// `event` with `inputs` (applied over the declared defaults).
    pub fn start<'r>(
        &'r self,
        repository: &str,
        rev: &str,
        file: &str,
        event: &str,
        inputs: Value,
    ) -> WorkflowRun<'r> {
        let sha = self.commit(repository, rev);
        let workflow = self.read_workflow(repository, &sha, &format!(".github/workflows/{file}"));
        let inputs = resolve_inputs(file, &workflow, event, inputs);
        let runs = self.root.join("runs");
        fs::create_dir_all(&runs).expect("runs/");
        let n = fs::read_dir(&runs).expect("runs/").count();
        let artifacts = runs.join(format!("{n}/artifacts"));
        fs::create_dir_all(&artifacts).expect("artifacts/");
        let github = json!({
            "event_name": event,
            "workflow": workflow["name"].as_str().unwrap_or(file),
            "ref": "refs/heads/main",
            "repository": repository,
            "sha": sha,
        });
        WorkflowRun {
            runner: self,
            workflow,
            file: file.to_owned(),
            github,
            origin: (repository.to_owned(), sha),
            called: false,
            prefix: String::new(),
            inputs,
            artifacts,
            cancelled: false,
            jobs: BTreeMap::new(),
        }
    }
}

/// The inputs of `event` declared by `workflow`: `given` over the defaults; undeclared or
/// missing required ones panic.
fn resolve_inputs(file: &str, workflow: &Value, event: &str, given: Value) -> Map<String, Value> {
    let declared = workflow["on"][event]["inputs"].as_object().cloned().unwrap_or_default();
    let mut resolved = Map::new();
    for (name, spec) in &declared {
        resolved.insert(name.clone(), spec.get("default").cloned().unwrap_or(Value::Null));
    }
    for (name, value) in given.as_object().cloned().unwrap_or_default() {
        let spec =
            declared.get(&name).unwrap_or_else(|| panic!("{file}: input `{name}` is not declared"));
        let ok = match spec["type"].as_str() {
            Some("string") | None => value.is_string(),
            Some("boolean") => value.is_boolean(),
            Some("number") => value.is_number(),
            Some(other) => panic!("{file}: input type {other} is not emulated"),
        };
        assert!(ok, "{file}: input `{name}` is {value}, not of type {}", spec["type"]);
        resolved.insert(name, value);
    }
    for (name, spec) in &declared {
        let required = spec["required"].as_bool().unwrap_or(false);
        assert!(!required || !resolved[name].is_null(), "{file}: input `{name}` is required");
    }
    // Inputs of other triggers exist as names, without values.
    if let Some(on) = workflow["on"].as_object() {
        for spec in on.values() {
            for name in spec["inputs"].as_object().into_iter().flat_map(|m| m.keys()) {
                resolved.entry(name.clone()).or_insert(Value::Null);
            }
        }
    }
    resolved
}

fn lines(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::String(s) => {
            s.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
        }
        other => panic!("expected text, got {other}"),
    }
}

fn keys_known(what: &str, map: &Value, known: &[&str]) {
    for key in map.as_object().into_iter().flat_map(|m| m.keys()) {
        assert!(known.contains(&key.as_str()), "{what}: `{key}` is not emulated");
    }
}

/// Parses a GITHUB_OUTPUT / GITHUB_ENV file: `name=value` and `name<<DELIM` … `DELIM`.
fn parse_file_commands(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = text.lines();
    while let Some(line) = it.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in it.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_owned(), value.join("\n")));
        } else {
            let (name, value) =
                line.split_once('=').unwrap_or_else(|| panic!("bad file command line {line:?}"));
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

fn copy_into(from: &Utf8Path, to: &Utf8Path) {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).expect("creating a parent");
    }
    let status = Command::new("cp").args(["-a", "--", from.as_str(), to.as_str()]).status();
    assert!(status.is_ok_and(|s| s.success()), "cp -a {from} {to}");
}

fn remove(path: &Utf8Path) {
    if path.is_dir() {
        fs::remove_dir_all(path).unwrap_or_else(|e| panic!("removing {path}: {e}"));
    } else if path.exists() || path.is_symlink() {
        fs::remove_file(path).unwrap_or_else(|e| panic!("removing {path}: {e}"));
    }
}

/// Files (not directories) below `dir`, relative to it, without hidden ones, sorted.
pub fn files_below(dir: &Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in d.read_dir_utf8().into_iter().flatten().flatten() {
            if entry.file_name().starts_with('.') {
                continue;
            }
            let path = entry.path().to_owned();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("below").to_string());
            }
        }
    }
    out.sort();
    out
}

struct StepState {
    /// The job (and matrix entry) the steps belong to, for artifact ownership.
    label: String,
    env: BTreeMap<String, String>,
    path_prepend: Vec<String>,
    steps: Map<String, Value>,
    status: String,
    summary: String,
    annotations: Vec<String>,
    records: Vec<(String, String, String)>,
}

impl WorkflowRun<'_> {
    /// The result GitHub would give job `id` without running it (a cell killed by its
    /// timeout: `cancelled`), for the jobs after it.
    pub fn set_result(&mut self, id: &str, result: &str) {
        let spec = self.job_spec(id);
        let run = JobRun {
            result: result.to_owned(),
            outputs: self.unset_outputs(&spec),
            summary: String::new(),
            annotations: Vec::new(),
            steps: Vec::new(),
        };
        self.jobs.insert(id.to_owned(), run);
    }

    /// Artifacts uploaded so far, by name.
    pub fn artifacts(&self) -> Utf8PathBuf {
        self.artifacts.clone()
    }

    fn job_spec(&self, id: &str) -> Value {
        self.workflow["jobs"][id].clone()
    }

    /// The outputs a job declares, each `''`: what `needs` sees of a job that did not run.
    fn unset_outputs(&self, spec: &Value) -> Map<String, Value> {
        let names: Vec<String> = match spec["uses"].as_str() {
            Some(uses) => {
                let (called, _, _) = self.called_workflow(uses);
                called["on"]["workflow_call"]["outputs"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.keys().cloned())
                    .collect()
            }
            None => {
                spec["outputs"].as_object().into_iter().flat_map(|m| m.keys().cloned()).collect()
            }
        };
        names.into_iter().map(|k| (k, Value::String(String::new()))).collect()
    }

    /// The workflow a `uses:` line names, with the repository and commit it was read from.
    fn called_workflow(&self, uses: &str) -> (Value, String, String) {
        let (path, rev) = uses.rsplit_once('@').unwrap_or_else(|| panic!("uses: {uses}: no @REF"));
        let mut parts = path.splitn(3, '/');
        let (Some(owner), Some(name), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("uses: {uses}: not OWNER/REPO/PATH@REF (local `./` calls are not emulated)")
        };
        assert!(file.starts_with(".github/workflows/"), "uses: {uses}: not a workflow file");
        let repository = format!("{owner}/{name}");
        let sha = self.runner.commit(&repository, rev);
        (self.runner.read_workflow(&repository, &sha, file), repository, sha)
    }

    /// Runs every job not run yet, in the order of their `needs`.
    pub fn run_all(&mut self) {
        let ids: Vec<String> =
            self.workflow["jobs"].as_object().expect("jobs").keys().cloned().collect();
        while let Some(next) = ids.iter().find(|id| {
            !self.jobs.contains_key(*id)
                && self.needs_of(&self.job_spec(id)).iter().all(|n| self.jobs.contains_key(n))
        }) {
            let next = next.clone();
            self.job(&next);
        }
        let left: Vec<&String> = ids.iter().filter(|id| !self.jobs.contains_key(*id)).collect();
        assert!(left.is_empty(), "{}: jobs {left:?} wait on jobs that never run", self.file);
    }

    /// Job `id` as the check a branch protection requires (running it if it has not run):
    /// fails the test when it was skipped, since GitHub counts a skipped required check as
    /// passing.
    pub fn required(&mut self, id: &str) -> JobRun {
        let run = match self.jobs.get(id) {
            Some(r) => r.clone(),
            None => self.job(id),
        };
        assert_ne!(
            run.result, "skipped",
            "{}: `{id}` is the check to require and was skipped, which GitHub counts as passing",
            self.file
        );
        run
    }

    /// Runs job `id` again in this run, as "Re-run jobs" does (same artifacts).
    pub fn rerun(&mut self, id: &str) -> JobRun {
        self.jobs.remove(id);
        self.job(id)
    }

    fn needs_of(&self, spec: &Value) -> Vec<String> {
        match &spec["needs"] {
            Value::Null => Vec::new(),
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => {
                a.iter().map(|v| v.as_str().expect("needs: names").to_owned()).collect()
            }
            other => panic!("needs: {other}"),
        }
    }

    fn base_contexts(&self, needs: &[String]) -> Map<String, Value> {
        let mut needs_ctx = Map::new();
        for n in needs {
            let job = self.jobs.get(n).unwrap_or_else(|| panic!("job `{n}` has not run yet"));
            needs_ctx.insert(n.clone(), json!({"result": job.result, "outputs": job.outputs}));
        }
        let mut c = Map::new();
        c.insert("github".into(), self.github.clone());
        c.insert("inputs".into(), Value::Object(self.inputs.clone()));
        c.insert("needs".into(), Value::Object(needs_ctx));
        c
    }

    fn hash_file(&self) -> impl Fn(&str) -> String + '_ {
        move |path: &str| {
            let file = self.runner.workspace.join(path);
            let bytes = fs::read(&file).unwrap_or_else(|e| panic!("hashFiles({path}): {e}"));
            crate::common::sha256_hex(&bytes)
        }
    }

    /// Runs job `id` (every matrix entry) after its needs; returns its result.
    pub fn job(&mut self, id: &str) -> JobRun {
        let spec = self.job_spec(id);
        assert!(spec.is_object(), "{}: no job `{id}`", self.file);
        if spec.get("uses").is_some() {
            return self.call(id, &spec);
        }
        keys_known(
            &format!("job {id}"),
            &spec,
            &[
                "name",
                "needs",
                "if",
                "runs-on",
                "timeout-minutes",
                "permissions",
                "outputs",
                "env",
                "strategy",
                "steps",
            ],
        );
        let needs = self.needs_of(&spec);
        let contexts = self.base_contexts(&needs);
        let run_it = self.job_condition(&spec, &contexts, &needs);
        let hash = self.hash_file();
        let scope = expr::Scope {
            contexts: &contexts,
            status: expr::Status { success: true, failure: false, cancelled: self.cancelled },
            hash_file: &hash,
        };
        let entries: Vec<Value> = match &spec["strategy"] {
            Value::Null => vec![Value::Null],
            strategy if run_it => {
                keys_known("strategy", strategy, &["fail-fast", "matrix"]);
                let m = expr::template(
                    strategy["matrix"].as_str().expect("matrix: an expression"),
                    &scope,
                );
                keys_known("matrix", &m, &["include"]);
                m["include"].as_array().expect("matrix.include").clone()
            }
            _ => Vec::new(),
        };
        drop(hash);
        let result = if !run_it {
            JobRun {
                result: "skipped".into(),
                outputs: self.unset_outputs(&spec),
                summary: String::new(),
                annotations: Vec::new(),
                steps: Vec::new(),
            }
        } else if entries.is_empty() {
            // GitHub: "Matrix vector 'include' does not contain any values": the job fails.
            JobRun {
                result: "failure".into(),
                outputs: self.unset_outputs(&spec),
                summary: String::new(),
                annotations: vec![format!("::error::job {id}: the matrix has no entries")],
                steps: Vec::new(),
            }
        } else {
            let mut runs: Vec<JobRun> =
                entries.iter().map(|m| self.job_instance(id, &spec, &contexts, m)).collect();
            let result = if runs.iter().any(|r| r.result == "failure") {
                "failure"
            } else if runs.iter().any(|r| r.result == "cancelled") {
                "cancelled"
            } else {
                "success"
            };
            if runs.len() > 1 {
                assert!(spec["outputs"].is_null(), "outputs of a matrix job are not emulated");
            }
            let mut first = runs.remove(0);
            for r in runs {
                first.summary.push_str(&r.summary);
                first.annotations.extend(r.annotations);
                first.steps.extend(r.steps);
            }
            first.result = result.into();
            first
        };
        eprintln!("=== {}: job {id}: {}", self.file, result.result);
        self.jobs.insert(id.to_owned(), result.clone());
        result
    }

    /// A job's `if:` (with GitHub's implicit `success() &&`) against its needs' results.
    fn job_condition(&self, spec: &Value, contexts: &Map<String, Value>, needs: &[String]) -> bool {
        let needs_ok = needs.iter().all(|n| self.jobs[n].result == "success");
        let needs_failed = needs.iter().any(|n| self.jobs[n].result == "failure");
        let hash = self.hash_file();
        let scope = expr::Scope {
            contexts,
            status: expr::Status {
                success: needs_ok && !self.cancelled,
                failure: needs_failed,
                cancelled: self.cancelled,
            },
            hash_file: &hash,
        };
        let cond = match &spec["if"] {
            Value::Null => "success()".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::String(c) => c.clone(),
            other => panic!("if: {other}"),
        };
        let cond = cond.trim().trim_start_matches("${{").trim_end_matches("}}");
        let cond = if expr::has_status_function(cond) {
            cond.to_owned()
        } else {
            format!("success() && ({cond})")
        };
        expr::truthy(&expr::eval(&cond, &scope))
    }

    /// Job `id` calls a reusable workflow: its jobs run here, recorded as `id/JOB`.
    fn call(&mut self, id: &str, spec: &Value) -> JobRun {
        keys_known(
            &format!("job {id}"),
            spec,
            &["name", "needs", "if", "uses", "with", "permissions"],
        );
        let needs = self.needs_of(spec);
        let contexts = self.base_contexts(&needs);
        let uses = spec["uses"].as_str().expect("uses: a string");
        let skipped = !self.job_condition(spec, &contexts, &needs);
        let result = if skipped {
            JobRun {
                result: "skipped".into(),
                outputs: self.unset_outputs(spec),
                summary: String::new(),
                annotations: Vec::new(),
                steps: Vec::new(),
            }
        } else {
            let (workflow, repository, sha) = self.called_workflow(uses);
            let hash = self.hash_file();
            let scope = expr::Scope {
                contexts: &contexts,
                status: expr::Status { success: true, failure: false, cancelled: self.cancelled },
                hash_file: &hash,
            };
            let mut with = Map::new();
            for (k, v) in spec["with"].as_object().into_iter().flatten() {
                let value = match v {
                    Value::String(t) => expr::template(t, &scope),
                    other => other.clone(),
                };
                with.insert(k.clone(), value);
            }
            drop(hash);
            let file = uses.split('@').next().unwrap_or(uses).to_owned();
            let inputs = resolve_inputs(&file, &workflow, "workflow_call", Value::Object(with));
            let mut called = WorkflowRun {
                runner: self.runner,
                workflow,
                file,
                github: self.github.clone(),
                origin: (repository, sha),
                called: true,
                prefix: format!("{}{id}/", self.prefix),
                inputs,
                artifacts: self.artifacts.clone(),
                cancelled: self.cancelled,
                jobs: BTreeMap::new(),
            };
            called.run_all();
            let mut jobs_ctx = Map::new();
            for (j, r) in &called.jobs {
                jobs_ctx.insert(j.clone(), json!({"result": r.result, "outputs": r.outputs}));
            }
            let mut c = Map::new();
            c.insert("jobs".into(), Value::Object(jobs_ctx));
            c.insert("inputs".into(), Value::Object(called.inputs.clone()));
            let no_hash = |p: &str| -> String { panic!("hashFiles({p}) in outputs") };
            let scope = expr::Scope {
                contexts: &c,
                status: expr::Status { success: true, failure: false, cancelled: false },
                hash_file: &no_hash,
            };
            let mut outputs = Map::new();
            let declared = called.workflow["on"]["workflow_call"]["outputs"].clone();
            for (k, v) in declared.as_object().into_iter().flatten() {
                let value = v["value"].as_str().unwrap_or_else(|| panic!("output {k}: no value"));
                outputs.insert(
                    k.clone(),
                    Value::String(expr::to_text(&expr::template(value, &scope))),
                );
            }
            let results: Vec<&str> = called.jobs.values().map(|r| r.result.as_str()).collect();
            let result = if results.contains(&"failure") {
                "failure"
            } else if results.contains(&"cancelled") {
                "cancelled"
            } else {
                "success"
            };
            let mut run = JobRun {
                result: result.into(),
                outputs,
                summary: String::new(),
                annotations: Vec::new(),
                steps: Vec::new(),
            };
            for (j, r) in called.jobs {
                run.summary.push_str(&r.summary);
                run.annotations.extend(r.annotations.iter().cloned());
                self.jobs.insert(format!("{id}/{j}"), r);
            }
            run
        };
        eprintln!("=== {}: job {id} (calls {uses}): {}", self.file, result.result);
        self.jobs.insert(id.to_owned(), result.clone());
        result
    }

    fn job_instance(
        &self,
        id: &str,
        spec: &Value,
        contexts: &Map<String, Value>,
        matrix: &Value,
    ) -> JobRun {
        let runner = self.runner;
        // Each job runs on a fresh machine: an empty workspace and temp directory, at the same
        // paths. The last job's are moved aside and removed while this one runs.
        let trash = runner.root.join("trash");
        fs::create_dir_all(&trash).expect("trash/");
        for dir in [&runner.workspace, &runner.temp] {
            if dir.exists() {
                let aside = trash.join(format!(
                    "{}",
                    std::time::UNIX_EPOCH.elapsed().expect("clock").as_nanos()
                ));
                fs::rename(dir, &aside).unwrap_or_else(|e| panic!("moving {dir} aside: {e}"));
                std::thread::spawn(move || fs::remove_dir_all(aside));
            }
            fs::create_dir_all(dir).expect("a fresh directory");
        }
        let mut contexts = contexts.clone();
        contexts.insert("matrix".into(), matrix.clone());
        contexts.insert("runner".into(), json!({"os": "Linux", "temp": runner.temp}));
        contexts.insert("steps".into(), Value::Object(Map::new()));
        contexts.insert("job".into(), self.job_context("success"));
        let label = match matrix {
            Value::Null => format!("{}{id}", self.prefix),
            m => format!("{}{id} {m}", self.prefix),
        };
        let mut st = StepState {
            label,
            env: BTreeMap::new(),
            path_prepend: Vec::new(),
            steps: Map::new(),
            status: "success".into(),
            summary: String::new(),
            annotations: Vec::new(),
            records: Vec::new(),
        };
        // Workflow env, then job env (which sees matrix and needs).
        for level in [&self.workflow["env"], &spec["env"]] {
            for (k, v) in level.as_object().into_iter().flatten() {
                let value = self.eval_in(&contexts, &st, v, false);
                st.env.insert(k.clone(), expr::to_text(&value));
            }
        }
        let shell = self.workflow["defaults"]["run"]["shell"].as_str().unwrap_or("bash");
        assert_eq!(shell, "bash", "only `shell: bash` is emulated");
        for (n, step) in spec["steps"].as_array().expect("steps").iter().enumerate() {
            self.step(id, n, step, &mut contexts, &mut st);
        }
        // A failed step fails the job; otherwise a cancelled run's job is `cancelled`. (Which
        // of the two GitHub reports for a job that failed in a cancelled run is not emulated:
        // neither is green.)
        let result = if st.status == "failure" {
            "failure"
        } else if self.cancelled {
            "cancelled"
        } else {
            st.status.as_str()
        };
        contexts.insert("steps".into(), Value::Object(st.steps.clone()));
        let mut outputs = Map::new();
        for (k, v) in spec["outputs"].as_object().into_iter().flatten() {
            let value = self.eval_in(&contexts, &st, v, false);
            outputs.insert(k.clone(), Value::String(expr::to_text(&value)));
        }
        JobRun {
            result: result.to_owned(),
            outputs,
            summary: st.summary,
            annotations: st.annotations,
            steps: st.records,
        }
    }

    /// The `job` context with the job's status so far.
    fn job_context(&self, status: &str) -> Value {
        json!({
            "status": status,
            "workflow_repository": self.origin.0,
            "workflow_sha": self.origin.1,
        })
    }

    fn eval_in(
        &self,
        contexts: &Map<String, Value>,
        st: &StepState,
        v: &Value,
        cond: bool,
    ) -> Value {
        let hash = self.hash_file();
        let scope = expr::Scope {
            contexts,
            status: expr::Status {
                success: st.status == "success" && !self.cancelled,
                failure: st.status == "failure",
                cancelled: self.cancelled,
            },
            hash_file: &hash,
        };
        match v {
            Value::String(s) if cond => {
                let inner = s.trim();
                let inner =
                    inner.strip_prefix("${{").and_then(|t| t.strip_suffix("}}")).unwrap_or(inner);
                let inner = if expr::has_status_function(inner) {
                    inner.to_owned()
                } else {
                    format!("success() && ({inner})")
                };
                expr::eval(&inner, &scope)
            }
            Value::String(s) => expr::template(s, &scope),
            Value::Bool(_) | Value::Number(_) | Value::Null => v.clone(),
            other => panic!("unexpected value {other}"),
        }
    }

    fn step(
        &self,
        job: &str,
        n: usize,
        step: &Value,
        contexts: &mut Map<String, Value>,
        st: &mut StepState,
    ) {
        keys_known(
            "step",
            step,
            &[
                "name",
                "id",
                "if",
                "uses",
                "with",
                "run",
                "env",
                "continue-on-error",
                "working-directory",
            ],
        );
        let name = step["name"]
            .as_str()
            .map(String::from)
            .or_else(|| step["uses"].as_str().map(|u| u.split('@').next().unwrap_or(u).to_owned()))
            .unwrap_or_else(|| format!("step {n}"));
        contexts.insert("steps".into(), Value::Object(st.steps.clone()));
        let status = if self.cancelled { "cancelled" } else { st.status.as_str() };
        contexts.insert("job".into(), self.job_context(status));
        let cond = step.get("if").cloned().unwrap_or(Value::String("success()".into()));
        let cond = match cond {
            Value::Bool(b) => Value::Bool(b),
            other => self.eval_in(contexts, st, &other, true),
        };
        let id = step["id"].as_str().map(String::from);
        if !expr::truthy(&cond) {
            eprintln!("--- {job} / {name}: skipped");
            if let Some(id) = &id {
                st.steps.insert(
                    id.clone(),
                    json!({"outcome": "skipped", "conclusion": "skipped", "outputs": {}}),
                );
            }
            st.records.push((name, "skipped".into(), String::new()));
            return;
        }
        let mut env = st.env.clone();
        for (k, v) in step["env"].as_object().into_iter().flatten() {
            env.insert(k.clone(), expr::to_text(&self.eval_in(contexts, st, v, false)));
        }
        let mut with = Map::new();
        for (k, v) in step["with"].as_object().into_iter().flatten() {
            with.insert(k.clone(), self.eval_in(contexts, st, v, false));
        }
        let dir = self.runner.temp.join(format!("_step{n}"));
        fs::create_dir_all(&dir).expect("step files");
        let files =
            ["GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY", "GITHUB_PATH"].map(|f| {
                let p = dir.join(f);
                fs::write(&p, "").expect("step file");
                (f, p)
            });
        let step_started = std::time::Instant::now();
        let (ok, output, outputs) = if let Some(uses) = step["uses"].as_str() {
            let action = uses.split('@').next().unwrap_or(uses);
            let (ok, out, outputs) = self.action(action, &with, &st.label);
            (ok, out, outputs)
        } else {
            let script = step["run"].as_str().expect("a step has run: or uses:");
            assert!(
                !script.contains("${{"),
                "{job}/{name}: expressions inside run: are not emulated"
            );
            assert!(with.is_empty(), "with: on a run step");
            let script_file = dir.join("script.sh");
            fs::write(&script_file, script).expect("script");
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail", script_file.as_str()]);
            let wd = match step["working-directory"].as_str() {
                Some(d) => self.runner.workspace.join(d),
                None => self.runner.workspace.clone(),
            };
            cmd.current_dir(wd).env_clear();
            for (k, v) in &self.runner.base_env {
                cmd.env(k, v);
            }
            let mut path: Vec<String> = st.path_prepend.iter().rev().cloned().collect();
            path.push(self.runner.bin.to_string());
            path.push(
                self.runner
                    .base_env
                    .iter()
                    .find(|(k, _)| k == "PATH")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
            cmd.env("PATH", path.join(":"))
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", &self.runner.workspace)
                .env("GITHUB_EVENT_NAME", self.github["event_name"].as_str().expect("event"))
                .env("GITHUB_REPOSITORY", self.github["repository"].as_str().expect("repository"))
                .env("GITHUB_SHA", self.github["sha"].as_str().expect("sha"))
                .env("ImageOS", IMAGE.0)
                .env("ImageVersion", IMAGE.1)
                .env("RUNNER_OS", "Linux")
                .env("RUNNER_TEMP", &self.runner.temp)
                .env("GHA_XTASK", &self.runner.xtask);
            for (f, p) in &files {
                cmd.env(f, p);
            }
            for (k, v) in &env {
                cmd.env(k, v);
            }
            let out = cmd.stdin(Stdio::null()).output().expect("bash runs");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let outputs =
                parse_file_commands(&fs::read_to_string(&files[0].1).expect("GITHUB_OUTPUT"));
            (out.status.success(), text, outputs)
        };
        for (k, v) in parse_file_commands(&fs::read_to_string(&files[1].1).expect("GITHUB_ENV")) {
            st.env.insert(k, v);
        }
        st.summary.push_str(&fs::read_to_string(&files[2].1).expect("GITHUB_STEP_SUMMARY"));
        for l in fs::read_to_string(&files[3].1).expect("GITHUB_PATH").lines() {
            st.path_prepend.push(l.to_owned());
        }
        for line in output.lines() {
            if line.starts_with("::error")
                || line.starts_with("::warning")
                || line.starts_with("::notice")
            {
                st.annotations.push(line.to_owned());
            }
        }
        let outcome = if ok { "success" } else { "failure" };
        let continue_on_error = match &step["continue-on-error"] {
            Value::Null => false,
            Value::Bool(b) => *b,
            other => panic!("continue-on-error: {other} is not emulated"),
        };
        let conclusion = if ok || continue_on_error { "success" } else { "failure" };
        if conclusion == "failure" {
            st.status = "failure".into();
        }
        let secs = step_started.elapsed().as_secs_f64();
        eprintln!("--- {job} / {name}: {outcome} in {secs:.1}s\n{output}");
        if let Some(id) = &id {
            let outputs: Map<String, Value> =
                outputs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            st.steps.insert(
                id.clone(),
                json!({"outcome": outcome, "conclusion": conclusion, "outputs": outputs}),
            );
        }
        st.records.push((name, outcome.to_owned(), output));
    }

    /// Resolves a path of an action's input: `~/…` in the runner's home, relative in the
    /// workspace.
    fn resolve(&self, p: &str) -> Utf8PathBuf {
        match p.strip_prefix("~/") {
            Some(rest) => self.runner.home.join(rest),
            None => self.runner.workspace.join(p),
        }
    }

    fn action(
        &self,
        action: &str,
        with: &Map<String, Value>,
        who: &str,
    ) -> (bool, String, Vec<(String, String)>) {
        let text = |k: &str| with.get(k).map(expr::to_text).unwrap_or_default();
        let known = |keys: &[&str]| keys_known(action, &Value::Object(with.clone()), keys);
        match action {
            "actions/checkout" => {
                known(&["persist-credentials", "repository", "ref", "path"]);
                assert_eq!(text("persist-credentials"), "false", "checkout keeps no credentials");
                // In a called workflow the defaults are the caller's repository and event: easy
                // to mistake for the called workflow's own. Our workflows name both.
                assert!(
                    !self.called || (!text("repository").is_empty() && !text("ref").is_empty()),
                    "{}: a checkout without `repository:` and `ref:` (here {with:?}) takes the \
                     caller's repository at the caller's commit",
                    self.file
                );
                let run_repo = self.github["repository"].as_str().expect("repository");
                let repository = match text("repository") {
                    r if r.is_empty() => run_repo.to_owned(),
                    r => r,
                };
                let rev = match text("ref") {
                    r if !r.is_empty() => r,
                    // GitHub's defaults: the event's commit of the run's repository, the
                    // default branch of any other.
                    _ if repository == run_repo => {
                        self.github["sha"].as_str().expect("sha").to_owned()
                    }
                    _ => "HEAD".to_owned(),
                };
                let sha = self.runner.commit(&repository, &rev);
                let dest = match with.get("path") {
                    Some(p) => self.runner.workspace.join(expr::to_text(p)),
                    None => self.runner.workspace.clone(),
                };
                fs::create_dir_all(&dest).expect("checkout path");
                for entry in dest.read_dir_utf8().expect("checkout path").flatten() {
                    remove(entry.path());
                }
                let from = self.runner.repo(&repository);
                git(&dest, &["clone", "--quiet", "--shared", "--no-checkout", from.as_str(), "."]);
                git(&dest, &["checkout", "--quiet", "--detach", &sha]);
                (true, format!("checked out {repository}@{sha} ({rev}) into {dest}"), Vec::new())
            }
            "actions/cache/restore" => {
                known(&["path", "key", "restore-keys"]);
                let paths = lines(&with["path"]);
                let key = text("key");
                assert!(!key.is_empty(), "cache key is empty");
                let mut candidates = vec![(key.clone(), true)];
                candidates.extend(
                    lines(with.get("restore-keys").unwrap_or(&Value::Null))
                        .into_iter()
                        .map(|k| (k, false)),
                );
                for (k, exact) in candidates {
                    let found = self.cache_lookup(&k, exact, &paths);
                    if let Some(entry) = found {
                        for (i, p) in paths.iter().enumerate() {
                            let stored = entry.join(format!("{i}"));
                            if stored.exists() {
                                let dest = self.resolve(p);
                                remove(&dest);
                                copy_into(&stored, &dest);
                            }
                        }
                        let hit = if exact { "true" } else { "false" };
                        let msg = format!("cache restored from {entry} (key {k})");
                        return (
                            true,
                            msg,
                            vec![("cache-hit".into(), hit.into()), ("cache-matched-key".into(), k)],
                        );
                    }
                }
                (true, format!("cache not found for key {key}"), Vec::new())
            }
            "actions/cache/save" => {
                known(&["path", "key"]);
                let paths = lines(&with["path"]);
                let key = text("key");
                assert!(!key.is_empty(), "cache key is empty");
                let entry = self.runner.cache.join(sanitize(&key));
                if entry.exists() {
                    return (
                        true,
                        format!("::warning::Failed to save: cache entry {key} exists"),
                        Vec::new(),
                    );
                }
                if !paths.iter().any(|p| self.resolve(p).exists()) {
                    return (
                        true,
                        "::warning::Path Validation Error: no path exists; nothing saved".into(),
                        Vec::new(),
                    );
                }
                let tmp = self.runner.cache.join(format!(".tmp-{}", sanitize(&key)));
                remove(&tmp);
                fs::create_dir_all(&tmp).expect("cache tmp");
                for (i, p) in paths.iter().enumerate() {
                    let src = self.resolve(p);
                    if src.exists() {
                        copy_into(&src, &tmp.join(format!("{i}")));
                    }
                }
                fs::write(tmp.join("paths.json"), serde_json::to_string(&paths).expect("json"))
                    .expect("paths");
                fs::write(tmp.join("key"), &key).expect("key");
                fs::rename(&tmp, &entry).expect("cache entry into place");
                (true, format!("cache saved as {key}"), Vec::new())
            }
            "actions/upload-artifact" => {
                known(&["name", "path", "if-no-files-found", "retention-days", "overwrite"]);
                let name = text("name");
                assert!(
                    !name.is_empty()
                        && !name.contains(['+', '"', ':', '<', '>', '|', '*', '?', '\\', '/']),
                    "artifact name {name:?}"
                );
                let dest = self.artifacts.join(&name);
                let owner = self.artifacts.with_file_name("owners").join(&name);
                if dest.exists() {
                    if text("overwrite") != "true" {
                        return (
                            false,
                            format!("an artifact named {name} already exists in this run"),
                            Vec::new(),
                        );
                    }
                    // GitHub would replace it; a job other than the one that uploaded it is two
                    // calls (or cells) sharing a name, each hiding the other's results.
                    let first = fs::read_to_string(&owner).expect("artifact owner");
                    assert_eq!(first, who, "artifact {name}: uploaded by two jobs of one run");
                    remove(&dest);
                }
                fs::create_dir_all(owner.parent().expect("owners/")).expect("owners/");
                fs::write(&owner, who).expect("artifact owner");
                let paths: Vec<Utf8PathBuf> = lines(&with["path"])
                    .iter()
                    .map(|p| {
                        assert!(
                            !p.contains(['*', '?', '[', '!']),
                            "globs in upload paths are not emulated: {p}"
                        );
                        self.resolve(p.trim_end_matches('/'))
                    })
                    .collect();
                let mut files: Vec<Utf8PathBuf> = Vec::new();
                for p in &paths {
                    if p.is_dir() {
                        files.extend(files_below(p).into_iter().map(|f| p.join(f)));
                    } else if p.is_file() {
                        files.push(p.clone());
                    }
                }
                let root = if paths.len() == 1 {
                    if paths[0].is_file() {
                        paths[0].parent().expect("parent").to_owned()
                    } else {
                        paths[0].clone()
                    }
                } else {
                    let mut lca = paths[0].clone();
                    while !paths.iter().all(|p| p.starts_with(&lca)) {
                        lca = lca.parent().expect("a common ancestor").to_owned();
                    }
                    lca
                };
                if files.is_empty() {
                    let mode = text("if-no-files-found");
                    let msg = format!("no files found for artifact {name}");
                    return match mode.as_str() {
                        "error" => (false, format!("::error::{msg}"), Vec::new()),
                        "ignore" => (true, msg, Vec::new()),
                        _ => (true, format!("::warning::{msg}"), Vec::new()),
                    };
                }
                for f in &files {
                    let rel = f.strip_prefix(&root).expect("below the root");
                    let to = dest.join(rel);
                    fs::create_dir_all(to.parent().expect("parent")).expect("artifact dir");
                    fs::copy(f, &to).unwrap_or_else(|e| panic!("copying {f}: {e}"));
                }
                (true, format!("uploaded {} file(s) as {name}", files.len()), Vec::new())
            }
            "actions/download-artifact" => {
                known(&["pattern", "path"]);
                let pattern = text("pattern");
                let prefix = pattern
                    .strip_suffix('*')
                    .unwrap_or_else(|| panic!("pattern {pattern}: only PREFIX* is emulated"));
                assert!(!prefix.contains(['*', '?', '[']), "pattern {pattern}");
                let dest = {
                    let p = text("path");
                    if p.starts_with('/') {
                        Utf8PathBuf::from(p)
                    } else {
                        self.runner.workspace.join(p)
                    }
                };
                let mut n = 0;
                for entry in self.artifacts.read_dir_utf8().expect("artifacts").flatten() {
                    if entry.file_name().starts_with(prefix) {
                        copy_into(entry.path(), &dest.join(entry.file_name()));
                        n += 1;
                    }
                }
                (
                    true,
                    format!("downloaded {n} artifact(s) into {dest}, one directory each"),
                    Vec::new(),
                )
            }
            other => panic!("action {other} is not emulated"),
        }
    }

    fn cache_lookup(&self, key: &str, exact: bool, paths: &[String]) -> Option<Utf8PathBuf> {
        let same_paths = |entry: &Utf8Path| {
            let text = fs::read_to_string(entry.join("paths.json")).unwrap_or_default();
            serde_json::from_str::<Vec<String>>(&text).ok().as_deref() == Some(paths)
        };
        if exact {
            let entry = self.runner.cache.join(sanitize(key));
            return (entry.is_dir() && same_paths(&entry)).then_some(entry);
        }
        let mut found: Vec<(std::time::SystemTime, Utf8PathBuf)> = Vec::new();
        for e in self.runner.cache.read_dir_utf8().into_iter().flatten().flatten() {
            let stored_key = fs::read_to_string(e.path().join("key")).unwrap_or_default();
            if stored_key.starts_with(key) && same_paths(e.path()) {
                let t = e.metadata().and_then(|m| m.modified()).expect("mtime");
                found.push((t, e.path().to_owned()));
            }
        }
        found.sort();
        found.pop().map(|(_, p)| p)
    }
}

fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect()
}
