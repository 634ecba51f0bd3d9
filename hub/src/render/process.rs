//! Running a renderer program with a deadline and bounded output, killing its whole process group on excess.

use super::RenderError;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How much of stderr is kept for error messages.
const STDERR_KEEP: usize = 8 * 1024;

/// What a finished program printed.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) stdout: Vec<u8>,
}

/// The first executable file named `program` in the directories of `path`
/// (a PATH value). A name with a `/` is not looked up.
pub(super) fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Run `command` (stdin closed) until it exits, `timeout` passes or its
/// stdout exceeds `max_stdout` bytes; in the last two cases the process
/// group is killed. A non-zero exit is an error carrying stderr.
pub(super) fn run(
    mut command: Command,
    program: &str,
    timeout: Duration,
    max_stdout: u64,
) -> Result<Output, RenderError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout also ends what it started
        // (a shell's children would otherwise keep the pipes open).
        .process_group(0);
    let mut child = command.spawn().map_err(|source| RenderError::Io {
        context: format!("starting {program}"),
        source,
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(child.id());
        let _ = child.wait();
        return Err(RenderError::Io {
            context: format!("starting {program}"),
            source: std::io::Error::other("no pipes"),
        });
    };

    // The stdout reader reports once: over the limit, or done (EOF).
    let (out_tx, out_rx) = mpsc::channel::<Option<std::io::Result<Vec<u8>>>>();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = stdout
            .take(max_stdout.saturating_add(1))
            .read_to_end(&mut buf);
        let report = if buf.len() as u64 > max_stdout {
            None
        } else {
            Some(read.map(|_| buf))
        };
        let _ = out_tx.send(report);
    });
    let (err_tx, err_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut stderr = stderr;
        let _ = (&mut stderr)
            .take(STDERR_KEEP as u64)
            .read_to_end(&mut kept);
        // Drain the rest so the program never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        let _ = err_tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    // A program may leave a daemon holding stderr open: never wait long.
    let stderr_within = |d: Duration| err_rx.recv_timeout(d).unwrap_or_default();

    let deadline = Instant::now() + timeout;
    let mut stdout_result = None;
    let timed_out = |child: &mut std::process::Child| {
        kill_group(child.id());
        let _ = child.wait();
        // The group is gone, so the pipes close and the reader ends.
        let stderr = stderr_within(Duration::from_secs(1));
        RenderError::Timeout {
            program: program.to_owned(),
            after: timeout,
            stderr: trim(&stderr),
        }
    };
    let over_limit = |child: &mut std::process::Child| {
        kill_group(child.id());
        let _ = child.wait();
        RenderError::OutputLimit {
            program: program.to_owned(),
            limit: max_stdout,
        }
    };
    let status = loop {
        // Until the child is reaped its pid cannot be reused, so killing
        // its group here never hits a stranger.
        match out_rx.try_recv() {
            Ok(None) => return Err(over_limit(&mut child)),
            Ok(Some(r)) => stdout_result = Some(r),
            Err(_) => {}
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(RenderError::Io {
                    context: format!("waiting for {program}"),
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(timed_out(&mut child));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = match stdout_result {
        Some(r) => r,
        // Descendants left in the group may still hold stdout open: they
        // get what remains of the deadline. The group outlives the leader
        // while members remain, so its id is still theirs to kill.
        None => match out_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Some(r)) => r,
            Ok(None) => {
                kill_group(child.id());
                return Err(RenderError::OutputLimit {
                    program: program.to_owned(),
                    limit: max_stdout,
                });
            }
            Err(_) => {
                kill_group(child.id());
                let stderr = stderr_within(Duration::from_secs(1));
                return Err(RenderError::Timeout {
                    program: program.to_owned(),
                    after: timeout,
                    stderr: trim(&stderr),
                });
            }
        },
    };
    let stderr = if status.success() {
        String::new()
    } else {
        stderr_within(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100)),
        )
    };
    if !status.success() {
        return Err(RenderError::Failed {
            program: program.to_owned(),
            status: status.to_string(),
            stderr: trim(&stderr),
        });
    }
    let stdout = stdout.map_err(|source| RenderError::Io {
        context: format!("reading the output of {program}"),
        source,
    })?;
    Ok(Output { stdout })
}

fn trim(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        "(empty)".to_owned()
    } else if stderr.len() >= STDERR_KEEP {
        format!("{t}…")
    } else {
        t.to_owned()
    }
}

/// SIGKILL to the process group `pgid` (the program's pid, as it leads
/// its own group). std offers no group kill and the crate forbids unsafe
/// code, so procps' `kill` does it, as the hub's quickstart already does.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
