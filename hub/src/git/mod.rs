//! The hub's Git layer: one bare repository per source under
//! `DATA_DIR/repos/<name>.git`, fetched with gix over `file://`, `git://`,
//! `http(s)://` (reqwest, rustls) or `ssh://`, and read without a worktree.
//!
//! Everything here is synchronous and may block on the network or the disk:
//! async callers run it inside `tokio::task::spawn_blocking`.
//!
//! Hermeticity: repositories are opened with gix's isolated permissions (no
//! system, global or user Git configuration, no `GIT_*` environment), and
//! credentials only ever come from [`RepoSpec::credentials`]; no credential
//! helper runs and nothing prompts.
//!
//! `file://` and `ssh://` URLs make the hub run `git-upload-pack` / `ssh`
//! from its `PATH` (see `process`, which stops one that goes silent), so
//! `git` must be installed for local sources and `ssh` for SSH ones.

mod budget;
mod fetch;
mod paths;
mod process;
mod read;

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

pub use crate::tree::{TreeFile, TreeLimits};
pub use paths::{carries_credentials, redact_url};

/// Where a source lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// `https://…`, `http://…`, `git://…`, `ssh://…` or `file://…`.
    pub url: String,
    /// HTTP basic-auth credentials, sent only when the server asks (401).
    pub credentials: Option<Credentials>,
    /// PEM file with extra trusted root certificates for HTTPS, for servers
    /// whose certificate comes from a private certificate authority. They are
    /// trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// The revisions to mirror: branch or tag names (each fetched as the
    /// branch or the tag of that name, whichever the remote has) or full
    /// `refs/heads/…` / `refs/tags/…` names. Nothing else is fetched, and
    /// local branches and tags outside this list are deleted, so a branch
    /// nobody follows never reaches the hub. Commit shas in the list fetch
    /// nothing themselves: a pinned commit must be in the history of a
    /// listed branch or tag.
    pub tracked: Vec<String>,
    /// Bounds on what one fetch may bring.
    pub limits: FetchLimits,
}

impl RepoSpec {
    /// A spec with no credentials, no extra CA, default limits, tracking
    /// nothing yet (see [`RepoSpec::tracking`]).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            credentials: None,
            ca_file: None,
            tracked: Vec::new(),
            limits: FetchLimits::default(),
        }
    }

    /// This spec, mirroring `revisions` (see [`RepoSpec::tracked`]).
    pub fn tracking<S: Into<String>>(mut self, revisions: impl IntoIterator<Item = S>) -> Self {
        self.tracked = revisions.into_iter().map(Into::into).collect();
        self
    }
}

/// What one fetch may bring before it is stopped, checked while the pack
/// arrives and before its objects are decoded: a hostile or mistaken remote
/// (a "git bomb", a repository of videos) cannot fill the hub's disk or
/// memory. A fetch stopped by a limit changes nothing locally: the previous
/// refs and objects stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Largest pack received, in bytes (counted as it arrives).
    pub max_pack_bytes: u64,
    /// Most objects in one pack (announced in its header, checked before
    /// any object is decoded).
    pub max_objects: u64,
    /// Largest single object (blob, tree, commit, or a delta's result), and
    /// largest allocation decoding the pack may make.
    pub max_object_bytes: u64,
    /// Longest the remote (or the `ssh` / `git-upload-pack` process of an
    /// `ssh://` or `file://` URL) may take to send or accept data while a
    /// fetch waits on it; `git://` uses it as its read and write timeout.
    pub stall_timeout: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            // Far above any configuration repository, far below a disk.
            max_pack_bytes: 512 * 1024 * 1024,
            max_objects: 1_000_000,
            // GitHub's own limit for one file.
            max_object_bytes: 100 * 1024 * 1024,
            // A remote silent this long is stuck, not slow.
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Username and password (or token) for HTTP basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a fetch brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// Every tracked branch and tag the remote has, by full ref name
    /// (`refs/heads/main`, `refs/tags/v1`), to the commit it points at (tags
    /// peeled) as 40 hex digits. Local refs that are no longer tracked or
    /// that the remote no longer has are pruned.
    pub refs: BTreeMap<String, String>,
    /// Size of the pack received; 0 when the remote had nothing new.
    pub bytes_received: u64,
}

/// A progress report during a fetch, at most every 100 ms per stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchProgress {
    /// What gix is doing (`connecting`, `receiving pack`, `read pack`,
    /// `indexing`, `updating refs`…).
    pub stage: String,
    pub done: u64,
    pub total: Option<u64>,
}

