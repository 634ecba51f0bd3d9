//! GitOps on the hub: repos it follows, apps rendered from them, the commit
//! each app deploys (with history, manual approval and rollback), and the
//! assignments that tell every cluster which bundles to run.
//!
//! Work that must not multiply with the fleet is done once: an app is
//! rendered once per commit, and a bundle is shared by every cluster whose
//! substituted objects are identical (all of them, when the app uses no
//! `${cluster.…}` variable).

mod groups;
mod pass;
mod plan;
mod poll;
mod renders;
pub use switchyard_common::webhook;

use crate::clock::unix_now;
use crate::fleet::{Fleet, rfc3339};
use crate::git::{self, CommitInfo, Credentials, FetchLimits, GitCache, RepoSpec};
use crate::render::RendererKind;
use crate::render::sandbox::{RenderLimits, Worker};
use crate::store::{self, AppRecord, FetchState, RepoRecord, RevisionRecord, Store};
use crate::tree::TreeLimits;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_common::proto::Notification;
use switchyard_common::selector::Selector;
use tracing::{debug, info, warn};

pub use groups::{GroupRequest, GroupView, validate_group};

/// zstd level for bundles: a good ratio at a cost far below rendering.
const BUNDLE_COMPRESSION_LEVEL: i32 = 3;

/// Longest an admin request or a fetch waits for the renders it started
/// before it answers (the admin client gives up after 30 s). Renders go on
/// after that; their apps deploy when they finish.
const RENDER_WAIT: Duration = Duration::from_secs(10);

/// Error from a GitOps operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("repo {0} not found")]
    RepoNotFound(String),
    #[error("app {0} not found")]
    AppNotFound(String),
    #[error("repo {repo} is used by apps {apps}; delete or move them first")]
    RepoInUse { repo: String, apps: String },
    #[error("cluster group {0} not found")]
    GroupNotFound(String),
    #[error("cluster group {group} is targeted by apps {apps}; delete or move them first")]
    GroupInUse { group: String, apps: String },
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Git(#[from] git::Error),
    #[error(
        "commit {commit} is not in the history of app {app}; see `switchyard app history {app}`"
    )]
    NotInHistory { app: String, commit: String },
    #[error(
        "commit {commit} is not in the history of {tracked}, the revision app {app} follows: \
         operators may only deploy commits reachable from it (an admin can override with \
         `switchyard app sync {app} --revision {commit} --allow-unreachable --reason …`, \
         which is audited, or change the app's revision)"
    )]
    Unreachable {
        app: String,
        commit: String,
        tracked: String,
    },
    #[error("app {0} has no earlier commit to roll back to")]
    NothingToRollBack(String),
    #[error(
        "repo {0} has not been fetched yet; try again once `switchyard repo show` reports a fetch"
    )]
    NotFetched(String),
    #[error("background task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The planning pass this request shared failed.
    #[error("planning pass: {0}")]
    Shared(String),
}

/// What the last planning pass covered.
#[derive(Default)]
struct Planned {
    /// Every request with a ticket up to this one was made before it started.
    covered: u64,
    /// Why it failed, if it did.
    error: Option<String>,
    /// The renders it started, which the requests it covered wait for.
    started: Vec<renders::Finished>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        message: message.into(),
    }
}

/// Why a webhook delivery was not acted on.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRefusal {
    #[error(transparent)]
    Invalid(webhook::WebhookError),
    #[error("no repo is registered for {0}")]
    NoRepo(String),
    #[error("{0}")]
    Internal(String),
}

/// `repo add` parameters.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoRequest {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub interval_secs: Option<u64>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub webhook_secret_file: Option<String>,
}

/// A fetch in progress, as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchActivity {
    /// What the fetch is doing (`connecting`, `receiving pack`, `indexing`…).
    pub stage: String,
    /// Progress within the stage (objects, bytes), out of `total` when known.
    pub done: u64,
    pub total: Option<u64>,
    /// When the fetch started (RFC 3339).
    pub started_at: String,
}

/// A repo as the API shows it (never its secrets).
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoView {
    pub name: String,
    pub url: String,
    pub branch: String,
    pub interval: String,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    pub webhook_secret_file: Option<String>,
    pub created_at: String,
    pub last_fetch: Option<String>,
    pub last_success: Option<String>,
    pub error: Option<String>,
    /// Commit of the followed branch after the latest fetch.
    pub head: Option<String>,
    pub refs: usize,
    /// The fetch running now, if any.
    #[serde(default)]
    pub fetching: Option<FetchActivity>,
}

/// `app create` / `app update` parameters; on update, `None` keeps a field.
#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    /// Label selector; `K=V` pairs from repeated `--selector` are joined with commas.
    #[serde(default)]
    pub selector: Option<String>,
    /// Cluster group to target (with the selector, if any); empty clears it.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub renderer: Option<String>,
    #[serde(default)]
    pub plugin_command: Option<String>,
    #[serde(default)]
    pub manual: Option<bool>,
    #[serde(default)]
    pub prune: Option<bool>,
    #[serde(default)]
    pub self_heal: Option<bool>,
    /// Write to objects that exist already and belong to no app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
    /// Let prune and app deletion delete Namespaces the app created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_namespaces: Option<bool>,
    /// Let prune and app deletion delete CRDs the app created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_crds: Option<bool>,
    /// Take over fields other field managers own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_conflicts: Option<bool>,
}

