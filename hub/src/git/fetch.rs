//! Fetching with gix: transport options (CA, timeouts), credentials,
//! progress, pruning and error classification.

use std::{
    collections::{BTreeMap, BTreeSet},
    error::Error as StdError,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use gix::{
    credentials::{helper::Action, protocol::Outcome},
    progress::{MessageLevel, StepShared, Unit},
    protocol::transport::client::blocking_io::http as gix_http,
    refs::transaction::{Change, PreviousValue, RefEdit, RefLog},
    remote::Direction,
};

use super::{Error, FetchProgress, FetchResult, RepoSpec, Result};

/// The refspecs of every fetch: all branches and tags, forced, mirrored to
/// the same names (a bare repository has no remote-tracking refs).
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Upper bound for one HTTP request including its body (a whole pack).
const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How often progress is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Where a first fetch happens before it is renamed to `dir`.
pub(super) fn partial_dir(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Open options that ignore system, global and user Git configuration and
/// the `GIT_*` environment.
fn open_options() -> gix::open::Options {
    gix::open::Options::isolated()
}

pub(super) fn open(dir: &Path) -> gix::Result<gix::Repository> {
    gix::open_opts(dir, open_options())
}

/// The whole chain of an error, `: `-separated, without repeats.
pub(super) fn chain(e: &gix::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    visit_all(e, &mut |e| {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p == &s) {
            parts.push(s);
        }
    });
    parts.join(": ")
}

/// Every error in `e`: its tree, each one's `source()` chain, and what
/// `io::Error`s wrap (which `source()` skips).
fn visit_all(e: &gix::Error, f: &mut dyn FnMut(&(dyn StdError + 'static))) {
    fn visit(
        e: &(dyn StdError + 'static),
        f: &mut dyn FnMut(&(dyn StdError + 'static)),
        depth: usize,
    ) {
        let mut current = Some(e);
        let mut n = 0;
        while let Some(e) = current {
            if depth > 8 || n > 32 {
                return;
            }
            if e.downcast_ref::<gix::Error>().is_none() {
                f(e);
            }
            if let Some(inner) = e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                visit(inner, f, depth + 1);
            }
            current = e.source();
            n += 1;
        }
    }
    for err in e.iter_errors() {
        visit(err, f, 0);
    }
}

pub(super) fn fetch(
    root: &Path,
    dir: &Path,
    name: &str,
    spec: &RepoSpec,
    progress: &dyn Fn(FetchProgress),
) -> Result<FetchResult> {
    let url = gix::url::parse(gix::bstr::BStr::new(spec.url.as_str())).map_err(|e| {
        Error::InvalidUrl {
            url: spec.url.clone(),
            detail: chain(&e),
        }
    })?;
    let is_http = matches!(url.scheme, gix::url::Scheme::Http | gix::url::Scheme::Https);
    let certs = match &spec.ca_file {
        Some(path) => load_ca(path)?,
        None => Vec::new(),
    };
    std::fs::create_dir_all(root).map_err(|e| Error::Io {
        context: format!("cannot create {}", root.display()),
        source: e,
    })?;

    let fresh = !dir.exists();
    let work = if fresh {
        partial_dir(dir)
    } else {
        dir.to_owned()
    };
    if fresh {
        match std::fs::remove_dir_all(&work) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    context: format!("cannot remove {}", work.display()),
                    source: e,
                });
            }
        }
    }

    // gix repositories are not `Sync`: everything happens on a worker while
    // this thread reports progress.
    let registry = Registry::default();
    let root_progress = registry.node("fetch");
    let done = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<()>();
    let result = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let r = run(&work, fresh, name, spec, is_http, certs, root_progress);
            done.store(true, Ordering::SeqCst);
            let _ = tx.send(());
            r
        });
        let mut last = Vec::new();
        while !done.load(Ordering::SeqCst) {
            let _ = rx.recv_timeout(PROGRESS_INTERVAL);
            registry.report(&mut last, progress);
        }
        registry.report(&mut last, progress);
        worker.join().unwrap_or_else(|_| {
            Err(Error::Fetch {
                url: spec.url.clone(),
                detail: "the fetch panicked".to_owned(),
            })
        })
    })?;

    if fresh {
        std::fs::rename(&work, dir).map_err(|e| Error::Io {
            context: format!("cannot rename {} to {}", work.display(), dir.display()),
            source: e,
        })?;
    }
    Ok(result)
}

