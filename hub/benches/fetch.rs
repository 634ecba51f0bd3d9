//! Timings of the hub's Git layer against the git command line, side by side
//! in one run: a first fetch of a 10,000-file, 1,000-commit repository served
//! by `git daemon` on loopback (`GitCache::fetch` into an empty cache vs
//! `git clone --bare`), an incremental fetch of 10 new commits (`fetch` again
//! vs `git fetch`), and `GitCache::read_dir` of a 100-file directory.
//!
//! Everything runs in a temporary directory with a hermetic git environment
//! (`GIT_CONFIG_NOSYSTEM=1`, `HOME` inside it); the daemon is killed and the
//! directory removed at the end, also on panic.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_hub::git::{GitCache, RepoSpec, TreeLimits};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;
const COMMITS: usize = 1_000;
const FILES_PER_COMMIT: usize = DIRS * FILES_PER_DIR / COMMITS;
const NEW_COMMITS: usize = 10;
const RUNS: usize = 5;
const READ_DIR_RUNS: usize = 20;
const EPOCH: u64 = 1_700_000_000;

/// A git command with the hermetic environment.
fn git(home: &Path) -> Command {
    let mut c = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "XDG_CONFIG_HOME",
    ] {
        c.env_remove(var);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", home)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    c
}

/// Run a git command to completion; panics with its stderr on failure.
fn run(mut c: Command) -> String {
    let out = c.output().expect("running git");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A small YAML file; `version` changes its content.
fn yaml(dir: usize, file: usize, version: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{dir:03}-{file:03}\n  labels:\n    app: app-{dir:03}\ndata:\n  version: \"{version}\"\n  greeting: hello from {dir}/{file}\n  settings: |\n    retries = 3\n    timeout = 30s\n"
    )
}

fn path_of(dir: usize, file: usize) -> String {
    format!("d{dir:03}/f{file:03}.yaml")
}

fn push_commit(
    stream: &mut Vec<u8>,
    time: u64,
    message: &str,
    parent: Option<&str>,
    files: &[(String, String)],
) {
    writeln!(stream, "commit refs/heads/main").unwrap();
    writeln!(stream, "committer Bench <bench@example.com> {time} +0000").unwrap();
    writeln!(stream, "data {}\n{message}", message.len()).unwrap();
    if let Some(parent) = parent {
        writeln!(stream, "from {parent}").unwrap();
    }
    for (path, data) in files {
        writeln!(
            stream,
            "M 100644 inline {path}\ndata {}\n{data}",
            data.len()
        )
        .unwrap();
    }
    stream.push(b'\n');
}