/// An app as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    pub name: String,
    pub repo: String,
    pub path: String,
    pub revision: String,
    /// The revision as configured; `None` follows the repo's branch.
    #[serde(default)]
    pub revision_configured: Option<String>,
    pub selector: String,
    /// Cluster group the app targets (together with `selector`).
    #[serde(default)]
    pub group: Option<String>,
    pub namespace: Option<String>,
    pub renderer: String,
    pub plugin_command: Option<String>,
    pub sync_policy: String,
    pub prune: bool,
    pub self_heal: bool,
    #[serde(default)]
    pub adopt: bool,
    #[serde(default)]
    pub prune_namespaces: bool,
    #[serde(default)]
    pub prune_crds: bool,
    #[serde(default)]
    pub force_conflicts: bool,
    /// Latest commit the revision resolved to.
    pub latest: Option<String>,
    /// Commit assigned to clusters.
    pub deployed: Option<String>,
    /// A newer commit waiting for `app sync` (manual apps) or held back by a pin.
    pub pending: Option<String>,
    pub pinned: bool,
    /// Clusters the group and selector target and how many have the deployed commit assigned.
    pub target_clusters: Vec<String>,
    pub assigned: usize,
    /// `*` for errors that concern every cluster, else the cluster name.
    pub errors: BTreeMap<String, String>,
    pub created_at: String,
}

/// One line of `app history`.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionView {
    pub commit: String,
    pub at: String,
    pub event: String,
    pub trigger: String,
    pub author: String,
    pub summary: String,
    pub committed_at: String,
}

/// The hub's GitOps engine.
pub struct GitOps {
    store: Arc<dyn Store>,
    fleet: Arc<Fleet>,
    git: Arc<GitCache>,
    limits: TreeLimits,
    /// Bounds on every fetch.
    fetch_limits: FetchLimits,
    render_limits: RenderLimits,
    worker: Arc<Worker>,
    renders: renders::Renders,
    /// Fallback webhook secret for repos without their own.
    webhook_secret_file: PathBuf,
    caches: Arc<pass::Caches>,
    /// One planning pass at a time: passes read and write every assignment.
    /// Admin read-modify-writes of an app record hold it too, so that a pass
    /// never decides on a record an admin is changing.
    planning: tokio::sync::Mutex<Planned>,
    /// Reconcile requests made so far (see [`GitOps::reconcile`]).
    requested: std::sync::atomic::AtomicU64,
    pollers: Mutex<HashMap<String, poll::Poller>>,
    /// Fetches running now, by repo, for `repo show` and `repo add --wait`.
    fetching: Arc<Mutex<HashMap<String, FetchActivity>>>,
}

impl GitOps {
    pub fn new(
        store: Arc<dyn Store>,
        fleet: Arc<Fleet>,
        repos_dir: PathBuf,
        webhook_secret_file: PathBuf,
    ) -> Self {
        Self {
            store,
            fleet,
            git: Arc::new(GitCache::new(repos_dir)),
            limits: TreeLimits::default(),
            fetch_limits: FetchLimits::default(),
            render_limits: RenderLimits::default(),
            worker: Arc::new(Worker::this_binary()),
            renders: renders::Renders::new(RenderLimits::default().concurrency),
            webhook_secret_file,
            caches: Arc::default(),
            planning: tokio::sync::Mutex::new(Planned::default()),
            requested: std::sync::atomic::AtomicU64::new(0),
            pollers: Mutex::new(HashMap::new()),
            fetching: Arc::default(),
        }
    }

    /// These limits on every fetch instead of the defaults.
    pub fn with_fetch_limits(mut self, limits: FetchLimits) -> Self {
        self.fetch_limits = limits;
        self
    }

    /// Render with these limits, in workers started from `worker`.
    pub fn with_renders(mut self, limits: RenderLimits, worker: Worker) -> Self {
        self.render_limits = limits;
        self.worker = Arc::new(worker);
        self.renders = renders::Renders::new(limits.concurrency);
        self
    }

    /// Start following every stored repo, and plan again whenever a render
    /// finishes, so that its app deploys whoever waits or not.
    pub fn start(self: &Arc<Self>) -> Result<()> {
        for repo in self.store.repos()? {
            if git::carries_credentials(&repo.url) {
                // Stored by a version that accepted them; still fetched so
                // nothing breaks, but shown and exported redacted.
                warn!(
                    repo = %repo.name,
                    url = %git::redact_url(&repo.url),
                    "repo URL carries credentials; re-apply it with a plain URL and --username/--password-file (see docs/OPERATIONS.md)"
                );
            }
            self.spawn_poller(&repo.name);
        }
        if let Some(mut finished) = self.renders.take_finished() {
            // Weak: the hub's shutdown drops the engine, ending this task.
            let this = Arc::downgrade(self);
            tokio::spawn(async move {
                while finished.recv().await.is_some() {
                    // Renders that finished meanwhile share this pass.
                    while finished.try_recv().is_ok() {}
                    let Some(this) = this.upgrade() else { break };
                    if let Err(e) = this.plan_once("render").await {
                        warn!(error = %e, "planning after a render failed");
                    }
                }
            });
        }
        Ok(())
    }

    fn spawn_poller(self: &Arc<Self>, repo: &str) {
        let poller = poll::Poller::spawn(self.clone(), repo.to_owned());
        if let Some(old) = self
            .pollers
            .lock()
            .expect("pollers lock")
            .insert(repo.to_owned(), poller)
        {
            old.stop();
        }
    }

    // ----- repos -----

