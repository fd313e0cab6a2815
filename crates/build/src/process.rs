//! The process boundary of builds: run one command in its own process group with its output
//! appended to a log file, and kill the whole group on cancellation or timeout.

use std::{
    fs::{self, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    os::unix::process::CommandExt,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use camino::Utf8Path;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

/// How a command ended, if not with success.
#[derive(Debug)]
pub enum RunError {
    /// It exited non-zero or was killed by a signal.
    Failed(std::process::ExitStatus),
    /// The run was cancelled (Ctrl-C); the process group was killed.
    Cancelled,
    /// It ran past its time limit; the process group was killed.
    TimedOut(Duration),
    /// It could not be started or the log could not be written.
    Io(io::Error),
}

/// Runs `cmd` with stdout and stderr appended to `log`, in a new process group. Polls
/// `cancel`; when it is set, or when `timeout` passes, the whole group is killed.
pub fn run_logged(
    mut cmd: Command,
    log: &Utf8Path,
    cancel: &AtomicBool,
    timeout: Option<Duration>,
) -> Result<(), RunError> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(RunError::Io)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(log).map_err(RunError::Io)?;
    writeln!(file, "$ {cmd:?}").map_err(RunError::Io)?;
    cmd.stdout(file.try_clone().map_err(RunError::Io)?);
    cmd.stderr(file.try_clone().map_err(RunError::Io)?);
    cmd.stdin(std::process::Stdio::null());
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Io)?;
    let pgid = Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(RunError::Io)? {
            return if status.success() { Ok(()) } else { Err(RunError::Failed(status)) };
        }
        let timed_out = timeout.filter(|t| started.elapsed() > *t);
        if cancel.load(Ordering::SeqCst) || timed_out.is_some() {
            kill_group(pgid);
            let _ = child.wait();
            let _ = writeln!(file, "debug-matrix: process group killed");
            return Err(match timed_out {
                Some(t) => RunError::TimedOut(t),
                None => RunError::Cancelled,
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM to the group, then SIGKILL to whatever is left after a grace period.
fn kill_group(pgid: Pid) {
    let _ = killpg(pgid, Signal::SIGTERM);
    for _ in 0..30 {
        thread::sleep(Duration::from_millis(100));
        if killpg(pgid, None).is_err() {
            return;
        }
    }
    let _ = killpg(pgid, Signal::SIGKILL);
}

/// The last `lines` lines of a log file (empty if unreadable).
pub fn tail(log: &Utf8Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(log) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    fn log_in(dir: &tempfile::TempDir) -> camino::Utf8PathBuf {
        camino::Utf8PathBuf::try_from(dir.path().join("logs/x.log")).expect("utf-8 temp path")
    }

    #[test]
    fn output_goes_to_the_log_and_failure_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_in(&dir);
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo hello; echo oops >&2"]);
        run_logged(ok, &log, &AtomicBool::new(false), None).expect("succeeds");
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo failing; exit 3"]);
        let err = run_logged(bad, &log, &AtomicBool::new(false), None);
        assert!(matches!(&err, Err(RunError::Failed(s)) if s.code() == Some(3)), "{err:?}");
        let text = fs::read_to_string(&log).expect("log");
        assert!(text.contains("hello\noops\n"), "{text}");
        assert_eq!(tail(&log, 1), "failing");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_in(&dir);
        let pidfile = dir.path().join("grandchild.pid");
        let mut cmd = Command::new("sh");
        // The grandchild would outlive a plain kill of `sh`.
        cmd.arg("-c").arg(format!("sleep 60 & echo $! > {}; wait", pidfile.display()));
        let err = run_logged(cmd, &log, &AtomicBool::new(false), Some(Duration::from_millis(500)));
        assert!(matches!(err, Err(RunError::TimedOut(_))), "{err:?}");
        let pid: i32 = fs::read_to_string(&pidfile).expect("pid").trim().parse().expect("a pid");
        thread::sleep(Duration::from_millis(200));
        assert!(
            nix::sys::signal::kill(Pid::from_raw(pid), None).is_err(),
            "grandchild {pid} still alive"
        );
    }
}
