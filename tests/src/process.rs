//! Running the real binaries: locating them, capturing their output to
//! files, and killing them when a test ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary (`switchyard`, `switchyard-agent`) built next
/// to the running test executable (`target/<profile>/deps/..`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not built; run the tests with `./test` or `cargo test --workspace`, which build every binary",
        path.display()
    );
    path
}

/// Poll `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process whose stdout and stderr go to files; killed on drop.
pub struct Process {
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    name: String,
}

impl Process {
    /// Start `program` with `args`, logging into `log_dir/<label>.{out,err}`.
    pub fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log_dir: &Path,
        label: &str,
    ) -> Process {
        std::fs::create_dir_all(log_dir).expect("log dir");
        let stdout = log_dir.join(format!("{label}.out"));
        let stderr = log_dir.join(format!("{label}.err"));
        let mut command = Command::new(program);
        command.args(args).env_remove("KUBECONFIG");
        // Whatever SWITCHYARD_* the test runner has set must not leak into
        // the processes under test; each test passes what it means.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SWITCHYARD_") {
                command.env_remove(key);
            }
        }
        command
            .env(
                "SWITCHYARD_LOG",
                "info,switchyard_hub=debug,switchyard_agent=debug",
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        for (k, v) in envs {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Process {
            child,
            stdout,
            stderr,
            name: label.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Wait (bounded) until stderr contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr_text().contains(needle))
    }

    /// Wait (bounded) until stdout contains `needle`.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stdout_text().contains(needle))
    }

    /// The exit status if the process has ended by `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `timeout` for an orderly exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.wait_exit(timeout);
        if status.is_none() {
            eprintln!("{} ignored SIGTERM; killing it", self.name);
            self.kill9();
        }
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill9();
        }
    }
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Run a command to completion, killing it after `timeout`.
pub fn run(program: &Path, args: &[String], envs: &[(&str, String)], timeout: Duration) -> Output {
    let dir = tempfile::tempdir().expect("temp dir for command output");
    let mut process = Process::spawn(program, args, envs, dir.path(), "command");
    let status = match process.wait_exit(timeout) {
        Some(status) => status,
        None => {
            process.kill9();
            panic!(
                "{} {:?} did not finish within {timeout:?}; stderr:\n{}",
                program.display(),
                args,
                process.stderr_text()
            );
        }
    };
    Output {
        status,
        stdout: process.stdout_text(),
        stderr: process.stderr_text(),
    }
}
