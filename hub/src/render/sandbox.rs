//! Running one render in a worker process (the hub's own binary, `switchyard render-worker`) under CPU, memory, output and wall-clock limits.
//!
//! The worker leads its own process group, so kustomize, plugins and
//! whatever they start are in it too: at the timeout, on excess output,
//! and after every render the whole group gets SIGKILL, sent directly
//! (no `kill` program), before the worker is reaped so its group id
//! cannot have been reused by then. Programs that leave the group
//! (`setsid`) stay the worker's descendants, since it is their subreaper,
//! and are killed by pid first ([`super::reaper`]).

use super::reaper;
use super::wire::{self, Reply, Request};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use serde_json::Value;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// How much of a worker's stderr is kept for error messages.
const STDERR_KEEP: u64 = 8 * 1024;

/// Room for the reply's envelope (and an error message) beyond the
/// rendered objects' own limit.
const REPLY_SLACK: u64 = 64 * 1024;

/// What one render may cost; every field is a `switchyard serve` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Wall-clock time from the worker's start to its reply. It also sets
    /// the CPU time limit (RLIMIT_CPU) of the worker and of each program it
    /// starts: see [`RenderLimits::cpu_seconds`].
    pub timeout: Duration,
    /// Address space of the worker and of each program it starts
    /// (RLIMIT_AS). Virtual, not resident, memory: Go programs such as
    /// kubectl reserve about 800 MiB before doing anything.
    pub memory_bytes: u64,
    /// Renders running at once.
    pub concurrency: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            memory_bytes: 2 * 1024 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

impl RenderLimits {
    /// CPU seconds the worker (and each program it starts) may use: the
    /// timeout rounded up, and one more, so that a single-threaded render
    /// meets the wall clock first and says so; only a render using several
    /// cores at once meets this limit before.
    pub fn cpu_seconds(&self) -> u64 {
        let whole = self.timeout.as_secs();
        let rounded = if self.timeout.subsec_nanos() > 0 {
            whole + 1
        } else {
            whole
        };
        rounded.saturating_add(1)
    }
}

/// The bytes a worker may print for `max_rendered_bytes` of objects.
pub fn output_limit(max_rendered_bytes: u64) -> u64 {
    // Objects are counted without the array's commas: one per object at
    // most, and an object is at least a few dozen bytes.
    max_rendered_bytes
        .saturating_add(max_rendered_bytes / 16)
        .saturating_add(REPLY_SLACK)
}

/// How to start a worker: a program and the arguments before the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Worker {
    /// This very binary, `switchyard render-worker`: the running image
    /// (`/proc/self/exe`), not the path it was started from, so a worker is
    /// always of the hub's own version, even while the binary is upgraded.
    pub fn this_binary() -> Self {
        Self::new("/proc/self/exe", ["render-worker"])
    }

    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

/// Why a render in a worker produced no objects. Messages complete the
/// phrase "render of app X at commit Y …".
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("exceeded its memory limit ({})", mebibytes(*limit))]
    MemoryLimit { limit: u64 },
    #[error("exceeded its CPU time limit ({seconds} s)")]
    CpuLimit { seconds: u64 },
    #[error("wrote a file larger than its limit ({})", mebibytes(*limit))]
    FileSizeLimit { limit: u64 },
    #[error("was stopped after {} s", after.as_secs_f64())]
    TimedOut { after: Duration },
    #[error("produced more than {limit} bytes of output")]
    OutputLimit { limit: u64 },
    /// The renderer's own error, worded by the worker.
    #[error("failed: {0}")]
    Render(String),
    #[error("failed: the render worker ended abnormally ({status}); stderr: {stderr}")]
    Crashed { status: String, stderr: String },
    #[error("failed: the render worker's reply is unreadable: {0}")]
    BadReply(#[source] serde_json::Error),
    #[error("failed: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn mebibytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// A started worker whose group is killed and whose process is reaped
/// however the render ends, a panic included.
struct Running {
    child: Child,
    group: Pid,
    reaped: bool,
}

impl Running {
    /// SIGKILL to everything the render started, then to everything left
    /// in the worker's group. Sent while the worker is not yet reaped: its
    /// pid, and so the group id, is still its own. A worker that is still
    /// running is stopped first, so it starts nothing more, and what left
    /// its group (`setsid`) is found among its descendants: the worker is
    /// their subreaper ([`super::reaper`]). A worker that has exited killed
    /// its descendants itself.
    fn kill_group(&mut self) {
        reaper::stop(self.group);
        let escaped = reaper::kill_descendants(self.group);
        if escaped > 0 {
            debug!(
                pgid = self.group.as_raw_nonzero().get(),
                processes = escaped,
                "killed what the render started"
            );
        }
        match rustix::process::kill_process_group(self.group, Signal::KILL) {
            // Nothing left in the group.
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                warn!(pgid = self.group.as_raw_nonzero().get(), error = %e, "cannot kill the render worker's process group; killing the worker alone");
                let _ = self.child.kill();
            }
        }
    }

    fn reap(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait();
        self.reaped = true;
        status
    }

    /// Whether the worker has exited, without reaping it.
    fn exited(&self) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        // An error (none seen in practice) counts as exited: reaping then
        // tells what happened.
        !matches!(
            rustix::process::waitid(WaitId::Pid(self.group), options),
            Ok(None)
        )
    }

    /// Kill the group and reap the worker.
    fn stop(&mut self) {
        self.kill_group();
        let _ = self.reap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            self.stop();
        }
    }
}