    pub fn repo_view(&self, repo: &RepoRecord) -> RepoView {
        RepoView {
            name: repo.name.clone(),
            // Records from older versions may carry credentials.
            url: git::redact_url(&repo.url),
            branch: repo.branch.clone(),
            interval: humantime::format_duration(Duration::from_secs(repo.interval_secs))
                .to_string(),
            username: repo.username.clone(),
            password_file: repo.password_file.clone(),
            ca_file: repo.ca_file.clone(),
            webhook_secret_file: repo.webhook_secret_file.clone(),
            created_at: rfc3339(repo.created_at),
            last_fetch: repo.fetch.last_attempt.map(rfc3339),
            last_success: repo.fetch.last_success.map(rfc3339),
            error: repo.fetch.error.clone(),
            head: repo
                .fetch
                .refs
                .get(&format!("refs/heads/{}", repo.branch))
                .cloned(),
            refs: repo.fetch.refs.len(),
            fetching: self
                .fetching
                .lock()
                .expect("fetching lock")
                .get(&repo.name)
                .cloned(),
        }
    }

    /// Check a repo's parameters and build its record (nothing is stored).
    /// The files it names must exist on the hub's machine.
    pub fn check_repo(&self, request: RepoRequest) -> Result<RepoRecord> {
        validate_repo_name(&request.name)?;
        let url = check_url(&request.url)?;
        if request.password_file.is_some() != request.username.is_some() {
            return Err(invalid(
                "credentials",
                "--username and --password-file go together",
            ));
        }
        for (field, file) in [
            ("password-file", &request.password_file),
            ("ca-file", &request.ca_file),
            ("webhook-secret-file", &request.webhook_secret_file),
        ] {
            if let Some(file) = file
                && let Err(e) = std::fs::metadata(file)
            {
                return Err(invalid(field, format!("{file}: {e}")));
            }
        }
        if let Some(file) = &request.webhook_secret_file
            && let Err(e) = read_webhook_secret(std::path::Path::new(file))
        {
            return Err(invalid("webhook-secret-file", format!("{file}: {e}")));
        }
        let interval_secs = request.interval_secs.unwrap_or(30);
        if interval_secs == 0 {
            return Err(invalid("interval", "must be at least 1s"));
        }
        Ok(RepoRecord {
            name: request.name.clone(),
            url,
            branch: request.branch.unwrap_or_else(|| "main".into()),
            interval_secs,
            username: request.username,
            password_file: request.password_file,
            ca_file: request.ca_file,
            webhook_secret_file: request.webhook_secret_file,
            created_at: unix_now(),
            fetch: FetchState::default(),
        })
    }

    pub fn add_repo(self: &Arc<Self>, request: RepoRequest) -> Result<RepoView> {
        let repo = self.check_repo(request)?;
        self.store.create_repo(&repo)?;
        info!(repo = %repo.name, url = %git::redact_url(&repo.url), "repo added");
        self.spawn_poller(&repo.name);
        Ok(self.repo_view(&repo))
    }

    /// Replace a repo's settings (`apply`). Its fetch state is kept unless
    /// the URL changed; either way it is fetched again at once, and apps
    /// following its branch follow a changed branch.
    pub async fn replace_repo(
        self: &Arc<Self>,
        name: &str,
        request: RepoRequest,
    ) -> Result<RepoView> {
        if request.name != name {
            return Err(invalid("name", "a repo cannot be renamed"));
        }
        let new = self.check_repo(request)?;
        let updated = self
            .store
            .update_repo(name, true, &mut |r| {
                let fetch = if r.url == new.url {
                    std::mem::take(&mut r.fetch)
                } else {
                    FetchState::default()
                };
                *r = RepoRecord {
                    created_at: r.created_at,
                    fetch,
                    ..new.clone()
                };
            })?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        info!(repo = %name, url = %git::redact_url(&updated.url), "repo changed");
        self.spawn_poller(name);
        self.reconcile("admin").await?;
        Ok(self.repo_view(&updated))
    }

    pub fn repos(&self) -> Result<Vec<RepoView>> {
        Ok(self
            .store
            .repos()?
            .iter()
            .map(|r| self.repo_view(r))
            .collect())
    }

    pub fn repo(&self, name: &str) -> Result<RepoView> {
        let repo = self
            .store
            .repo(name)?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        Ok(self.repo_view(&repo))
    }