fn run(
    work: &Path,
    fresh: bool,
    name: &str,
    spec: &RepoSpec,
    is_http: bool,
    certs: Vec<reqwest::Certificate>,
    progress: Node,
) -> Result<FetchResult> {
    let repo_err = |e: gix::Error| Error::Repository {
        name: name.to_owned(),
        detail: chain(&e),
    };
    let repo = if fresh {
        gix::ThreadSafeRepository::init_opts(
            work,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            open_options(),
        )
        .map(gix::Repository::from)
        .map_err(repo_err)?
    } else {
        open(work).map_err(repo_err)?
    };
    let outcome = receive(&repo, spec, is_http, certs, progress).map_err(|f| classify(f, spec))?;

    let bytes_received = match &outcome.status {
        gix::remote::fetch::Status::Change {
            write_pack_bundle, ..
        } => write_pack_bundle
            .data_path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .unwrap_or(0),
        _ => 0,
    };

    // Prune what the remote no longer has, then report what is left.
    let remote_names: BTreeSet<String> = outcome
        .ref_map
        .remote_refs
        .iter()
        .map(|r| r.unpack().0.to_string())
        .filter(|n| n.starts_with("refs/heads/") || n.starts_with("refs/tags/"))
        .collect();
    let refs = prune_and_list(&repo, &remote_names).map_err(repo_err)?;
    Ok(FetchResult {
        refs,
        bytes_received,
    })
}

fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let ca_err = |detail: String| Error::CaFile {
        path: path.to_owned(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_err("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

/// The server asked for credentials and the spec has none.
#[derive(Debug)]
struct NoCredentials;

impl std::fmt::Display for NoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server requires credentials and none are configured")
    }
}

impl StdError for NoCredentials {}

/// Why `receive` failed, before classification.
enum FetchFailure {
    Gix(gix::Error),
    Other(String),
}

impl From<gix::Error> for FetchFailure {
    fn from(e: gix::Error) -> Self {
        Self::Gix(e)
    }
}

fn receive(
    repo: &gix::Repository,
    spec: &RepoSpec,
    is_http: bool,
    certs: Vec<reqwest::Certificate>,
    mut progress: Node,
) -> std::result::Result<gix::remote::fetch::Outcome, FetchFailure> {
    let remote = repo
        .remote_at(spec.url.as_str())?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(REFSPECS, Direction::Fetch)?;
    let stage = progress.add_child_named("connecting");
    let mut con = remote.connect(Direction::Fetch)?;
    drop(stage);

    let credentials = spec.credentials.clone();
    con.set_credentials(move |action| match action {
        Action::Get(ctx) => match credentials.as_ref() {
            Some(c) => Ok(Some(Outcome {
                identity: gix::sec::identity::Account {
                    username: c.username.clone(),
                    password: c.password.clone(),
                    oauth_refresh_token: None,
                },
                next: ctx.into(),
            })),
            None => Err(gix::Error::from_error(NoCredentials)),
        },
        Action::Store(_) | Action::Erase(_) => Ok(None),
    });

    if is_http {
        let mut options = repo
            .transport_options(spec.url.as_str(), None)?
            .unwrap_or_else(|| Box::new(gix_http::Options::default()));
        let Some(http) = options.downcast_mut::<gix_http::Options>() else {
            return Err(FetchFailure::Other(
                "unexpected HTTP transport options".to_owned(),
            ));
        };
        let backend = gix_http::reqwest::Options {
            configure_client: Some(Box::new(move |builder| {
                let builder = builder.timeout(HTTP_REQUEST_TIMEOUT);
                Ok(if certs.is_empty() {
                    builder
                } else {
                    builder.tls_certs_merge(certs.clone())
                })
            })),
            configure_request: None,
        };
        http.backend = Some(Arc::new(std::sync::Mutex::new(backend)));
        con.set_transport_options(options);
    }

    let interrupt = AtomicBool::new(false);
    let prepared = con.prepare_fetch(
        progress.add_child_named("listing refs"),
        gix::remote::ref_map::Options::default(),
    )?;
    let outcome = prepared.receive(progress, &interrupt)?;
    Ok(outcome)
}

/// Delete local branches and tags absent from `remote`, then list the rest,
/// peeled to commits.
fn prune_and_list(
    repo: &gix::Repository,
    remote: &BTreeSet<String>,
) -> gix::Result<BTreeMap<String, String>> {
    let mut stale = Vec::new();
    let mut refs = BTreeMap::new();
    let platform = repo.references()?;
    for r in platform.all()? {
        let mut r = r?;
        let name = r.name().as_bstr().to_string();
        if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
            continue;
        }
        if !remote.contains(&name) {
            stale.push(r.name().to_owned());
            continue;
        }
        // Tags may point at trees or blobs; only commits are revisions.
        if let Ok(commit) = r.peel_to_commit() {
            refs.insert(name, commit.id.to_string());
        }
    }
    if !stale.is_empty() {
        repo.edit_references(stale.into_iter().map(|name| RefEdit {
            change: Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
            name,
            deref: false,
        }))?;
    }
    Ok(refs)
}

