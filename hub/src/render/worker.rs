//! The render worker: `switchyard render-worker`, a child of the hub that limits itself and then renders one app.
//!
//! The limits are set before the request is read, so nothing from Git is
//! ever handled by a process without them; programs the worker starts
//! (kustomize, plugins) inherit them.

use super::wire::{self, Reply};
use super::{RenderOptions, render_with_uses};
use crate::tree::TreeLimits;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use std::io::{Read, Write};

/// Largest file a worker or its programs may write (the app's files are
/// written for kustomize and plugins; their temporary files count too).
pub const FILE_SIZE_LIMIT: u64 = 256 * 1024 * 1024;

/// Files a worker or one of its programs may hold open at once.
const OPEN_FILES_LIMIT: u64 = 1024;

/// Processes and threads a render may run at once beyond those its user
/// already runs. RLIMIT_NPROC counts every task of the user (the hub's own
/// threads, other renders), so the limit is that count when the worker
/// starts plus this; the kernel does not apply it to root.
pub const PROCESS_ALLOWANCE: u64 = 256;

/// The real uid and the thread count of a process, from its
/// `/proc/PID/status`.
pub(crate) fn status_tasks(status: &str) -> Option<(u32, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_ascii_whitespace().next())
    };
    Some((
        field("Uid:")?.parse().ok()?,
        field("Threads:")?.parse().ok()?,
    ))
}

/// Tasks (threads of every process) whose real uid is `uid`.
fn tasks_of_user(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter_map(|status| status_tasks(&status))
        .filter(|(owner, _)| *owner == uid)
        .map(|(_, threads)| threads)
        .sum()
}

/// The rlimits a worker runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Address space (RLIMIT_AS).
    pub memory_bytes: u64,
    /// CPU time (RLIMIT_CPU); SIGXCPU ends the process at this, SIGKILL a
    /// second later.
    pub cpu_seconds: u64,
}

/// Why a worker could not limit itself.
#[derive(Debug, thiserror::Error)]
#[error("setting {resource} to {value}")]
pub struct LimitError {
    resource: &'static str,
    value: u64,
    #[source]
    source: std::io::Error,
}

/// Lower this process's limits to `limits` (never raising one already lower).
pub fn apply_limits(limits: WorkerLimits) -> Result<(), LimitError> {
    let processes =
        tasks_of_user(rustix::process::getuid().as_raw()).saturating_add(PROCESS_ALLOWANCE);
    for (resource, name, soft, hard) in [
        (
            Resource::As,
            "RLIMIT_AS",
            limits.memory_bytes,
            limits.memory_bytes,
        ),
        (
            Resource::Cpu,
            "RLIMIT_CPU",
            limits.cpu_seconds,
            limits.cpu_seconds.saturating_add(1),
        ),
        (
            Resource::Fsize,
            "RLIMIT_FSIZE",
            FILE_SIZE_LIMIT,
            FILE_SIZE_LIMIT,
        ),
        (
            Resource::Nofile,
            "RLIMIT_NOFILE",
            OPEN_FILES_LIMIT,
            OPEN_FILES_LIMIT,
        ),
        // A bomb that aborts must not leave a core file of its size.
        (Resource::Core, "RLIMIT_CORE", 0, 0),
        (Resource::Nproc, "RLIMIT_NPROC", processes, processes),
    ] {
        let current = getrlimit(resource);
        let lower = |wanted: u64, now: Option<u64>| Some(now.map_or(wanted, |n| n.min(wanted)));
        let hard = lower(hard, current.maximum);
        let soft = lower(soft, current.current).min(hard);
        setrlimit(
            resource,
            Rlimit {
                current: soft,
                maximum: hard,
            },
        )
        .map_err(|e| LimitError {
            resource: name,
            value: soft.unwrap_or_default(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Read one request from `input`, render it and write the reply to
/// `output`. Rendering errors are replies; only a broken pipe or a
/// malformed request is an error here.
pub fn serve(input: &mut impl Read, output: &mut impl Write) -> Result<(), wire::WireError> {
    let mut request = wire::read_request(input)?;
    let options = RenderOptions {
        limits: TreeLimits {
            max_rendered_bytes: request.max_rendered_bytes,
            ..TreeLimits::default()
        },
        default_namespace: None,
        helm: request.helm.clone(),
        directory: request.directory.clone(),
        repo: std::mem::take(&mut request.repo),
    };
    let reply = match render_with_uses(&request.kind, &request.files, &options) {
        Ok((objects, None)) => Reply::Objects(objects),
        Ok((objects, Some(uses))) => Reply::Helm { objects, uses },
        Err(e) => Reply::Error(wire::bounded_message(e.to_string())),
    };
    // The request is no longer needed: free it before the reply is built.
    drop(request);
    let mut output = std::io::BufWriter::new(output);
    serde_json::to_writer(&mut output, &reply)?;
    output.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_gives_the_real_uid_and_the_threads() {
        let status = "Name:\tswitchyard\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\nThreads:\t17\n";
        assert_eq!(status_tasks(status), Some((1000, 17)));
        assert_eq!(status_tasks("Name:\tx\n"), None);
        let me = std::fs::read_to_string("/proc/self/status").unwrap();
        let (uid, threads) = status_tasks(&me).unwrap();
        assert_eq!(uid, rustix::process::getuid().as_raw());
        assert!(threads >= 1);
        assert!(tasks_of_user(uid) >= threads);
    }
}
