//! Killing every process a render started, those that left the worker's process group (`setsid`) and its parent (a double fork) included.
//!
//! The render worker makes itself the child subreaper of what it starts
//! (`PR_SET_CHILD_SUBREAPER`): a process whose parent exits is handed to the
//! worker instead of init, so while the worker lives, everything a render
//! started is among its descendants in `/proc`, whatever session or group
//! it moved to. The worker kills them all before it exits, and when the
//! hub that started it is gone; the hub, at a timeout, stops the worker and
//! kills them before it kills the worker.

use rustix::process::{Pid, Signal};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tracing::warn;

/// Rounds of "find, kill" before giving up on a tree that keeps growing.
const MAX_ROUNDS: usize = 200;

/// Why the worker could not become the subreaper of what it starts.
#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    #[error("making the render worker the subreaper of the programs it starts")]
    Subreaper(#[source] std::io::Error),
}

/// Make this process the child subreaper of everything it starts.
pub fn become_subreaper() -> Result<(), ReaperError> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| ReaperError::Subreaper(e.into()))
}

/// The descendants of `root` in `table` (pid → parent pid), nearest first;
/// `root` itself is not one.
pub(crate) fn descendants_of(root: i32, table: &BTreeMap<i32, i32>) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (&pid, &parent) in table {
        children.entry(parent).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut seen = BTreeSet::from([root]);
    let mut next = vec![root];
    while let Some(parent) = next.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// The parent pid of a process from its `/proc/PID/stat` line, unless it
/// has already exited (a zombie, which can start nothing and holds nothing).
pub(crate) fn live_parent(stat: &str) -> Option<i32> {
    // "PID (COMM) STATE PPID …"; COMM may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}

/// Every live process on the machine, pid → parent pid.
fn process_table() -> BTreeMap<i32, i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, live_parent(&stat)?))
        })
        .collect()
}

/// SIGKILL every live descendant of `root` (not `root` itself), round after
/// round until none is left: one that forks while it is being killed leaves
/// its new child to `root`, the subreaper, where the next round finds it.
/// Returns how many distinct processes were signalled.
pub fn kill_descendants(root: Pid) -> usize {
    let mut signalled = BTreeSet::new();
    for round in 0..MAX_ROUNDS {
        let found = descendants_of(root.as_raw_nonzero().get(), &process_table());
        if found.is_empty() {
            return signalled.len();
        }
        for pid in found {
            if let Some(process) = Pid::from_raw(pid)
                && rustix::process::kill_process(process, Signal::KILL).is_ok()
            {
                signalled.insert(pid);
            }
        }
        if round > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    warn!(
        root = root.as_raw_nonzero().get(),
        signalled = signalled.len(),
        "processes a render started kept appearing; some may be left"
    );
    signalled.len()
}

/// Watch, on a thread of its own, whether this process's parent (the hub)
/// is still the one it started with; when the hub is gone (killed, crashed),
/// kill every descendant and exit, so no render outlives its hub. Checked
/// every `poll`; no signal handler is needed, which `unsafe_code` forbids.
pub fn exit_when_orphaned(poll: Duration) -> std::io::Result<()> {
    let parent = rustix::process::getppid();
    std::thread::Builder::new()
        .name("orphan-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(poll);
                if rustix::process::getppid() != parent {
                    kill_descendants(rustix::process::getpid());
                    eprintln!("error: the hub that started this render worker is gone");
                    std::process::exit(1);
                }
            }
        })
        .map(drop)
}

/// SIGSTOP `process`, so that it starts nothing more while its descendants
/// are killed.
pub fn stop(process: Pid) {
    let _ = rustix::process::kill_process(process, Signal::STOP);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_are_found_through_every_generation_and_nothing_else() {
        // 10 is the worker; 11 its program; 12 a child of 11; 13 a process
        // that left 11's session and was handed to 10; 20 and 21 strangers.
        let table = BTreeMap::from([(10, 1), (11, 10), (12, 11), (13, 10), (20, 1), (21, 20)]);
        let mut found = descendants_of(10, &table);
        found.sort_unstable();
        assert_eq!(found, [11, 12, 13]);
        assert!(descendants_of(12, &table).is_empty());
        // A cycle (a pid reused while the table was read) ends.
        let cycle = BTreeMap::from([(30, 31), (31, 30)]);
        assert_eq!(descendants_of(30, &cycle), [31]);
    }

    #[test]
    fn stat_lines_give_the_parent_of_live_processes_only() {
        assert_eq!(live_parent("42 (sleep) S 7 42 42 0 -1"), Some(7));
        assert_eq!(live_parent("42 (a) b) (c) R 9 42 42 0 -1"), Some(9));
        assert_eq!(live_parent("42 (sh) Z 7 42 42 0 -1"), None);
        assert_eq!(live_parent("garbage"), None);
    }

    #[test]
    fn this_process_reads_as_a_live_child_of_its_parent() {
        let table = process_table();
        let me = std::process::id() as i32;
        assert_eq!(
            table.get(&me).copied(),
            Some(rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get()))
        );
    }
}