fn classify(failure: FetchFailure, spec: &RepoSpec) -> Error {
    let url = spec.url.clone();
    let e = match failure {
        FetchFailure::Gix(e) => e,
        FetchFailure::Other(detail) => return Error::Fetch { url, detail },
    };
    let detail = chain(&e);
    let mut tls = None;
    let mut auth = false;
    let mut not_found = false;
    let mut unreachable = false;
    visit_all(&e, &mut |err| {
        if let Some(
            r
            @ (rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_)),
        ) = err.downcast_ref::<rustls::Error>()
        {
            tls = Some(r.to_string());
        }
        if err
            .downcast_ref::<gix::protocol::transport::client::AuthenticationRequired>()
            .is_some()
            || err.downcast_ref::<NoCredentials>().is_some()
        {
            auth = true;
        }
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            match r.status() {
                Some(s) if s == reqwest::StatusCode::UNAUTHORIZED => auth = true,
                Some(s) if s == reqwest::StatusCode::NOT_FOUND => not_found = true,
                _ => {}
            }
            if r.is_connect() && tls.is_none() {
                unreachable = true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | TimedOut
                    | HostUnreachable
                    | NetworkUnreachable
                    | AddrNotAvailable
                    | NotConnected
            ) {
                unreachable = true;
            }
        }
    });
    let lower = detail.to_lowercase();
    if tls.is_none() && lower.contains("invalid peer certificate") {
        tls = Some("invalid peer certificate".to_owned());
    }
    if let Some(why) = tls {
        return Error::TlsUntrusted { url, detail: why };
    }
    if auth || lower.contains("status 401") {
        return if spec.credentials.is_some() {
            Error::AuthenticationFailed { url }
        } else {
            Error::AuthenticationRequired { url }
        };
    }
    let not_found_text = [
        "status 404",
        "not found",
        "does not appear to be a git repository",
        "is a valid git directory",
        "repository not exported",
        "no such repository",
        "could not read from remote repository",
    ];
    if not_found || not_found_text.iter().any(|t| lower.contains(t)) {
        return Error::RepositoryNotFound { url, detail };
    }
    let unreachable_text = [
        "connection refused",
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "timed out",
        "no route to host",
        "network is unreachable",
    ];
    if unreachable || unreachable_text.iter().any(|t| lower.contains(t)) {
        return Error::Unreachable { url, detail };
    }
    Error::Fetch { url, detail }
}

/// Progress nodes handed to gix; the calling thread polls their counters
/// (gix updates some through shared atomics, not through calls).
#[derive(Default, Clone)]
struct Registry {
    nodes: Arc<Mutex<Vec<Arc<NodeState>>>>,
}

struct NodeState {
    name: Mutex<String>,
    max: Mutex<Option<usize>>,
    step: StepShared,
}

impl Registry {
    fn node(&self, name: &str) -> Node {
        let state = Arc::new(NodeState {
            name: Mutex::new(name.to_owned()),
            max: Mutex::new(None),
            step: Arc::new(AtomicUsize::new(0)),
        });
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(state.clone());
        Node {
            registry: self.clone(),
            state,
        }
    }

    /// Report the nodes that changed since `last`.
    fn report(&self, last: &mut Vec<Option<FetchProgress>>, progress: &dyn Fn(FetchProgress)) {
        let nodes: Vec<Arc<NodeState>> =
            self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone();
        last.resize(nodes.len(), None);
        for (node, last) in nodes.iter().zip(last.iter_mut()) {
            let now = FetchProgress {
                stage: node.name.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                done: node.step.load(Ordering::Relaxed) as u64,
                total: node
                    .max
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .map(|m| m as u64),
            };
            if now.stage.is_empty() || last.as_ref() == Some(&now) {
                continue;
            }
            progress(now.clone());
            *last = Some(now);
        }
    }
}

struct Node {
    registry: Registry,
    state: Arc<NodeState>,
}

impl Node {
    fn add_child_named(&mut self, name: &str) -> Node {
        self.registry.node(name)
    }
}

impl gix::Count for Node {
    fn set(&self, step: usize) {
        self.state.step.store(step, Ordering::Relaxed);
    }
    fn step(&self) -> usize {
        self.state.step.load(Ordering::Relaxed)
    }
    fn inc_by(&self, step: usize) {
        self.state.step.fetch_add(step, Ordering::Relaxed);
    }
    fn counter(&self) -> StepShared {
        self.state.step.clone()
    }
}

impl gix::Progress for Node {
    fn init(&mut self, max: Option<usize>, _unit: Option<Unit>) {
        *self.state.max.lock().unwrap_or_else(|e| e.into_inner()) = max;
        self.state.step.store(0, Ordering::Relaxed);
    }
    fn set_max(&mut self, max: Option<usize>) -> Option<usize> {
        std::mem::replace(
            &mut *self.state.max.lock().unwrap_or_else(|e| e.into_inner()),
            max,
        )
    }
    fn max(&self) -> Option<usize> {
        *self.state.max.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set_name(&mut self, name: String) {
        *self.state.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }
    fn name(&self) -> Option<String> {
        Some(
            self.state
                .name
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
    fn id(&self) -> gix::progress::Id {
        gix::progress::UNKNOWN
    }
    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl gix::NestedProgress for Node {
    type SubProgress = Node;
    fn add_child(&mut self, name: impl Into<String>) -> Node {
        self.registry.node(&name.into())
    }
    fn add_child_with_id(&mut self, name: impl Into<String>, _id: gix::progress::Id) -> Node {
        self.registry.node(&name.into())
    }
}
