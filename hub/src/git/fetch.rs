//! Fetching with gix: the refspecs of the tracked revisions, transport
//! options (CA, timeouts), credentials, pruning and error classification.
//! The limits watched while a pack arrives are in `budget`.

use std::{
    collections::{BTreeMap, BTreeSet},
    error::Error as StdError,
    net::{TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use gix::{
    credentials::{helper::Action, protocol::Outcome},
    protocol::transport::client::blocking_io::{Transport, http as gix_http},
    refs::transaction::{Change, PreviousValue, RefEdit, RefLog},
    remote::Direction,
};

use super::budget::{Budget, Node, Registry};
use super::{Error, FetchLimits, FetchProgress, FetchResult, RepoSpec, Result, paths::redact_url};

/// Upper bound for one HTTP request including its body (a whole pack).
const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a `git://` connection may take to open (how long it may stay
/// silent is `FetchLimits::stall_timeout`: gix's own `git://` transport
/// waits forever on a server that stops sending).
const GIT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The refspecs that mirror `tracked` (see `RepoSpec::tracked`), forced,
/// each to the same name (a bare repository has no remote-tracking refs).
/// A short name asks for both the branch and the tag of that name; only
/// those the remote has are fetched. Names that cannot be refs (a sha with
/// `^`, a space) ask for nothing.
pub(super) fn refspecs(tracked: &[String]) -> Vec<String> {
    let mut specs = BTreeSet::new();
    for revision in tracked {
        let revision = revision.trim();
        let full: Vec<String> =
            if revision.starts_with("refs/heads/") || revision.starts_with("refs/tags/") {
                vec![revision.to_owned()]
            } else if revision.starts_with("refs/") || revision.is_empty() {
                Vec::new()
            } else {
                vec![
                    format!("refs/heads/{revision}"),
                    format!("refs/tags/{revision}"),
                ]
            };
        for name in full {
            if gix::validate::reference::name(gix::bstr::BStr::new(name.as_str())).is_ok()
                && !name.contains(['*', ':', '^', '~', '?', '['])
            {
                specs.insert(format!("+{name}:{name}"));
            }
        }
    }
    specs.into_iter().collect()
}

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

/// Open options for a fetch: isolated, and no allocation caused by the
/// remote's data (one object, the pack's delta tree) may exceed
/// `max_object_bytes`.
fn fetch_open_options(limits: &FetchLimits) -> gix::open::Options {
    open_options().config_overrides([format!(
        "gitoxide.objects.allocLimit={}",
        limits.max_object_bytes
    )])
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
            url: redact_url(&spec.url),
            detail: chain(&e).replace(spec.url.as_str(), &redact_url(&spec.url)),
        }
    })?;
    if refspecs(&spec.tracked).is_empty() {
        return Err(Error::Fetch {
            url: redact_url(&spec.url),
            detail: format!(
                "nothing to fetch: none of the tracked revisions {:?} names a branch or tag",
                spec.tracked
            ),
        });
    }
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
    let registry = Registry::new(spec.limits);
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
            registry.enforce();
            registry.report(&mut last, progress);
        }
        registry.report(&mut last, progress);
        worker.join().unwrap_or_else(|_| {
            Err(Error::Fetch {
                url: redact_url(&spec.url),
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
    let options = fetch_open_options(&spec.limits);
    let repo = if fresh {
        gix::ThreadSafeRepository::init_opts(
            work,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            options,
        )
        .map(gix::Repository::from)
        .map_err(repo_err)?
    } else {
        gix::open_opts(work, options).map_err(repo_err)?
    };
    let budget = progress.registry.budget.clone();
    let received =
        receive(&repo, spec, is_http, certs, progress).map_err(|f| classify(f, spec, &budget))?;

    // Prune what is no longer tracked or no longer on the remote, then
    // report what is left.
    let refs = prune_and_list(&repo, &received.tracked).map_err(repo_err)?;
    Ok(FetchResult {
        refs,
        bytes_received: received.bytes_received,
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
    /// Already phrased for the operator.
    Classified(Error),
}

/// What `receive` brought.
struct Received {
    /// The tracked refs the remote has (`refs/heads/…`, `refs/tags/…`).
    tracked: BTreeSet<String>,
    /// Size of the pack written; 0 when there was nothing new.
    bytes_received: u64,
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
) -> std::result::Result<Received, FetchFailure> {
    let remote = repo
        .remote_at(spec.url.as_str())?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(
            refspecs(&spec.tracked)
                .iter()
                .map(|s| gix::bstr::BStr::new(s.as_str())),
            Direction::Fetch,
        )?;
    let stage = progress.add_child_named("connecting");
    let mut con = match remote.url(Direction::Fetch) {
        Some(url) if url.scheme == gix::url::Scheme::Git => {
            remote.to_connection_with_transport(git_daemon(url, spec)?)
        }
        Some(url) if matches!(url.scheme, gix::url::Scheme::File | gix::url::Scheme::Ssh) => {
            // gix's checks and rewriting of a local path (it must be a
            // repository), then the hub's own process with a stall timeout.
            let (url, _) = remote.sanitized_url_and_version(Direction::Fetch)?;
            remote.to_connection_with_transport(spawned(&url, spec)?)
        }
        _ => remote.connect(Direction::Fetch)?,
    };
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

    let budget = progress.registry.budget.clone();
    let prepared = con.prepare_fetch(
        progress.add_child_named("listing refs"),
        gix::remote::ref_map::Options::default(),
    )?;
    let tracked: BTreeSet<String> = prepared
        .ref_map()
        .mappings
        .iter()
        .filter_map(|m| m.remote.as_name())
        .map(|n| n.to_string())
        .filter(|n| n.starts_with("refs/heads/") || n.starts_with("refs/tags/"))
        .collect();
    // None of the tracked refs exists (a new, empty repository, a branch
    // not pushed yet): nothing to receive, and gix would call it an error.
    if prepared.ref_map().mappings.is_empty() {
        return Ok(Received {
            tracked,
            bytes_received: 0,
        });
    }
    let outcome = prepared.receive(progress, &budget.interrupt)?;
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
    Ok(Received {
        tracked,
        bytes_received,
    })
}

/// `git-upload-pack` (`file://`) or `ssh … git-upload-pack` (`ssh://`) run
/// by the hub, stopped once it has been silent for the stall timeout.
fn spawned(
    url: &gix::Url,
    spec: &RepoSpec,
) -> std::result::Result<Box<dyn Transport + Send>, FetchFailure> {
    let fail = |e: super::process::Error| FetchFailure::Other(e.to_string());
    let (program, args) = super::process::command_for(url).map_err(fail)?;
    super::process::connect(program, args, url.path.clone(), spec.limits.stall_timeout)
        .map_err(fail)
}

/// A `git://` connection with timeouts: gix's own connects with a 5 s
/// timeout but then waits forever on a server that stops sending.
fn git_daemon(
    url: &gix::Url,
    spec: &RepoSpec,
) -> std::result::Result<Box<dyn Transport + Send>, FetchFailure> {
    use gix::protocol::transport::client::git;
    let unreachable = |detail: String| {
        FetchFailure::Classified(Error::Unreachable {
            url: redact_url(&spec.url),
            detail,
        })
    };
    let host = url
        .host()
        .ok_or_else(|| unreachable("the URL has no host".to_owned()))?;
    let port = url.port.unwrap_or(9418);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| unreachable(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| unreachable(format!("{host} has no address")))?;
    let read = TcpStream::connect_timeout(&addr, GIT_CONNECT_TIMEOUT)
        .map_err(|e| unreachable(format!("cannot connect to {addr}: {e}")))?;
    let configure = |s: &TcpStream| -> std::io::Result<TcpStream> {
        s.set_read_timeout(Some(spec.limits.stall_timeout))?;
        s.set_write_timeout(Some(spec.limits.stall_timeout))?;
        s.try_clone()
    };
    let write = configure(&read).map_err(|e| unreachable(e.to_string()))?;
    Ok(Box::new(git::blocking_io::Connection::new(
        read,
        write,
        gix::protocol::transport::Protocol::V2,
        url.path.clone(),
        Some((host.to_owned(), url.port)),
        git::ConnectMode::Daemon,
        false,
    )))
}

/// Delete local branches and tags absent from `tracked`, then list the
/// rest, peeled to commits.
fn prune_and_list(
    repo: &gix::Repository,
    tracked: &BTreeSet<String>,
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
        if !tracked.contains(&name) {
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

fn classify(failure: FetchFailure, spec: &RepoSpec, budget: &Budget) -> Error {
    // A URL from an older version may still carry credentials: never repeat them.
    let url = redact_url(&spec.url);
    let shown = url.clone();
    let redact = |detail: String| detail.replace(spec.url.as_str(), &shown);
    if let Some(hit) = budget.hit.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Error::TooLarge {
            url,
            what: hit.what,
            limit: hit.limit,
            flag: hit.flag,
        };
    }
    let e = match failure {
        FetchFailure::Gix(e) => e,
        FetchFailure::Other(detail) => {
            return Error::Fetch {
                url,
                detail: redact(detail),
            };
        }
        FetchFailure::Classified(e) => return e,
    };
    let detail = redact(chain(&e));
    if detail.contains("too large to fit in memory") {
        return Error::TooLarge {
            url,
            what: "an object, or the index of the pack's objects, needs more memory".to_owned(),
            limit: spec.limits.max_object_bytes,
            flag: "max-object-bytes",
        };
    }
    let mut stalled = None;
    let mut tls = None;
    let mut auth = false;
    let mut not_found = false;
    let mut unreachable = false;
    visit_all(&e, &mut |err| {
        if let Some(s @ super::process::Error::Stalled { .. }) =
            err.downcast_ref::<super::process::Error>()
        {
            stalled = Some(s.to_string());
        }
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
    if let Some(detail) = stalled {
        return Error::Stalled { url, detail };
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_tracked_revisions_become_refspecs() {
        assert_eq!(
            refspecs(&v(&["main", "v1.2", "refs/tags/v2", "refs/heads/rel/1"])),
            v(&[
                "+refs/heads/main:refs/heads/main",
                "+refs/heads/rel/1:refs/heads/rel/1",
                "+refs/heads/v1.2:refs/heads/v1.2",
                "+refs/tags/main:refs/tags/main",
                "+refs/tags/v1.2:refs/tags/v1.2",
                "+refs/tags/v2:refs/tags/v2",
            ])
        );
        // Nothing outside branches and tags, no patterns, nothing invalid.
        for nothing in [
            "",
            "refs/pull/1/head",
            "*",
            "a:b",
            "HEAD^",
            "a b",
            "refs/heads/*",
        ] {
            assert_eq!(
                refspecs(&v(&[nothing])),
                Vec::<String>::new(),
                "{nothing:?}"
            );
        }
        assert!(refspecs(&[]).is_empty());
    }
}