/// What a worker rendered.
#[derive(Debug)]
pub struct Output {
    pub objects: Vec<Value>,
    /// For Helm: which cluster inputs the chart reached.
    pub helm_uses: Option<super::HelmUses>,
}

/// Render `request` in a worker started from `worker`, within `limits`.
pub fn render_in_worker(
    worker: &Worker,
    request: Request,
    limits: &RenderLimits,
) -> Result<Output, SandboxError> {
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let max_output = output_limit(request.max_rendered_bytes);
    let mut command = Command::new(&worker.program);
    command
        .args(&worker.args)
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--cpu-seconds")
        .arg(limits.cpu_seconds().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Only what a renderer needs of the hub's environment: no token or
        // password reaches the worker or the programs it runs.
        .env_clear()
        .process_group(0);
    for key in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let child = command.spawn().map_err(|source| SandboxError::Io {
        context: "starting the render worker",
        source,
    })?;
    let group = Pid::from_child(&child);
    let mut running = Running {
        child,
        group,
        reaped: false,
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (
        running.child.stdin.take(),
        running.child.stdout.take(),
        running.child.stderr.take(),
    ) else {
        return Err(SandboxError::Io {
            context: "starting the render worker",
            source: std::io::Error::other("no pipes"),
        });
    };

    // The request is written while the reply is read: neither side ever
    // waits on a full pipe. A worker that dies early breaks the pipe,
    // which ends this thread.
    std::thread::Builder::new()
        .name("render-request".into())
        .spawn(move || {
            let _ = wire::write_request(&mut stdin, &request);
        })
        .map_err(|source| SandboxError::Io {
            context: "starting the request writer",
            source,
        })?;
    let (out_tx, out_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>();
    std::thread::Builder::new()
        .name("render-reply".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let read = stdout
                .take(max_output.saturating_add(1))
                .read_to_end(&mut buf);
            let _ = out_tx.send(read.map(|_| buf));
        })
        .map_err(|source| SandboxError::Io {
            context: "starting the reply reader",
            source,
        })?;
    let (err_tx, err_rx) = mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("render-stderr".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut stderr = stderr;
            let _ = (&mut stderr).take(STDERR_KEEP).read_to_end(&mut kept);
            // Drain the rest so the worker never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            let _ = err_tx.send(String::from_utf8_lossy(&kept).into_owned());
        })
        .map_err(|source| SandboxError::Io {
            context: "starting the stderr reader",
            source,
        })?;

    let timed_out = |running: &mut Running| {
        running.stop();
        SandboxError::TimedOut {
            after: limits.timeout,
        }
    };
    // The reply is complete when the worker closes its stdout, which it
    // does by exiting (or dying).
    let reply = match out_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(buf)) if buf.len() as u64 > max_output => {
            running.stop();
            return Err(SandboxError::OutputLimit { limit: max_output });
        }
        Ok(Ok(buf)) => buf,
        Ok(Err(source)) => {
            running.stop();
            return Err(SandboxError::Io {
                context: "reading the render worker's reply",
                source,
            });
        }
        Err(_) => return Err(timed_out(&mut running)),
    };
    let mut pause = Duration::from_micros(200);
    while !running.exited() {
        if Instant::now() >= deadline {
            return Err(timed_out(&mut running));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    // Whatever the worker started and left behind goes with it.
    running.kill_group();
    let status = running.reap().map_err(|source| SandboxError::Io {
        context: "waiting for the render worker",
        source,
    })?;
    if !status.success() {
        // The group is gone, so stderr is at its end; a program that left
        // the group may hold it open, hence the bound.
        let stderr = err_rx
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default();
        return Err(classify(status, stderr.trim(), limits));
    }
    match serde_json::from_slice::<Reply>(&reply) {
        Ok(Reply::Objects(objects)) => Ok(Output {
            objects,
            helm_uses: None,
        }),
        Ok(Reply::Helm { objects, uses }) => Ok(Output {
            objects,
            helm_uses: Some(uses),
        }),
        Ok(Reply::Error(message)) => Err(SandboxError::Render(message)),
        Err(e) => Err(SandboxError::BadReply(e)),
    }
}

/// Why a worker that did not exit cleanly failed, from how it ended and
/// what it printed.
fn classify(status: ExitStatus, stderr: &str, limits: &RenderLimits) -> SandboxError {
    let signal = status.signal();
    // Rust's allocator reports a refused allocation ("memory allocation
    // of N bytes failed") and aborts; so does a thread whose stack cannot
    // be mapped.
    let out_of_memory = [
        "memory allocation of",
        "out of memory",
        "Cannot allocate memory",
    ]
    .iter()
    .any(|p| stderr.contains(p));
    if signal == Some(Signal::XCPU.as_raw()) {
        SandboxError::CpuLimit {
            seconds: limits.cpu_seconds(),
        }
    } else if signal == Some(Signal::XFSZ.as_raw()) {
        SandboxError::FileSizeLimit {
            limit: super::worker::FILE_SIZE_LIMIT,
        }
    } else if out_of_memory {
        SandboxError::MemoryLimit {
            limit: limits.memory_bytes,
        }
    } else {
        SandboxError::Crashed {
            status: status.to_string(),
            stderr: if stderr.is_empty() {
                "(empty)".to_owned()
            } else {
                stderr.to_owned()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of_signal(signal: i32) -> ExitStatus {
        ExitStatus::from_raw(signal)
    }

    #[test]
    fn cpu_seconds_round_the_timeout_up() {
        let at = |ms| RenderLimits {
            timeout: Duration::from_millis(ms),
            ..RenderLimits::default()
        };
        assert_eq!(at(30_000).cpu_seconds(), 31);
        assert_eq!(at(30_001).cpu_seconds(), 32);
        assert_eq!(at(200).cpu_seconds(), 2);
    }

    #[test]
    fn how_a_worker_ended_says_which_limit_it_hit() {
        let limits = RenderLimits {
            timeout: Duration::from_secs(30),
            memory_bytes: 512 * 1024 * 1024,
            concurrency: 1,
        };
        let abort = status_of_signal(Signal::ABORT.as_raw());
        let e = classify(
            abort,
            "memory allocation of 80000000000 bytes failed",
            &limits,
        );
        assert_eq!(e.to_string(), "exceeded its memory limit (512 MiB)");
        let e = classify(status_of_signal(Signal::XCPU.as_raw()), "", &limits);
        assert_eq!(e.to_string(), "exceeded its CPU time limit (31 s)");
        let e = classify(status_of_signal(Signal::XFSZ.as_raw()), "", &limits);
        assert!(matches!(e, SandboxError::FileSizeLimit { .. }), "{e}");
        let e = classify(status_of_signal(Signal::SEGV.as_raw()), "", &limits);
        assert!(
            e.to_string().contains("ended abnormally") && e.to_string().contains("(empty)"),
            "{e}"
        );
        assert_eq!(
            SandboxError::TimedOut {
                after: Duration::from_secs(30)
            }
            .to_string(),
            "was stopped after 30 s"
        );
    }

    #[test]
    fn the_output_bound_leaves_room_for_the_envelope_only() {
        assert_eq!(output_limit(0), REPLY_SLACK);
        let limit = 32 * 1024 * 1024;
        assert!(output_limit(limit) > limit && output_limit(limit) < limit + limit / 8);
        assert_eq!(output_limit(u64::MAX), u64::MAX);
    }
}