    pub async fn remove_repo(&self, name: &str) -> Result<RepoView> {
        let users: Vec<String> = self
            .store
            .apps()?
            .into_iter()
            .filter(|a| a.repo == name)
            .map(|a| a.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::RepoInUse {
                repo: name.to_owned(),
                apps: users.join(", "),
            });
        }
        let removed = self
            .store
            .remove_repo(name)?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        if let Some(poller) = self.pollers.lock().expect("pollers lock").remove(name) {
            poller.stop();
        }
        let git = self.git.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || git.remove(&name))
            .await
            .map_err(Error::Task)??;
        Ok(self.repo_view(&removed))
    }

    /// Ask the repo's poller to fetch now (webhooks).
    pub fn fetch_soon(&self, repo: &str) -> bool {
        match self.pollers.lock().expect("pollers lock").get(repo) {
            Some(poller) => {
                poller.wake();
                true
            }
            None => false,
        }
    }

    /// The revisions of `repo` the hub follows: its branch, and every
    /// app's revision on it. Only these are fetched.
    fn tracked_revisions(&self, repo: &RepoRecord) -> Result<Vec<String>> {
        let mut tracked = vec![repo.branch.clone()];
        for app in self.store.apps()? {
            if app.repo == repo.name
                && let Some(revision) = app.revision
            {
                tracked.push(revision);
            }
        }
        tracked.sort();
        tracked.dedup();
        Ok(tracked)
    }

    fn spec(&self, repo: &RepoRecord) -> Result<RepoSpec> {
        let credentials = match (&repo.username, &repo.password_file) {
            (Some(username), Some(file)) => {
                let password = std::fs::read_to_string(file)
                    .map_err(|e| invalid("password-file", format!("{file}: {e}")))?;
                Some(Credentials {
                    username: username.clone(),
                    password: password.trim_end_matches(['\n', '\r']).to_owned(),
                })
            }
            _ => None,
        };
        Ok(RepoSpec {
            url: repo.url.clone(),
            credentials,
            ca_file: repo.ca_file.as_ref().map(PathBuf::from),
            tracked: self.tracked_revisions(repo)?,
            limits: self.fetch_limits,
        })
    }

    /// Fetch a repo now, record the outcome, and replan when refs moved.
    pub(crate) async fn fetch_repo(&self, name: &str, trigger: &str) -> Result<()> {
        let span = tracing::info_span!("fetch", repo = %name, trigger);
        tracing::Instrument::instrument(self.fetch_repo_now(name, trigger), span).await
    }

    async fn fetch_repo_now(&self, name: &str, trigger: &str) -> Result<()> {
        let repo = self
            .store
            .repo(name)?
            .ok_or_else(|| Error::RepoNotFound(name.to_owned()))?;
        let first = repo.fetch.last_success.is_none();
        let started = std::time::Instant::now();
        let outcome = match self.spec(&repo) {
            Ok(spec) => {
                let git = self.git.clone();
                let repo_name = name.to_owned();
                let activity = ActivityGuard::start(self.fetching.clone(), name);
                tokio::task::spawn_blocking(move || {
                    git.fetch(&repo_name, &spec, &|p: git::FetchProgress| {
                        debug!(repo = %repo_name, stage = %p.stage, done = p.done, total = ?p.total, "fetch progress");
                        activity.update(p);
                    })
                })
                .await
                .map_err(Error::Task)?
                .map_err(Error::Git)
            }
            Err(e) => Err(e),
        };
        let took = started.elapsed();
        crate::metrics::Metrics::observe(
            &self.fleet.metrics().git_fetch_seconds,
            crate::metrics::Outcome::of(&outcome),
            took,
        );
        let now = unix_now();
        match outcome {
            Ok(result) => {
                let moved = result.refs != repo.fetch.refs || first;
                self.store.update_repo(name, false, &mut |r| {
                    r.fetch.last_attempt = Some(now);
                    r.fetch.last_success = Some(now);
                    r.fetch.error = None;
                    r.fetch.consecutive_failures = 0;
                    r.fetch.refs = result.refs.clone();
                })?;
                info!(
                    bytes = result.bytes_received,
                    moved,
                    elapsed_ms = took.as_millis() as u64,
                    "fetched"
                );
                if moved {
                    self.reconcile(trigger).await?;
                }
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                warn!(error = %message, elapsed_ms = took.as_millis() as u64, "fetch failed; assignments stay as they are");
                self.store.update_repo(name, false, &mut |r| {
                    r.fetch.last_attempt = Some(now);
                    r.fetch.error = Some(message.clone());
                    r.fetch.consecutive_failures += 1;
                })?;
                Err(error)
            }
        }
    }

    /// Check a forge's push delivery and fetch every repo it names now;
    /// returns the repos woken. A delivery is refused (401) unless signed with the secret of
    /// a repo it names, or, when it names none the hub follows, with the
    /// hub's own secret: the answer never tells an unsigned caller whether
    /// a repository is followed.
    pub fn handle_webhook(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<Vec<String>, WebhookRefusal> {
        let delivery = webhook::parse(headers, body).map_err(WebhookRefusal::Invalid)?;
        let repos = self
            .store
            .repos()
            .map_err(|e| WebhookRefusal::Internal(e.to_string()))?;
        let candidates: Vec<&RepoRecord> = repos
            .iter()
            .filter(|r| {
                delivery
                    .repo_urls
                    .iter()
                    .any(|u| webhook::same_repo(u, &r.url))
            })
            .collect();
        if candidates.is_empty() {
            // Check the signature against the hub's own secret first, and
            // refuse a bad one exactly as for a followed repo: otherwise
            // anyone could probe which repositories this hub follows.
            let secret = read_webhook_secret(&self.webhook_secret_file).map_err(|e| {
                warn!(file = %self.webhook_secret_file.display(), error = %e, "webhook secret unreadable");
                WebhookRefusal::Internal("no webhook secret readable".into())
            })?;
            webhook::verify(delivery.forge, headers, body, &secret).map_err(|e| {
                warn!(forge = %delivery.forge, error = %e, "webhook refused");
                WebhookRefusal::Invalid(e)
            })?;
            return Err(WebhookRefusal::NoRepo(delivery.repo_urls.join(", ")));
        }
        let mut woken = Vec::new();
        let mut last_error = None;
        for repo in candidates {
            let secret_file = repo
                .webhook_secret_file
                .as_ref()
                .map_or_else(|| self.webhook_secret_file.clone(), PathBuf::from);
            let secret = match read_webhook_secret(&secret_file) {
                Ok(s) => s,
                Err(e) => {
                    warn!(repo = %repo.name, file = %secret_file.display(), error = %e, "webhook secret unreadable");
                    continue;
                }
            };
            match webhook::verify(delivery.forge, headers, body, &secret) {
                Ok(()) => {
                    info!(repo = %repo.name, forge = %delivery.forge, event = %delivery.event, "webhook accepted; fetching now");
                    if self.fetch_soon(&repo.name) {
                        woken.push(repo.name.clone());
                    }
                }
                Err(e) => {
                    warn!(repo = %repo.name, forge = %delivery.forge, error = %e, "webhook refused");
                    last_error = Some(e);
                }
            }
        }
        match (woken.is_empty(), last_error) {
            (true, Some(e)) => Err(WebhookRefusal::Invalid(e)),
            (true, None) => Err(WebhookRefusal::Internal(
                "no webhook secret readable".into(),
            )),
            (false, _) => Ok(woken),
        }
    }

    // ----- apps -----

    pub fn app_view(&self, app: &AppRecord) -> Result<AppView> {
        let repo = self.store.repo(&app.repo)?;
        let selector = groups::target_selector(app, &self.groups_by_name()?).ok();
        let mut targets = Vec::new();
        let mut assigned = 0;
        for cluster in self.store.clusters()? {
            if selector
                .as_ref()
                .is_some_and(|s| s.matches(&cluster.labels))
            {
                if cluster
                    .assignment
                    .iter()
                    .any(|i| i.app == app.name && Some(&i.commit) == app.deployed.as_ref())
                {
                    assigned += 1;
                }
                targets.push(cluster.name.to_string());
            }
        }
        Ok(AppView {
            name: app.name.clone(),
            repo: app.repo.clone(),
            path: app.path.clone(),
            revision: app
                .revision
                .clone()
                .or_else(|| repo.map(|r| r.branch))
                .unwrap_or_default(),
            revision_configured: app.revision.clone(),
            selector: app.selector.clone(),
            group: app.group.clone(),
            namespace: app.namespace.clone(),
            renderer: app.renderer.clone(),
            plugin_command: app.plugin_command.clone(),
            sync_policy: if app.manual { "manual" } else { "automatic" }.into(),
            prune: app.prune,
            self_heal: app.self_heal,
            adopt: app.ownership.adopt,
            prune_namespaces: app.ownership.prune_namespaces,
            prune_crds: app.ownership.prune_crds,
            force_conflicts: app.ownership.force_conflicts,
            latest: app.latest.clone(),
            deployed: app.deployed.clone(),
            pending: app
                .latest
                .clone()
                .filter(|l| Some(l) != app.deployed.as_ref()),
            pinned: app.pinned,
            target_clusters: targets,
            assigned,
            errors: app.errors.clone(),
            created_at: rfc3339(app.created_at),
        })
    }

    pub fn apps(&self) -> Result<Vec<AppView>> {
        self.store
            .apps()?
            .iter()
            .map(|a| self.app_view(a))
            .collect()
    }

    pub fn app(&self, name: &str) -> Result<AppView> {
        let app = self.load_app(name)?;
        self.app_view(&app)
    }

    fn load_app(&self, name: &str) -> Result<AppRecord> {
        self.store
            .app(name)?
            .ok_or_else(|| Error::AppNotFound(name.to_owned()))
    }

    /// Check an app's fields, filling defaults.
    fn validate_app(&self, app: &mut AppRecord) -> Result<()> {
        validate_repo_name(&app.name).map_err(|_| {
            invalid(
                "name",
                format!("{:?}: use letters, digits, '.', '_' and '-'", app.name),
            )
        })?;
        if self.store.repo(&app.repo)?.is_none() {
            return Err(Error::RepoNotFound(app.repo.clone()));
        }
        app.path = normalize_app_path(&app.path)?;
        let selector =
            Selector::parse(&app.selector).map_err(|e| invalid("selector", e.to_string()))?;
        app.selector = selector.to_string();
        if let Some(group) = &app.group
            && self.store.group(group)?.is_none()
        {
            return Err(Error::GroupNotFound(group.clone()));
        }
        renderer_of(app).map_err(|e| invalid("renderer", e))?;
        if let Some(ns) = &app.namespace
            && switchyard_common::ClusterName::new(ns.clone()).is_err()
        {
            return Err(invalid("namespace", format!("{ns:?} is not a DNS label")));
        }
        Ok(())
    }

    pub async fn create_app(&self, request: AppRequest) -> Result<AppView> {
        let name = request
            .name
            .clone()
            .ok_or_else(|| invalid("name", "required"))?;
        let mut app = AppRecord {
            name,
            repo: request
                .repo
                .clone()
                .ok_or_else(|| invalid("repo", "required"))?,
            path: request
                .path
                .clone()
                .ok_or_else(|| invalid("path", "required"))?,
            revision: request.revision.clone().filter(|r| !r.is_empty()),
            selector: request.selector.clone().unwrap_or_default(),
            group: request.group.clone().filter(|g| !g.is_empty()),
            namespace: request.namespace.clone().filter(|n| !n.is_empty()),
            renderer: request
                .renderer
                .clone()
                .unwrap_or_else(|| "directory".into()),
            plugin_command: request.plugin_command.clone().filter(|c| !c.is_empty()),
            manual: request.manual.unwrap_or(false),
            prune: request.prune.unwrap_or(false),
            self_heal: request.self_heal.unwrap_or(false),
            ownership: switchyard_common::proto::Ownership {
                adopt: request.adopt.unwrap_or(false),
                prune_namespaces: request.prune_namespaces.unwrap_or(false),
                prune_crds: request.prune_crds.unwrap_or(false),
                force_conflicts: request.force_conflicts.unwrap_or(false),
            },
            created_at: unix_now(),
            deployed: None,
            pinned: false,
            latest: None,
            errors: BTreeMap::new(),
            render_failure: None,
        };
        self.validate_app(&mut app)?;
        self.store.create_app(&app)?;
        info!(app = %app.name, repo = %app.repo, path = %app.path, "app created");
        // Only tracked revisions are fetched: one new to the repo arrives
        // with this fetch.
        if app.revision.is_some() {
            self.fetch_soon(&app.repo);
        }
        self.reconcile("admin").await?;
        self.app(&app.name)
    }

    pub async fn update_app(&self, name: &str, request: AppRequest) -> Result<AppView> {
        let writing = self.planning.lock().await;
        let mut app = self.load_app(name)?;
        if let Some(n) = &request.name
            && n != name
        {
            return Err(invalid("name", "an app cannot be renamed"));
        }
        if let Some(v) = request.repo {
            app.repo = v;
        }
        if let Some(v) = request.path {
            app.path = v;
        }
        if let Some(v) = request.revision {
            app.revision = Some(v).filter(|r| !r.is_empty());
        }
        if let Some(v) = request.selector {
            app.selector = v;
        }
        if let Some(v) = request.group {
            app.group = Some(v).filter(|g| !g.is_empty());
        }
        if let Some(v) = request.namespace {
            app.namespace = Some(v).filter(|n| !n.is_empty());
        }
        if let Some(v) = request.renderer {
            app.renderer = v;
        }
        if let Some(v) = request.plugin_command {
            app.plugin_command = Some(v).filter(|c| !c.is_empty());
        }
        if let Some(v) = request.manual {
            app.manual = v;
        }
        if let Some(v) = request.prune {
            app.prune = v;
        }
        if let Some(v) = request.self_heal {
            app.self_heal = v;
        }
        if let Some(v) = request.adopt {
            app.ownership.adopt = v;
        }
        if let Some(v) = request.prune_namespaces {
            app.ownership.prune_namespaces = v;
        }
        if let Some(v) = request.prune_crds {
            app.ownership.prune_crds = v;
        }
        if let Some(v) = request.force_conflicts {
            app.ownership.force_conflicts = v;
        }
        self.validate_app(&mut app)?;
        let updated = app.clone();
        self.store
            .update_app(name, true, &mut |a| *a = updated.clone())?
            .ok_or_else(|| Error::AppNotFound(name.to_owned()))?;
        drop(writing);
        // Only tracked revisions are fetched: a new one arrives with this fetch.
        self.fetch_soon(&app.repo);
        self.reconcile("admin").await?;
        self.app(name)
    }

    pub async fn delete_app(&self, name: &str) -> Result<AppView> {
        let app = self.load_app(name)?;
        let view = self.app_view(&app)?;
        self.store.remove_app(name)?;
        info!(app = %name, "app deleted");
        self.reconcile("admin").await?;
        Ok(view)
    }

    pub fn history(&self, name: &str) -> Result<Vec<RevisionView>> {
        self.load_app(name)?;
        Ok(self
            .store
            .revisions(name)?
            .into_iter()
            .map(|r| RevisionView {
                commit: r.commit,
                at: rfc3339(r.at),
                event: r.event,
                trigger: r.trigger,
                author: r.author,
                summary: r.summary,
                committed_at: rfc3339(r.committed_at),
            })
            .collect())
    }

    async fn resolve_commit(&self, app: &AppRecord, revision: &str) -> Result<CommitInfo> {
        let repo = self
            .store
            .repo(&app.repo)?
            .ok_or_else(|| Error::RepoNotFound(app.repo.clone()))?;
        if repo.fetch.last_success.is_none() {
            return Err(Error::NotFetched(repo.name));
        }
        let git = self.git.clone();
        let (repo, revision) = (repo.name, revision.to_owned());
        tokio::task::spawn_blocking(move || git.resolve(&repo, &revision))
            .await
            .map_err(Error::Task)?
            .map_err(Error::Git)
    }

    /// Approve a commit: the latest one, or `revision`. Resumes following
    /// the app's revision after a rollback.
    ///
    /// An explicit `revision` must be the app's tracked revision (its
    /// revision, or the repo's branch) or in its history, so that whoever
    /// may sync cannot deploy a branch nobody reviewed; `override_reason`
    /// (an admin's `--allow-unreachable`, checked by the caller) lifts that.
    pub async fn sync(
        &self,
        name: &str,
        revision: Option<&str>,
        override_reason: Option<&str>,
    ) -> Result<AppView> {
        let writing = self.planning.lock().await;
        let app = self.load_app(name)?;
        let tracked = match &app.revision {
            Some(r) => r.clone(),
            None => self
                .store
                .repo(&app.repo)?
                .map(|r| r.branch)
                .unwrap_or_default(),
        };
        let (target, event) = match revision {
            Some(revision) => {
                let target = self.resolve_commit(&app, revision).await?;
                let reachable = self.is_ancestor(&app, &target.id, &tracked).await?;
                match (reachable, override_reason) {
                    (true, _) => (target, "sync".to_owned()),
                    (false, None) => {
                        return Err(Error::Unreachable {
                            app: app.name.clone(),
                            commit: target.id,
                            tracked,
                        });
                    }
                    (false, Some(reason)) => {
                        warn!(app = %app.name, commit = %target.id, %tracked, %reason, "deploying a commit outside the tracked revision (admin override)");
                        (target, format!("sync outside {tracked}: {reason}"))
                    }
                }
            }
            None => (
                self.resolve_commit(&app, &tracked).await?,
                "sync".to_owned(),
            ),
        };
        // An explicit older commit on an automatic app would be replaced by
        // the next new commit at once; it stays pinned until a plain sync.
        let pinned = revision.is_some() && app.latest.as_deref() != Some(target.id.as_str());
        self.deploy(writing, &app, &target, &event, pinned).await
    }

    /// Whether `commit` is `tracked`'s commit or in its history.
    async fn is_ancestor(&self, app: &AppRecord, commit: &str, tracked: &str) -> Result<bool> {
        let git = self.git.clone();
        let (repo, commit, tracked) = (app.repo.clone(), commit.to_owned(), tracked.to_owned());
        tokio::task::spawn_blocking(move || git.is_ancestor(&repo, &commit, &tracked))
            .await
            .map_err(Error::Task)?
            .map_err(Error::Git)
    }

    /// Pin the app to an earlier deployed commit from its history.
    pub async fn rollback(&self, name: &str, to: Option<&str>) -> Result<AppView> {
        let writing = self.planning.lock().await;
        let app = self.load_app(name)?;
        let history = self.store.revisions(name)?;
        let commit = match to {
            // Any commit the app has seen; a prefix must be long enough to be unambiguous.
            Some(to) => history
                .iter()
                .rev()
                .find(|r| r.commit == to || (to.len() >= 7 && r.commit.starts_with(to)))
                .map(|r| r.commit.clone())
                .ok_or_else(|| Error::NotInHistory {
                    app: name.to_owned(),
                    commit: to.to_owned(),
                })?,
            // The commit deployed before the current one.
            None => history
                .iter()
                .rev()
                .filter(|r| r.deployed)
                .map(|r| &r.commit)
                .find(|c| Some(*c) != app.deployed.as_ref())
                .cloned()
                .ok_or_else(|| Error::NothingToRollBack(name.to_owned()))?,
        };
        let target = self.resolve_commit(&app, &commit).await?;
        self.deploy(writing, &app, &target, "rollback", true).await
    }

    /// Record an admin's deploy of `target`. `writing` is the planning lock,
    /// held since `app` was read: a pass that read the app before this
    /// write would otherwise decide on the old record and could deploy a
    /// new commit over an acknowledged rollback (and the response would
    /// show the pass's commit, not the rollback's).
    async fn deploy(
        &self,
        writing: tokio::sync::MutexGuard<'_, Planned>,
        app: &AppRecord,
        target: &CommitInfo,
        event: &str,
        pinned: bool,
    ) -> Result<AppView> {
        self.store.append_revision(
            &app.name,
            &RevisionRecord {
                commit: target.id.clone(),
                at: unix_now(),
                event: event.into(),
                trigger: "admin".into(),
                author: format!("{} <{}>", target.author_name, target.author_email),
                summary: target.summary.clone(),
                committed_at: target.time,
                deployed: true,
            },
        )?;
        let commit = target.id.clone();
        // An admin's deploy is also how a remembered render failure is
        // tried again (after the limits were raised, say).
        self.store
            .update_app(&app.name, true, &mut |a| {
                a.deployed = Some(commit.clone());
                a.pinned = pinned;
                a.render_failure = None;
            })?
            .ok_or_else(|| Error::AppNotFound(app.name.clone()))?;
        self.caches.forget(&app.name);
        info!(app = %app.name, commit = %target.id, event, pinned, "app deployed");
        drop(writing);
        self.reconcile("admin").await?;
        self.app(&app.name)
    }

    // ----- reconciliation -----

    /// Resolve every app's revision, render what changed, and bring every
    /// cluster's assignment up to date, notifying the agents whose changed.
    ///
    /// Renders run outside the planning lock: a pass plans with the renders
    /// at hand and starts the missing ones; as each finishes, this plans
    /// again, until every render it started has finished or
    /// [`RENDER_WAIT`] has passed. Renders that were already running are
    /// not waited for, nor are longer ones: each plans when it ends (see
    /// [`GitOps::start`]), so a hung plugin holds up neither this request
    /// nor another app's deploy.
    pub async fn reconcile(&self, trigger: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + RENDER_WAIT;
        let mut waiting = tokio::task::JoinSet::new();
        // Bounded by the renders a pass can start; renders end at their
        // timeout and the wait at its deadline, so this ends too.
        loop {
            for mut finished in self.plan_once(trigger).await? {
                waiting.spawn(async move {
                    let _ = finished.wait_for(|done| *done).await;
                });
            }
            match tokio::time::timeout_at(deadline, waiting.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(_) => {
                    debug!(
                        renders = waiting.len(),
                        "renders still running; they deploy when they finish"
                    );
                    return Ok(());
                }
            }
            // Renders that finished meanwhile share the next pass.
            while waiting.try_join_next().is_some() {}
        }
    }

    /// One planning pass under the lock, and the renders it started.
    ///
    /// Requests that queue behind a running pass share the next one: it
    /// starts after they were made, so it sees their changes. Registering
    /// 10,000 clusters thus costs far fewer than 10,000 passes over the
    /// fleet. (The shared pass records the trigger of whoever runs it.)
    async fn plan_once(&self, trigger: &str) -> Result<Vec<renders::Finished>> {
        use std::sync::atomic::Ordering;
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut planned = self.planning.lock().await;
        if planned.covered >= ticket {
            return match &planned.error {
                None => Ok(planned.started.clone()),
                Some(message) => Err(Error::Shared(message.clone())),
            };
        }
        let covers = self.requested.load(Ordering::SeqCst);
        let this = Arc::new(self.snapshot());
        let trigger = trigger.to_owned();
        let pass = this.clone();
        let outcome = tokio::task::spawn_blocking(move || pass.plan_all(&trigger))
            .await
            .map_err(Error::Task)
            .and_then(|r| r);
        planned.covered = covers;
        planned.error = outcome.as_ref().err().map(ToString::to_string);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                planned.started.clear();
                return Err(e);
            }
        };
        planned.started = self.renders.start(outcome.wanted, &this);
        let started = planned.started.clone();
        drop(planned);
        for (cluster, generation) in outcome.changed {
            self.fleet
                .notify(&cluster, Notification::AssignmentChanged { generation });
        }
        Ok(started)
    }

    /// What the blocking planning pass needs, shareable with its thread.
    fn snapshot(&self) -> pass::Planner {
        pass::Planner {
            store: self.store.clone(),
            git: self.git.clone(),
            limits: self.limits,
            render_limits: self.render_limits,
            worker: self.worker.clone(),
            caches: self.caches.clone(),
            fleet: self.fleet.clone(),
            wanted: Mutex::default(),
        }
    }
}

