//! Running a renderer program (kustomize, a plugin) inside the render worker, with bounded output.

use super::RenderError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Run `command` (stdin closed) until it exits or its stdout exceeds
/// `max_stdout` bytes, when it is killed. A non-zero exit is an error
/// carrying stderr.
///
/// There is no deadline here: this runs in a render worker, which the hub
/// kills at the timeout together with its whole process group, and so
/// with the program and anything the program started.
pub(super) fn run(
    mut command: Command,
    program: &str,
    max_stdout: u64,
) -> Result<Output, RenderError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| RenderError::Io {
        context: format!("starting {program}"),
        source,
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(RenderError::Io {
            context: format!("starting {program}"),
            source: std::io::Error::other("no pipes"),
        });
    };
    let stderr_reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut stderr = stderr;
        let _ = (&mut stderr)
            .take(STDERR_KEEP as u64)
            .read_to_end(&mut kept);
        // Drain the rest so the program never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    });
    let mut buf = Vec::new();
    let read = stdout
        .take(max_stdout.saturating_add(1))
        .read_to_end(&mut buf);
    if buf.len() as u64 > max_stdout {
        // Its children, if any, die with the worker's process group.
        let _ = child.kill();
        let _ = child.wait();
        return Err(RenderError::OutputLimit {
            program: program.to_owned(),
            limit: max_stdout,
        });
    }
    let status = child.wait().map_err(|source| RenderError::Io {
        context: format!("waiting for {program}"),
        source,
    })?;
    if !status.success() {
        let stderr = stderr_reader.join().unwrap_or_default();
        return Err(RenderError::Failed {
            program: program.to_owned(),
            status: status.to_string(),
            stderr: trim(&stderr),
        });
    }
    let stdout = read.map(|_| buf).map_err(|source| RenderError::Io {
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
