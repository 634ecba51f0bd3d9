//! Real Git servers on loopback for the hub's Git sources: a work repository
//! built with the git CLI, `git daemon` (git://), and `git http-backend`
//! behind lighttpd over HTTPS with basic auth and a private CA.
//!
//! Servers are killed on drop and every wait is bounded. They need `git` and
//! `lighttpd` (with its openssl module), which `./test` installs (deps.txt); a missing
//! program fails the test with a message saying so.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::lighttpd;
use crate::process::{Process, wait_until};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Commit dates start here and advance a minute per commit, so history order
/// never depends on the clock.
const FIRST_COMMIT_TIME: u64 = 1_700_000_000;

/// Fail with a pointer to `./test` when `program` is missing.
pub(crate) fn require(program: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(program);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "`{program}` is not installed (Debian package {package}); run ./test, which installs \
         what deps.txt lists"
    );
}

/// A program of git's own (`git-daemon`, `git-http-backend`), from
/// `git --exec-path`. Running it directly (not as `git daemon`) means the
/// process we kill is the server itself, not a wrapper that leaves it behind.
fn git_exec(program: &str) -> PathBuf {
    let out = Command::new(require("git", "git"))
        .arg("--exec-path")
        .output()
        .expect("git --exec-path");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let path = dir.join(program);
    assert!(
        path.exists(),
        "{} is missing (Debian package git); run ./test",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

pub(crate) fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}")
            .parse()
            .expect("loopback address"),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A git command with a hermetic environment: no system or global config.
fn git_command(home: &Path) -> Command {
    let mut c = Command::new(require("git", "git"));
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "XDG_CONFIG_HOME",
    ] {
        c.env_remove(var);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("HOME", home)
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "user.name=Switchyard Test",
            "-c",
            "user.email=test@switchyard.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "core.symlinks=true",
        ]);
    c
}

/// Run git with a bounded wait; panic with its stderr on failure.
fn run_git(home: &Path, dir: &Path, args: &[&str], envs: &[(&str, String)]) -> String {
    let mut c = git_command(home);
    c.current_dir(dir).args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start git");
    let finished = wait_until(GIT_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_))));
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
        panic!("git {args:?} did not finish within {GIT_TIMEOUT:?}");
    }
    let out = child.wait_with_output().expect("git output");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A non-bare work repository in a temporary directory, on branch `main`.
pub struct GitRepoBuilder {
    dir: TempDir,
    commits: AtomicU64,
}

impl Default for GitRepoBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepoBuilder {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for a work repository");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        let b = Self {
            dir,
            commits: AtomicU64::new(0),
        };
        b.git(&["init", "-q", "-b", "main", "."]);
        b
    }

    /// The work tree.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Run git in the work tree and return its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        run_git(&self.home(), &self.path(), args, &[])
    }

    /// Write `contents` to `path` (relative), creating parent directories.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&p, contents).expect("write file");
        self
    }

    /// Make `path` executable (git records mode 755).
    pub fn make_executable(&self, path: &str) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path().join(path);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
        self
    }

    /// Delete the file or directory at `path`.
    pub fn remove(&self, path: &str) -> &Self {
        let p = self.path().join(path);
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p).expect("remove directory");
        } else {
            std::fs::remove_file(&p).expect("remove file");
        }
        self
    }

    /// Create a symlink at `path` pointing to `target` (verbatim).
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        let p = self.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(target, &p).expect("create symlink");
        self
    }

    /// Commit everything in the work tree; returns the commit sha. Commit
    /// dates advance one minute per commit from a fixed start.
    pub fn commit(&self, message: &str) -> String {
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        let date = format!("@{} +0000", FIRST_COMMIT_TIME + n * 60);
        self.git(&["add", "-A"]);
        run_git(
            &self.home(),
            &self.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
            &[
                ("GIT_AUTHOR_DATE", date.clone()),
                ("GIT_COMMITTER_DATE", date),
            ],
        );
        self.head()
    }

    /// The sha of HEAD.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// An annotated tag at HEAD.
    pub fn tag(&self, name: &str) -> &Self {
        self.git(&["tag", "-a", "-m", name, name]);
        self
    }

    /// A lightweight tag at HEAD.
    pub fn lightweight_tag(&self, name: &str) -> &Self {
        self.git(&["tag", name]);
        self
    }

    /// A new branch at HEAD (the current branch does not change).
    pub fn branch(&self, name: &str) -> &Self {
        self.git(&["branch", name]);
        self
    }

    /// Switch the work tree to `branch`.
    pub fn checkout(&self, branch: &str) -> &Self {
        self.git(&["checkout", "-q", branch]);
        self
    }

    /// Mirror every branch and tag into the bare repository `base/<name>.git`
    /// (created if needed), which the servers serve as `<name>.git`; returns
    /// its path. Call again after new commits to publish them.
    pub fn publish(&self, base: &Path, name: &str) -> PathBuf {
        let bare = base.join(format!("{name}.git"));
        if !bare.exists() {
            std::fs::create_dir_all(&bare).expect("bare repository dir");
            run_git(&self.home(), &bare, &["init", "-q", "--bare", "."], &[]);
        }
        let target = bare.to_str().expect("utf-8 path").to_owned();
        self.git(&["push", "-q", "--force", "--mirror", &target]);
        bare
    }
}

