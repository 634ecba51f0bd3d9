//! GitOps on the hub: repos it follows, apps rendered from them, the commit
//! each app deploys (with history, manual approval and rollback), and the
//! assignments that tell every cluster which bundles to run.
//!
//! Work that must not multiply with the fleet is done once: an app is
//! rendered once per commit, and a bundle is shared by every cluster whose
//! substituted objects are identical (all of them, when the app uses no
//! `${cluster.…}` variable).
//!
//! By concern: `repos` (following repos, fetching them), `webhooks` (forge
//! deliveries), `apps` (an app's lifecycle: create, change, delete, how it
//! is shown), `revisions` (history, `sync` and `rollback`; the automatic
//! choice of a commit is `pass`'s `resolve`), `groups`, `requests` (what
//! the admin API sends and is shown), and the planning pass itself
//! (`pass`, `plan`) with its pollers (`poll`).

mod apps;
mod charts;
mod groups;
mod helm;
mod inputs;
mod manifests;
mod pass;
mod plan;
mod poll;
mod renders;
mod repos;
mod requests;
mod revisions;
mod webhooks;
pub use switchyard_common::webhook;

use crate::fleet::Fleet;
use crate::git::{self, FetchLimits, GitCache};
use crate::render::sandbox::{RenderLimits, Worker};
use crate::store::{self, Store};
use crate::tree::TreeLimits;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_common::proto::Notification;
use tracing::{debug, warn};

pub(crate) use apps::{normalize_app_path, renderer_kind, renderer_of};
pub(crate) use apps::{validate_directory, validate_ignore_differences};
pub use groups::{GroupRequest, GroupView, validate_group};
pub use helm::{parse_values_for, validate as validate_helm};
pub use manifests::ManifestsView;
pub use repos::{check_oci_url, check_plain_http, check_url};
pub use requests::{AppRequest, AppView, FetchActivity, RepoRequest, RepoView, RevisionView};
pub use webhooks::WebhookRefusal;

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
    #[error(transparent)]
    Name(#[from] switchyard_common::NameError),
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Git(#[from] git::Error),
    #[error("{0}")]
    Chart(#[from] crate::charts::Error),
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
    /// A stored bundle could not be read back.
    #[error("{0}")]
    Bundle(String),
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

/// The hub's GitOps engine.
pub struct GitOps {
    store: Arc<dyn Store>,
    fleet: Arc<Fleet>,
    git: Arc<GitCache>,
    /// Chart archives from chart repositories, by digest.
    chart_cache: PathBuf,
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
            // Repo names never start with '.': no repo's clone is there.
            chart_cache: repos_dir.join(".charts"),
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
            chart_cache: self.chart_cache.clone(),
            limits: self.limits,
            render_limits: self.render_limits,
            worker: self.worker.clone(),
            caches: self.caches.clone(),
            fleet: self.fleet.clone(),
            wanted: Mutex::default(),
        }
    }
}