/// One commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// 40 hex digits.
    pub id: String,
    pub author_name: String,
    pub author_email: String,
    /// Author time, seconds since the Unix epoch.
    pub time: u64,
    /// First line of the message.
    pub summary: String,
}

/// Everything that can go wrong, phrased for the person who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid repository name {0:?}: use letters, digits, '.', '_' and '-', not starting with '.'"
    )]
    InvalidName(String),
    #[error("invalid repository url {url:?}: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "authentication failed for {url} (HTTP 401): check the repository's username and password"
    )]
    AuthenticationFailed { url: String },
    #[error("{url} requires authentication (HTTP 401): set the repository's username and password")]
    AuthenticationRequired { url: String },
    #[error("repository {url} not found (or not accessible with these credentials): {detail}")]
    RepositoryNotFound { url: String, detail: String },
    #[error(
        "the TLS certificate of {url} is not trusted ({detail}); if the server uses a private \
         certificate authority, set the repository's CA file (ca_file) to its PEM certificate"
    )]
    TlsUntrusted { url: String, detail: String },
    #[error("cannot use CA file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("fetch from {url} failed: {detail}")]
    Fetch { url: String, detail: String },
    #[error(
        "fetch from {url} stopped: {what}, over the limit of {limit} set by --git-{flag} \
         (raise it on the hub if this repository is meant to be that large); the previous \
         fetch is kept"
    )]
    TooLarge {
        url: String,
        /// What was too large, with the amount seen (`the pack reached 1048576 bytes`).
        what: String,
        limit: u64,
        /// The `serve` flag (without `--git-`) that raises the limit.
        flag: &'static str,
    },
    #[error("fetch from {url} stopped: {detail}; the previous fetch is kept")]
    Stalled { url: String, detail: String },
    #[error("repository {0} has not been fetched yet")]
    NotFetched(String),
    #[error(
        "unknown revision {revision:?} in repository {name}: not a branch, tag or known commit"
    )]
    UnknownRevision { name: String, revision: String },
    #[error("ambiguous revision {revision:?} in repository {name}: use a longer commit sha")]
    AmbiguousRevision { name: String, revision: String },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("path {path} not found at commit {commit}")]
    PathNotFound { path: String, commit: String },
    #[error("path {path} at commit {commit} is not a directory")]
    NotADirectory { path: String, commit: String },
    #[error("path {path} at commit {commit} is a directory, not a file")]
    NotAFile { path: String, commit: String },
    #[error("symlink {path} points to {target:?}, outside {base:?}: refused")]
    SymlinkEscapes {
        path: String,
        target: String,
        base: String,
    },
    #[error("symlink {path}: {reason}")]
    Symlink { path: String, reason: String },
    #[error("{path} is a git submodule, which is not supported: vendor its files instead")]
    Submodule { path: String },
    #[error("file {path} is {size} bytes, over the limit of {limit} bytes per file")]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error("too many files: {path} would be file number {count}, over the limit of {limit} files")]
    TooManyFiles {
        path: String,
        count: usize,
        limit: usize,
    },
    #[error(
        "files too large together: with {path} they reach {total} bytes, over the limit of {limit} bytes"
    )]
    TotalTooLarge {
        path: String,
        total: u64,
        limit: u64,
    },
    #[error(
        "too many entries: at {path} the tree has over {limit} files and directories \
         (twice the file limit, plus 64)"
    )]
    TooManyEntries { path: String, limit: usize },
    #[error("directories nested too deep: {path} is over {limit} levels")]
    TooDeep { path: String, limit: usize },
    #[error("repository {name}: {detail}")]
    Repository { name: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The local bare repositories, one per source name.
///
/// Operations on one name are serialized within this process (a fetch and a
/// `remove` of the same name never overlap); different names run in parallel.
#[derive(Debug)]
pub struct GitCache {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl GitCache {
    /// A cache under `root` (normally `DATA_DIR/repos`), created on first fetch.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The directory of the bare repository of `name`.
    pub fn repo_dir(&self, name: &str) -> Result<PathBuf> {
        paths::validate_repo_name(name)?;
        Ok(self.root.join(format!("{name}.git")))
    }

    /// Fetch the tracked branches and tags of `spec.url` (see
    /// [`RepoSpec::tracked`]) into the repository of `name`: the first time
    /// into a fresh bare repository (made under a temporary name and renamed
    /// once complete), then incrementally, within `spec.limits`.
    ///
    /// gix writes the pack and its index before it updates refs, so a crash
    /// or a limit mid-fetch leaves the previous refs pointing at complete
    /// objects. Returns every tracked branch and tag with its commit.
    pub fn fetch(
        &self,
        name: &str,
        spec: &RepoSpec,
        progress: &dyn Fn(FetchProgress),
    ) -> Result<FetchResult> {
        let dir = self.repo_dir(name)?;
        let lock = self.lock(name);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        fetch::fetch(&self.root, &dir, name, spec, progress)
    }

    /// Whether `commit` is `tip` or in its history (both any revision
    /// [`resolve`](Self::resolve) accepts).
    pub fn is_ancestor(&self, name: &str, commit: &str, tip: &str) -> Result<bool> {
        let repo = self.open(name)?;
        let commit = read::resolve(&repo, name, commit)?;
        let tip = read::resolve(&repo, name, tip)?;
        read::is_ancestor(&repo, name, commit, tip)
    }

    /// Resolve `revision` to a commit: a full ref name (`refs/…`), a branch,
    /// a tag (peeled to its commit), or a full or unambiguous abbreviated
    /// (at least 4 hex digits) commit sha present locally. Branches win over
    /// tags of the same name, and names over sha prefixes.
    pub fn resolve(&self, name: &str, revision: &str) -> Result<CommitInfo> {
        let repo = self.open(name)?;
        let id = read::resolve(&repo, name, revision)?;
        read::commit_info(&repo, name, id)
    }

    /// Commits reachable from `revision`, newest first (by commit time), at
    /// most `limit`.
    pub fn log(&self, name: &str, revision: &str, limit: usize) -> Result<Vec<CommitInfo>> {
        let repo = self.open(name)?;
        let id = read::resolve(&repo, name, revision)?;
        read::log(&repo, name, id, limit)
    }

    /// Every regular file under the directory `path` ("" or "." for the
    /// root) at `commit` (any revision [`resolve`](Self::resolve) accepts),
    /// recursively, with paths relative to `path`, sorted by path.
    ///
    /// Symlinks are followed (up to 8 levels) when their target stays inside
    /// `path`, and yield the target's content under the link's path; links
    /// that leave `path`, point at a directory or dangle are errors, as are
    /// submodules. Limits are checked from object headers before any blob is
    /// read.
    pub fn read_dir(
        &self,
        name: &str,
        commit: &str,
        path: &str,
        limits: &TreeLimits,
    ) -> Result<Vec<TreeFile>> {
        let base = paths::normalize_dir(path)?;
        let repo = self.open(name)?;
        let id = read::resolve(&repo, name, commit)?;
        read::read_dir(&repo, name, id, &base, limits)
    }

    /// The Git object id of each of `paths` (repository-relative
    /// directories or files) at `commit`, `None` where a path does not
    /// exist: equal ids mean equal contents, so a render that read only
    /// these paths gives the same output.
    pub fn object_ids(
        &self,
        name: &str,
        commit: &str,
        paths: &[String],
    ) -> Result<Vec<Option<String>>> {
        let parts = paths
            .iter()
            .map(|p| paths::normalize_dir(p))
            .collect::<Result<Vec<_>>>()?;
        let repo = self.open(name)?;
        let id = read::resolve(&repo, name, commit)?;
        read::object_ids(&repo, name, id, &parts)
    }

    /// The regular file at `path` (relative to the repository's root) at
    /// `commit`, within `limits` (one file's size), its path as given.
    pub fn read_file(
        &self,
        name: &str,
        commit: &str,
        path: &str,
        limits: &TreeLimits,
    ) -> Result<TreeFile> {
        let parts = paths::normalize_dir(path)?;
        if parts.is_empty() {
            return Err(Error::NotAFile {
                path: path.to_owned(),
                commit: commit.to_owned(),
            });
        }
        let repo = self.open(name)?;
        let id = read::resolve(&repo, name, commit)?;
        read::read_file(&repo, name, id, &parts, limits)
    }

    /// Delete the local repository of `name` (no error if absent).
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = self.repo_dir(name)?;
        let lock = self.lock(name);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        for d in [dir.clone(), fetch::partial_dir(&dir)] {
            match std::fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        context: format!("cannot remove {}", d.display()),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    fn lock(&self, name: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(name.to_owned()).or_default().clone()
    }

    fn open(&self, name: &str) -> Result<gix::Repository> {
        let dir = self.repo_dir(name)?;
        if !dir.exists() {
            return Err(Error::NotFetched(name.to_owned()));
        }
        fetch::open(&dir).map_err(|e| Error::Repository {
            name: name.to_owned(),
            detail: fetch::chain(&e),
        })
    }
}