/// Publishes one fetch's progress while it runs and withdraws it when
/// dropped, whichever way the fetch ends.
struct ActivityGuard {
    fetching: Arc<Mutex<HashMap<String, FetchActivity>>>,
    repo: String,
}

impl ActivityGuard {
    fn start(fetching: Arc<Mutex<HashMap<String, FetchActivity>>>, repo: &str) -> Self {
        fetching.lock().expect("fetching lock").insert(
            repo.to_owned(),
            FetchActivity {
                stage: "starting".into(),
                done: 0,
                total: None,
                started_at: rfc3339(unix_now()),
            },
        );
        Self {
            fetching,
            repo: repo.to_owned(),
        }
    }

    fn update(&self, progress: git::FetchProgress) {
        if let Some(a) = self
            .fetching
            .lock()
            .expect("fetching lock")
            .get_mut(&self.repo)
        {
            a.stage = progress.stage;
            a.done = progress.done;
            a.total = progress.total;
        }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if let Ok(mut fetching) = self.fetching.lock() {
            fetching.remove(&self.repo);
        }
    }
}

/// Parse an app's renderer settings.
pub(crate) fn renderer_of(app: &AppRecord) -> Result<RendererKind, String> {
    renderer_kind(&app.renderer, app.plugin_command.as_deref())
}

