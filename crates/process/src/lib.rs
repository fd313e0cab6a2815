//! The one process boundary of debug-matrix. Every long-running command the tool starts
//! (configure, make, pip, pytest, regrtest) goes through [`run_logged`]: its own process group
//! (via `process-wrap`), stdout and stderr appended to a log file, a time limit, and
//! cancellation by a shared flag (Ctrl-C). Killing is of the whole group (SIGTERM, then
//! SIGKILL after a grace period), also when the caller returns early or panics, and by a
//! [`watchdog`] when the tool itself is killed (SIGKILL included).
//!
//! Besides: [`scrub_python_env`] (the one rule for which inherited variables a Python process
//! must not see), [`tail`] and [`tail_of_file`] (the last lines of a log), and
//! [`write_json_atomically`] / [`write_atomically`] (a file is replaced whole or not at all,
//! also when two processes write it at once).

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    process::{Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use camino::Utf8Path;
use process_wrap::std::{ChildWrapper, CommandWrap, ProcessGroup};
use serde::Serialize;

pub mod watchdog;

/// How a command ended, if not with success.
#[derive(Debug)]
pub enum RunError {
    /// It exited non-zero or was killed by a signal.
    Failed(ExitStatus),
    /// The run was cancelled (Ctrl-C); the process group was killed.
    Cancelled,
    /// It ran past its time limit; the process group was killed.
    TimedOut(Duration),
    /// It could not be started or the log could not be written.
    Io(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Failed(status) => write!(f, "{status}"),
            RunError::Cancelled => f.write_str("interrupted"),
            RunError::TimedOut(t) => write!(f, "timed out after {}s", t.as_secs()),
            RunError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// The variables no Python process started by the tool inherits from the caller's shell:
/// every `PYTHON*` variable (the tool sets the ones a cell needs, e.g. a variant's
/// `PYTHONMALLOC`, after calling this), an active virtual environment, and pip settings that
/// would refuse or redirect the tool's installs.
pub fn is_scrubbed_for_python(name: &str) -> bool {
    name.starts_with("PYTHON")
        || matches!(
            name,
            "VIRTUAL_ENV" | "PIP_REQUIRE_VIRTUALENV" | "PIP_USER" | "__PYVENV_LAUNCHER__"
        )
}

/// Removes from `cmd` every inherited variable [`is_scrubbed_for_python`] names; set what the
/// process needs afterwards.
pub fn scrub_python_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_scrubbed_for_python) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// How long a group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// How much of a command's output its log keeps: the first `head` and the last `tail` bytes,
/// with a line between them saying how many were dropped. Only the tail is held in memory.
#[derive(Debug, Clone, Copy)]
pub struct LogCap {
    /// Bytes kept from the start.
    pub head: u64,
    /// Bytes kept from the end (held in memory until the command ends).
    pub tail: usize,
}

impl LogCap {
    /// What every log keeps: 16 MiB from the start, 4 MiB from the end (a test printing a
    /// gibibyte once made a 4 GB log and a 2 GB tool).
    pub const DEFAULT: LogCap = LogCap { head: 16 << 20, tail: 4 << 20 };
}

/// Runs `cmd` with stdout and stderr appended to `log` (created with its directory) up to
/// [`LogCap::DEFAULT`], stdin empty, in a new process group. Polls `cancel`; when it is set,
/// or when `timeout` passes, the whole group is killed.
pub fn run_logged(
    cmd: Command,
    log: &Utf8Path,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<(), RunError> {
    run_logged_capped(cmd, log, cancel, timeout, LogCap::DEFAULT)
}

/// [`run_logged`] with the log capped at `cap`.
pub fn run_logged_capped(
    cmd: Command,
    log: &Utf8Path,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
    cap: LogCap,
) -> Result<(), RunError> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(RunError::Io)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(log).map_err(RunError::Io)?;
    writeln!(file, "$ {cmd:?}").map_err(RunError::Io)?;
    // Output goes through a pipe to a copier that caps it; the write end is only the
    // child's (the command is dropped right after the spawn), so the copier ends at EOF.
    let (reader, writer) = io::pipe().map_err(RunError::Io)?;
    let mut wrapped = CommandWrap::from(cmd);
    wrapped
        .command_mut()
        .stdout(writer.try_clone().map_err(RunError::Io)?)
        .stderr(writer)
        .stdin(Stdio::null());
    wrapped.wrap(ProcessGroup::leader());
    let spawned = wrapped.spawn().map_err(RunError::Io);
    drop(wrapped);
    let copier_file = file.try_clone().map_err(RunError::Io)?;
    let (done_tx, done) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = copy_capped(reader, copier_file, cap);
        let _ = done_tx.send(());
    });
    // Waits for the copier to write what is left (a process the group left behind may hold
    // the pipe open: then the rest follows when it ends).
    let flushed = || {
        let _ = done.recv_timeout(Duration::from_secs(2));
    };
    let mut child = GroupGuard(Some(spawned?), None);
    let leader = child.0.as_ref().map(|c| c.id());
    if let Some(pgid) = leader {
        match watchdog::watch(pgid) {
            Ok(dog) => child.1 = dog,
            // The command still runs, killed on Ctrl-C, time limits and early returns.
            Err(e) => {
                let _ = writeln!(
                    file,
                    "debug-matrix: no watchdog ({e}): this group outlives a killed tool"
                );
            }
        }
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(RunError::Io)? {
            child.0 = None;
            flushed();
            return if status.success() { Ok(()) } else { Err(RunError::Failed(status)) };
        }
        let timed_out = timeout.filter(|t| started.elapsed() > *t);
        if cancel.load(Ordering::SeqCst) || timed_out.is_some() {
            child.kill();
            flushed();
            let _ = writeln!(file, "debug-matrix: process group killed");
            return Err(match timed_out {
                Some(t) => RunError::TimedOut(t),
                None => RunError::Cancelled,
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Copies `from` to `to`, keeping the first `cap.head` bytes and the last `cap.tail`, with a
/// line saying how many were dropped between them. Memory: the tail, at most.
fn copy_capped(mut from: impl Read, mut to: fs::File, cap: LogCap) -> io::Result<()> {
    let mut head = 0u64;
    let mut tail = std::collections::VecDeque::<u8>::new();
    let mut dropped = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        if head < cap.head {
            let k = usize::try_from(cap.head - head).unwrap_or(usize::MAX).min(chunk.len());
            to.write_all(&chunk[..k])?;
            head += k as u64;
            chunk = &chunk[k..];
        }
        tail.extend(chunk);
        if tail.len() > cap.tail {
            let excess = tail.len() - cap.tail;
            tail.drain(..excess);
            dropped += excess as u64;
        }
    }
    if dropped > 0 {
        writeln!(
            to,
            "\n[debug-matrix: {dropped} bytes of output dropped here; the log keeps the first \
             {} and the last {} bytes]",
            cap.head, cap.tail
        )?;
    }
    let (a, b) = tail.as_slices();
    to.write_all(a)?;
    to.write_all(b)
}

/// A running process group that is killed when dropped unless it already ended, and its
/// watchdog, stopped once the group is over.
struct GroupGuard(Option<Box<dyn ChildWrapper>>, Option<watchdog::Watchdog>);

impl GroupGuard {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.0 {
            Some(child) => child.try_wait(),
            None => Ok(None),
        }
    }

    /// SIGTERM to the group, then SIGKILL if the leader has not ended after [`GRACE`];
    /// waits for the leader either way.
    fn kill(&mut self) {
        let Some(mut child) = self.0.take() else {
            self.1 = None;
            return;
        };
        const SIGTERM: i32 = 15;
        let _ = child.signal(SIGTERM);
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        // SIGKILL to the group also reaches descendants that ignored SIGTERM.
        let _ = child.start_kill();
        let _ = child.wait();
        self.1 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The last `lines` lines of the file at `log` (reading at most its last 64 KiB); empty if it
/// cannot be read.
pub fn tail_of_file(log: &Utf8Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(log) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    tail(&String::from_utf8_lossy(&bytes), lines)
}

/// Writes `bytes` to a new temporary file beside `path` (a unique name, so concurrent writers
/// never share one), flushes it to disk and renames it over `path`: readers see the old file
/// or the new one, never a part.
pub fn write_atomically(path: &Utf8Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().with_context(|| format!("{path} has no parent directory"))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    let name = path.file_name().unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {dir}"))?;
    tmp.write_all(bytes).with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.as_file().sync_all().with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("replacing {path}"))?;
    Ok(())
}

/// [`write_atomically`] of `value` as pretty-printed JSON.
pub fn write_json_atomically<T: Serialize>(path: &Utf8Path, value: &T) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).with_context(|| format!("encoding {path}"))?;
    write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests;