/// `git daemon` serving every repository under a base directory.
pub struct GitDaemon {
    process: Process,
    port: u16,
    _logs: TempDir,
}

impl GitDaemon {
    /// Serve `base_dir` as `git://127.0.0.1:PORT/<repo>`.
    pub fn start(base_dir: &Path) -> GitDaemon {
        let daemon = git_exec("git-daemon");
        let logs = tempfile::tempdir().expect("daemon log dir");
        let home = logs.path().join("home");
        std::fs::create_dir_all(&home).expect("daemon home");
        let mut last_err = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let args = vec![
                "--export-all".to_owned(),
                "--reuseaddr".to_owned(),
                "--informative-errors".to_owned(),
                "--listen=127.0.0.1".to_owned(),
                format!("--port={port}"),
                format!("--base-path={}", base_dir.display()),
                base_dir.display().to_string(),
            ];
            let envs = [
                ("GIT_CONFIG_NOSYSTEM", "1".to_owned()),
                ("HOME", home.display().to_string()),
            ];
            let mut process = Process::spawn(
                &daemon,
                &args,
                &envs,
                logs.path(),
                &format!("git-daemon-{attempt}"),
            );
            if wait_until(START_TIMEOUT, || accepts(port) || !process.is_running())
                && process.is_running()
            {
                return GitDaemon {
                    process,
                    port,
                    _logs: logs,
                };
            }
            last_err = process.stderr_text();
            process.kill9();
        }
        panic!("git daemon did not start: {last_err}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `git://127.0.0.1:PORT/<repo>`.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }

    /// Stop serving (connections are then refused).
    pub fn stop(&mut self) {
        self.process.kill9();
    }
}

/// `git http-backend` as CGI under lighttpd, over HTTPS with a certificate
/// from a private CA, optionally behind basic auth.
pub struct GitHttpServer {
    process: Process,
    port: u16,
    dir: TempDir,
}

impl GitHttpServer {
    /// Serve `base_dir` as `https://127.0.0.1:PORT/git/<repo>`; with `auth`,
    /// every request needs that user and password.
    pub fn start(base_dir: &Path, auth: Option<(&str, &str)>) -> GitHttpServer {
        let backend = git_exec("git-http-backend");
        let dir = tempfile::tempdir().expect("http server dir");
        let tls = lighttpd::prepare_tls(dir.path());

        let mut auth_conf = String::new();
        if let Some((user, pass)) = auth {
            let users = dir.path().join("users");
            std::fs::write(&users, format!("{user}:{pass}\n")).expect("user file");
            auth_conf = format!(
                r#"
server.modules += ("mod_auth", "mod_authn_file")
auth.backend = "plain"
auth.backend.plain.userfile = "{}"
auth.require = ( "/git/" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
"#,
                users.display()
            );
        }

        let (process, port) = lighttpd::start(dir.path(), |port, attempt| {
            format!(
                r#"
server.modules = ("mod_alias", "mod_setenv", "mod_cgi", "mod_openssl")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error-{attempt}.log"
server.max-request-size = 0
ssl.engine = "enable"
ssl.pemfile = "{tls}/server.pem"
ssl.privkey = "{tls}/server-key.pem"
alias.url = ( "/git/" => "{backend}/" )
$HTTP["url"] =~ "^/git/" {{
cgi.assign = ( "" => "" )
setenv.set-environment = (
    "GIT_PROJECT_ROOT" => "{root}",
    "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_NOSYSTEM" => "1",
    "HOME" => "{dir}",
    "PATH" => "/usr/local/bin:/usr/bin:/bin"
)
}}
{auth_conf}
"#,
                root = base_dir.display(),
                dir = dir.path().display(),
                tls = tls.display(),
                backend = backend.display(),
            )
        });
        GitHttpServer { process, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT/git/<repo>`.
    pub fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/git/{repo}", self.port)
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    /// lighttpd's error log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = self.process.stderr_text();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("error-") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}