/// A renderer name and, for `plugin`, its command.
pub(crate) fn renderer_kind(
    renderer: &str,
    plugin_command: Option<&str>,
) -> Result<RendererKind, String> {
    if renderer == "plugin" {
        let command = plugin_command
            .filter(|c| !c.trim().is_empty())
            .ok_or("the plugin renderer needs --plugin-command")?;
        return Ok(RendererKind::Plugin {
            command: command.to_owned(),
        });
    }
    renderer.parse::<RendererKind>().map_err(|e| format!("{e}"))
}

/// A repo URL, trimmed, with a scheme the hub can fetch and no
/// credentials in it (they would be stored, logged, shown to viewers and
/// exported with the URL).
pub fn check_url(url: &str) -> Result<String> {
    let url = url.trim();
    if git::carries_credentials(url) {
        return Err(invalid(
            "url",
            format!(
                "{:?} carries credentials, which would be stored, logged and shown with the URL: \
                 remove them from the URL and give the user name with --username and the \
                 password or token in a file on the hub's machine with --password-file \
                 (spec.username and spec.passwordFile in a Repo document)",
                git::redact_url(url)
            ),
        ));
    }
    if !["https://", "http://", "git://", "ssh://", "file://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Err(invalid(
            "url",
            format!("{url:?}: use an https://, http://, git://, ssh:// or file:// URL"),
        ));
    }
    Ok(url.to_owned())
}

