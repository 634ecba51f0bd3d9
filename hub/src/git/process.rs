//! The `file://` and `ssh://` transports, run by the hub itself so that a
//! `git-upload-pack` or `ssh` that stops sending (or reading) is stopped:
//! gix's own process transports wait on their pipes forever, and its
//! interrupt flag is only checked between reads, never during one.

use std::{
    ffi::OsString,
    io::{Read, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gix::protocol::transport::{
    Protocol,
    client::{blocking_io::Transport, git},
};
use rustix::process::{Pid, Signal};

/// How often the watchdog looks at a pending read or write.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Most bytes of the process's stderr kept for the error message.
const STDERR_KEPT: usize = 2048;

/// Variables that would point `git-upload-pack` at another repository or
/// configuration than the URL's (gix removes the same ones).
const ENV_REMOVED: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

/// Why the transport process could not be started or was stopped.
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("{what} in the URL starts with '-': refused (it would be read as an option)")]
    Ambiguous { what: &'static str },
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "timed out: {program} sent and accepted nothing for {}s (--git-stall-timeout); it was killed",
        stall.as_secs()
    )]
    Stalled { program: String, stall: Duration },
    #[error("{program} ended: {stderr}")]
    Ended { program: String, stderr: String },
}

/// The program and arguments that serve `git-upload-pack` for `url` (a
/// sanitized `file://` URL, or `ssh://`), and the environment they need.
pub(super) fn command_for(url: &gix::Url) -> Result<(OsString, Vec<OsString>), Error> {
    let path = url.path.to_string();
    if path.trim_start().starts_with('-') {
        return Err(Error::Ambiguous { what: "the path" });
    }
    if url.scheme == gix::url::Scheme::File {
        return Ok(("git-upload-pack".into(), vec![path.into()]));
    }
    let host = url.host().ok_or(Error::NoHost)?;
    if host.starts_with('-') {
        return Err(Error::Ambiguous { what: "the host" });
    }
    let target = match url.user() {
        Some(user) if user.starts_with('-') => {
            return Err(Error::Ambiguous { what: "the user" });
        }
        Some(user) if !user.is_empty() => format!("{user}@{host}"),
        _ => host.to_owned(),
    };
    let mut args: Vec<OsString> = vec!["-o".into(), "SendEnv=GIT_PROTOCOL".into()];
    if let Some(port) = url.port {
        args.push(format!("-p{port}").into());
    }
    // `~user/…` is relative to a home directory, which `git-upload-pack`
    // expands itself (as gix and git pass it: quoted, without the `/`).
    let path = match path.strip_prefix("/~") {
        Some(rest) => format!("~{rest}"),
        None => path,
    };
    args.extend([target.into(), "git-upload-pack".into(), quote(&path).into()]);
    Ok(("ssh".into(), args))
}

/// `s` as one argument of a POSIX shell (the remote runs the command
/// through one), quoted as git quotes it.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '!' => out.push_str("'\\!'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// What the reader, the writer and the watchdog share.
struct Shared {
    program: String,
    stall: Duration,
    child: Mutex<Child>,
    group: Pid,
    /// When the read or write under way started.
    pending_since: Mutex<Option<Instant>>,
    stalled: AtomicBool,
    finished: AtomicBool,
    stderr: Mutex<Vec<u8>>,
}

impl Shared {
    /// Kill the process and everything it started (a shell, a proxy
    /// command): they share its process group, and any of them left alive
    /// would keep the pipes open.
    fn kill(&self) {
        let _ = rustix::process::kill_process_group(self.group, Signal::KILL);
    }

    fn begin(&self) {
        *self.pending_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn end<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        *self.pending_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if self.stalled.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                Error::Stalled {
                    program: self.program.clone(),
                    stall: self.stall,
                },
            ));
        }
        result
    }

    /// Whether the process exited unsuccessfully, waiting up to a second
    /// for it to exit once its output ended.
    fn failed(&self) -> bool {
        for _ in 0..20 {
            match self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .try_wait()
            {
                Ok(Some(status)) => return !status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return false,
            }
        }
        false
    }

    /// Whether a pending read or write has waited longer than `stall`
    /// (pure: the watchdog's decision).
    fn overdue(pending_since: Option<Instant>, now: Instant, stall: Duration) -> bool {
        pending_since.is_some_and(|since| now.saturating_duration_since(since) > stall)
    }
}

/// The process's stdout; stops it when dropped.
pub(super) struct Reader {
    stdout: ChildStdout,
    shared: Arc<Shared>,
}

pub(super) struct Writer {
    stdin: ChildStdin,
    shared: Arc<Shared>,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.shared.begin();
        let result = self.stdout.read(buf);
        let result = self.shared.end(result)?;
        if result == 0 && !buf.is_empty() && self.shared.failed() {
            // Say why the process failed, if it said (`ssh: Could not
            // resolve hostname`, `fatal: '…' does not appear to be a git
            // repository`); gix would only see the end of the stream.
            let stderr = self.shared.stderr.lock().unwrap_or_else(|e| e.into_inner());
            let text = String::from_utf8_lossy(&stderr).trim().to_owned();
            if !text.is_empty() {
                return Err(std::io::Error::other(Error::Ended {
                    program: self.shared.program.clone(),
                    stderr: text,
                }));
            }
        }
        Ok(result)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.begin();
        let result = self.stdin.write(buf);
        self.shared.end(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.shared.begin();
        let result = self.stdin.flush();
        self.shared.end(result)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.shared.finished.store(true, Ordering::SeqCst);
        self.shared.kill();
        let _ = self
            .shared
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wait();
    }
}