/// Feed a fast-import stream to the bare repository `repo`.
fn fast_import(home: &Path, repo: &Path, stream: &[u8]) {
    let mut c = git(home);
    c.arg("-C")
        .arg(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("git fast-import");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream)
        .expect("writing the fast-import stream");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "fast-import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 1,000 commits of 10 new files each: files are spread so that each commit
/// touches 10 different directories, and HEAD holds 100 × 100 files.
fn base_history() -> Vec<u8> {
    let mut stream = Vec::new();
    for c in 0..COMMITS {
        let files: Vec<(String, String)> = (0..FILES_PER_COMMIT)
            .map(|j| {
                let n = c * FILES_PER_COMMIT + j;
                let (dir, file) = (n % DIRS, n / DIRS);
                (path_of(dir, file), yaml(dir, file, 0))
            })
            .collect();
        push_commit(
            &mut stream,
            EPOCH + c as u64 * 60,
            &format!("commit {c}"),
            None,
            &files,
        );
    }
    stream
}

/// 10 commits on top of `tip`, each changing 10 existing files; `run`
/// makes them unique.
fn new_commits(run: usize, tip: &str) -> Vec<u8> {
    let mut stream = Vec::new();
    for c in 0..NEW_COMMITS {
        let files: Vec<(String, String)> = (0..10)
            .map(|j| {
                let dir = (c * 10 + j) % DIRS;
                let file = (run * 7 + c) % FILES_PER_DIR;
                (path_of(dir, file), yaml(dir, file, run * 100 + c + 1))
            })
            .collect();
        let time = EPOCH + (COMMITS + run * 100 + c) as u64 * 60;
        let parent = (c == 0).then_some(tip);
        push_commit(
            &mut stream,
            time,
            &format!("run {run} update {c}"),
            parent,
            &files,
        );
    }
    stream
}

/// `git daemon` on loopback; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(home: &Path, base: &Path) -> Daemon {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let exec_path = run({
            let mut c = git(home);
            c.arg("--exec-path");
            c
        });
        let mut c = Command::new(Path::new(&exec_path).join("git-daemon"));
        c.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", home)
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c.spawn().expect("git daemon");
        let mut daemon = Daemon { child, port };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("git daemon exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "git daemon did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{min:.0}–{max:.0}")
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[derive(Default)]
struct Samples {
    ours_first: Vec<f64>,
    git_first: Vec<f64>,
    ours_incr: Vec<f64>,
    git_incr: Vec<f64>,
    ls_remote: Vec<f64>,
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = tmp.path().join("home");
    let base = tmp.path().join("served");
    let served = base.join("repo.git");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&served).unwrap();

    let t = Instant::now();
    run({
        let mut c = git(&home);
        c.arg("-C")
            .arg(&served)
            .args(["init", "-q", "--bare", "-b", "main"]);
        c
    });
    fast_import(&home, &served, &base_history());
    // A packed, deltified repository, as a real server has after gc.
    run({
        let mut c = git(&home);
        c.arg("-C")
            .arg(&served)
            .args(["repack", "-a", "-d", "-f", "-q"]);
        c
    });
    let base_tip = run({
        let mut c = git(&home);
        c.arg("-C").arg(&served).args(["rev-parse", "main"]);
        c
    });
    eprintln!(
        "built {COMMITS} commits, {} files at HEAD, {:.1} MiB packed, in {:.0} ms",
        DIRS * FILES_PER_DIR,
        dir_size(&served.join("objects")) as f64 / (1024.0 * 1024.0),
        ms(t.elapsed())
    );

    let daemon = Daemon::start(&home, &base);
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let spec = RepoSpec::new(url.clone());

    let mut s = Samples::default();
    let mut read_dir_ms = Vec::new();
    let mut ours_bytes = 0;
    for r in 0..RUNS {
        // Every run starts from the same 1,000 commits.
        run({
            let mut c = git(&home);
            c.arg("-C")
                .arg(&served)
                .args(["update-ref", "refs/heads/main", &base_tip]);
            c
        });
        let work = tmp.path().join(format!("run-{r}"));
        let cache_root = work.join("cache");
        let clone = work.join("clone.git");
        std::fs::create_dir_all(&work).unwrap();
        let cache = GitCache::new(cache_root.clone());

        let ours_first = || {
            let t = Instant::now();
            let result = cache.fetch("repo", &spec, &|_p| {}).expect("first fetch");
            let d = ms(t.elapsed());
            assert_eq!(result.refs["refs/heads/main"], base_tip);
            (d, result.bytes_received)
        };
        let git_first = || {
            let t = Instant::now();
            run({
                let mut c = git(&home);
                c.args(["clone", "--bare", "--quiet", &url]).arg(&clone);
                c
            });
            ms(t.elapsed())
        };
        // Alternate which goes first, so neither always gets a cold cache.
        if r % 2 == 0 {
            let (d, bytes) = ours_first();
            s.ours_first.push(d);
            ours_bytes = bytes;
            s.git_first.push(git_first());
        } else {
            s.git_first.push(git_first());
            let (d, bytes) = ours_first();
            s.ours_first.push(d);
            ours_bytes = bytes;
        }

        // read_dir of one 100-file directory at HEAD.
        for _ in 0..READ_DIR_RUNS / RUNS {
            let t = Instant::now();
            let files = cache
                .read_dir("repo", "main", "d042", &TreeLimits::default())
                .expect("read_dir");
            read_dir_ms.push(ms(t.elapsed()));
            assert_eq!(files.len(), FILES_PER_DIR);
        }

        // 10 new commits on the server.
        fast_import(&home, &served, &new_commits(r, &base_tip));
        let new_tip = run({
            let mut c = git(&home);
            c.arg("-C").arg(&served).args(["rev-parse", "main"]);
            c
        });
        let ours_incr = || {
            let t = Instant::now();
            let result = cache
                .fetch("repo", &spec, &|_p| {})
                .expect("incremental fetch");
            let d = ms(t.elapsed());
            assert_eq!(result.refs["refs/heads/main"], new_tip);
            assert_eq!(cache.resolve("repo", "main").unwrap().id, new_tip);
            d
        };
        let git_incr = || {
            let t = Instant::now();
            run({
                let mut c = git(&home);
                c.arg("-C").arg(&clone).args([
                    "fetch",
                    "--quiet",
                    &url,
                    "+refs/heads/*:refs/heads/*",
                ]);
                c
            });
            let d = ms(t.elapsed());
            let tip = run({
                let mut c = git(&home);
                c.arg("-C").arg(&clone).args(["rev-parse", "main"]);
                c
            });
            assert_eq!(tip, new_tip);
            d
        };
        // The floor of any fetch here: one git daemon connection listing refs.
        let t = Instant::now();
        run({
            let mut c = git(&home);
            c.args(["ls-remote", "--heads", &url]);
            c
        });
        s.ls_remote.push(ms(t.elapsed()));
        if r % 2 == 0 {
            s.ours_incr.push(ours_incr());
            s.git_incr.push(git_incr());
        } else {
            s.git_incr.push(git_incr());
            s.ours_incr.push(ours_incr());
        }
        eprintln!(
            "run {}: first fetch ours {:.0} ms, git clone {:.0} ms; incremental ours {:.0} ms, git fetch {:.0} ms",
            r + 1,
            s.ours_first[r],
            s.git_first[r],
            s.ours_incr[r],
            s.git_incr[r]
        );
        std::fs::remove_dir_all(&work).expect("cleaning a run");
    }
    drop(daemon);

    println!(
        "repository: {COMMITS} commits, {} files at HEAD in {DIRS} directories; pack received by GitCache: {:.1} MiB",
        DIRS * FILES_PER_DIR,
        ours_bytes as f64 / (1024.0 * 1024.0)
    );
    println!("median of {RUNS} runs (min–max), ms:");
    for (what, ours, theirs, git_name) in [
        (
            "first fetch",
            &s.ours_first,
            &s.git_first,
            "git clone --bare",
        ),
        (
            "incremental (10 commits)",
            &s.ours_incr,
            &s.git_incr,
            "git fetch",
        ),
    ] {
        let (o, g) = (median(ours), median(theirs));
        println!(
            "  {what:<25} GitCache::fetch {o:>7.1} ({})   {git_name:<16} {g:>7.1} ({})   ours/git {:.2}",
            spread(ours),
            spread(theirs),
            o / g
        );
    }
    println!(
        "  git ls-remote (floor)     {:.1} ({})",
        median(&s.ls_remote),
        spread(&s.ls_remote)
    );
    println!(
        "  read_dir 100 files        {:.2} ms median of {} (min {:.2}, max {:.2})",
        median(&read_dir_ms),
        read_dir_ms.len(),
        read_dir_ms.iter().copied().fold(f64::INFINITY, f64::min),
        read_dir_ms.iter().copied().fold(0.0, f64::max)
    );
}