/// Repo and app names: what the Git cache accepts as a directory name.
pub(crate) fn validate_repo_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!("{name:?}: use letters, digits, '.', '_' and '-', not starting with '.'"),
        ))
    }
}

/// `a/b/`, `./a//b` -> `a/b`; the repo root is `.`; `..` and absolute paths are refused.
pub(crate) fn normalize_app_path(path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Err(invalid(
            "path",
            format!("{path:?} must be relative to the repo root"),
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(invalid("path", format!("{path:?} may not contain '..'")));
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// A webhook secret file's contents, without surrounding whitespace. An
/// empty secret is an error: anyone can sign a delivery with an empty key.
fn read_webhook_secret(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let secret = std::fs::read(path)?;
    let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
    if secret.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the webhook secret is empty, so anyone could sign a delivery; write a secret into it",
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_webhook_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, " \n").unwrap();
        let error = read_webhook_secret(&file).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(read_webhook_secret(&file).unwrap(), b"s3cret");
    }

    #[test]
    fn app_paths_are_normalized_and_confined() {
        assert_eq!(normalize_app_path("apps/web/").unwrap(), "apps/web");
        assert_eq!(normalize_app_path("./apps//web").unwrap(), "apps/web");
        assert_eq!(normalize_app_path("").unwrap(), ".");
        assert_eq!(normalize_app_path(".").unwrap(), ".");
        assert!(normalize_app_path("../etc").is_err());
        assert!(normalize_app_path("apps/../../x").is_err());
        assert!(normalize_app_path("/etc").is_err());
    }

    #[test]
    fn a_fetch_is_shown_while_it_runs_and_withdrawn_however_it_ends() {
        let fetching: Arc<Mutex<HashMap<String, FetchActivity>>> = Arc::default();
        let shown = |repo: &str| fetching.lock().unwrap().get(repo).cloned();
        let guard = ActivityGuard::start(fetching.clone(), "config");
        assert_eq!(shown("config").unwrap().stage, "starting");
        guard.update(git::FetchProgress {
            stage: "receiving pack".into(),
            done: 40,
            total: Some(100),
        });
        let now = shown("config").unwrap();
        assert_eq!(
            (now.stage.as_str(), now.done, now.total),
            ("receiving pack", 40, Some(100))
        );
        assert!(shown("other").is_none());
        // A panicking fetch drops its guard too.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = guard;
            panic!("fetch failed");
        }));
        assert!(panicked.is_err());
        assert!(shown("config").is_none());
    }

    #[test]
    fn names_are_safe_directory_names() {
        for ok in ["config", "fleet-apps", "a.b_c"] {
            assert!(validate_repo_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".git", "a/b", "a b", &"x".repeat(101)] {
            assert!(validate_repo_name(bad).is_err(), "{bad}");
        }
    }
}