/// Start `program args` for `path` in its own process group, with a
/// watchdog that kills the group once a read or write has waited longer
/// than `stall`, and a gix connection speaking to it.
pub(super) fn connect(
    program: OsString,
    args: Vec<OsString>,
    path: gix::bstr::BString,
    stall: Duration,
) -> Result<Box<dyn Transport + Send>, Error> {
    use std::os::unix::process::CommandExt;
    let shown = program.to_string_lossy().into_owned();
    let mut command = Command::new(&program);
    command
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_PROTOCOL", "version=2")
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .process_group(0);
    for name in ENV_REMOVED {
        command.env_remove(name);
    }
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        program: shown.clone(),
        source,
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Spawn {
            program: shown,
            source: std::io::Error::other("no pipes to the process"),
        });
    };
    let shared = Arc::new(Shared {
        program: shown,
        stall,
        group: Pid::from_child(&child),
        child: Mutex::new(child),
        pending_since: Mutex::new(None),
        stalled: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        stderr: Mutex::new(Vec::new()),
    });
    spawn_stderr(stderr, shared.clone());
    spawn_watchdog(shared.clone());
    Ok(Box::new(git::blocking_io::Connection::new(
        Reader {
            stdout,
            shared: shared.clone(),
        },
        Writer { stdin, shared },
        Protocol::V2,
        path,
        None::<(&str, Option<u16>)>,
        git::ConnectMode::Process,
        false,
    )))
}

/// Keep the first bytes of stderr for the error message; drain the rest so
/// the process never blocks writing to it.
fn spawn_stderr(mut stderr: std::process::ChildStderr, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            let mut kept = shared.stderr.lock().unwrap_or_else(|e| e.into_inner());
            let room = STDERR_KEPT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
    });
}

fn spawn_watchdog(shared: Arc<Shared>) {
    std::thread::spawn(move || {
        while !shared.finished.load(Ordering::SeqCst) {
            std::thread::sleep(WATCH_INTERVAL);
            let since = *shared
                .pending_since
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if Shared::overdue(since, Instant::now(), shared.stall) {
                shared.stalled.store(true, Ordering::SeqCst);
                tracing::warn!(program = %shared.program, stall_s = shared.stall.as_secs(), "git transport process stalled; killing it");
                shared.kill();
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> gix::Url {
        gix::url::parse(gix::bstr::BStr::new(s)).unwrap()
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn ssh_and_file_urls_become_the_commands_git_runs() {
        let (program, args) =
            command_for(&url("ssh://git@example.com:2222/org/it's!.git")).unwrap();
        assert_eq!(program, "ssh");
        assert_eq!(
            strings(&args),
            [
                "-o",
                "SendEnv=GIT_PROTOCOL",
                "-p2222",
                "git@example.com",
                "git-upload-pack",
                "'/org/it'\\''s'\\!'.git'"
            ]
        );
        let (_, args) = command_for(&url("ssh://example.com/~alice/repo.git")).unwrap();
        assert_eq!(
            strings(&args)[2..],
            ["example.com", "git-upload-pack", "'~alice/repo.git'"]
        );
        let (program, args) = command_for(&url("file:///srv/git/fleet.git")).unwrap();
        assert_eq!(
            (program, strings(&args)),
            (
                "git-upload-pack".into(),
                vec!["/srv/git/fleet.git".to_owned()]
            )
        );
        for bad in ["ssh://-oProxyCommand=x/repo", "ssh://-u@host/repo"] {
            assert!(command_for(&url(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_pending_operation_older_than_the_stall_is_overdue() {
        let now = Instant::now();
        let stall = Duration::from_secs(5);
        assert!(!Shared::overdue(None, now + Duration::from_secs(60), stall));
        assert!(!Shared::overdue(Some(now), now + stall, stall));
        assert!(Shared::overdue(
            Some(now),
            now + stall + Duration::from_millis(1),
            stall
        ));
    }

    #[test]
    fn a_silent_process_is_killed_after_the_stall_and_says_so() {
        let transport = connect(
            "sh".into(),
            vec!["-c".into(), "sleep 30 & wait".into()],
            "/x".into(),
            Duration::from_millis(300),
        );
        let mut transport = transport.unwrap();
        let started = Instant::now();
        let err = match transport.handshake(gix::protocol::transport::Service::UploadPack, &[]) {
            Ok(_) => panic!("a silent process completed a handshake"),
            Err(e) => e,
        };
        let mut text = String::new();
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = current {
            text.push_str(&format!("{e}: "));
            current = e.source();
        }
        assert!(text.contains("timed out") && text.contains("sh"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
