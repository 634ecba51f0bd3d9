//! A fake Kubernetes API server over plain HTTP, for driving kube-rs clients in tests.
//!
//! [`FakeKube::start`] binds `127.0.0.1:0` and serves the JSON protocol a real API server
//! speaks to kube-rs: discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/{g}`,
//! `/apis/{g}/{v}`, and aggregated discovery `apidiscovery.k8s.io/v2` when the `Accept`
//! header asks for it), and get/list/watch/create/update/patch/delete/deletecollection on
//! namespaced and cluster-scoped paths, with `Status` error bodies and real status codes.
//!
//! Connecting kube-rs (a dev-dependency of this crate, not of the library):
//!
//! ```ignore
//! let _ = rustls::crypto::ring::default_provider().install_default();
//! let fake = FakeKube::start().await;
//! let config = kube::Config::new(fake.url().parse()?);
//! let client = kube::Client::try_from(config)?;
//! // or, for a binary that takes `--kubeconfig FILE`:
//! fake.write_kubeconfig(&path)?;
//! ```
//!
//! # What is modelled
//! - Built-in types: core/v1 namespaces, configmaps, secrets, services, pods,
//!   serviceaccounts, persistentvolumeclaims; apps/v1 deployments, statefulsets,
//!   daemonsets, replicasets; batch/v1 jobs; networking.k8s.io/v1 ingresses;
//!   rbac.authorization.k8s.io/v1 roles, rolebindings, clusterroles, clusterrolebindings;
//!   apiextensions.k8s.io/v1 customresourcedefinitions. Namespaces `default`,
//!   `kube-system`, `kube-public` and `kube-node-lease` exist from the start.
//! - CRDs: a created/applied CRD is validated lightly (name = plural.group, one storage
//!   version), then gets `NamesAccepted` and `Established` (now, or after
//!   [`FakeKube::set_crd_establish_delay`]); only established CRDs are served and
//!   discoverable. Deleting a CRD deletes its custom resources.
//! - Metadata: uid, creationTimestamp, a global resourceVersion counter, generation
//!   (bumped when anything outside metadata/status changes), finalizers with
//!   deletionTimestamp, ownerReference cascading delete (unless `Orphan`), namespace
//!   deletion removing its contents, and writing into a missing namespace answering
//!   `404 namespaces "x" not found`.
//! - Server-side apply: `fieldManager` required (422), create-on-apply, recursive map
//!   merge with lists replaced atomically, `managedFields` per manager (`Apply` and
//!   `Update` operations, FieldsV1 encoding), removal of fields a manager stops applying
//!   (unless someone else owns them), conflicts (409) with other managers' differing
//!   fields unless `force=true`, resourceVersion preconditions, no-op applies that change
//!   nothing (no new resourceVersion, no watch event). Status in an applied body is ignored.
//! - Merge patch (strategic merge patch is treated as a merge patch for built-ins and is
//!   415 for custom resources), JSON patch, PUT with resourceVersion conflicts, `/status`
//!   subresource writes, `dryRun=All`, label selectors (`=`, `==`, `!=`, `k`, `!k`,
//!   `in`, `notin`), field selectors on any dotted path, `limit`/`continue` paging,
//!   metadata-only `get` (`as=PartialObjectMetadata`).
//! - Watch: `watch=true|1`, replay from a resourceVersion, `resourceVersion` 0/empty
//!   sends synthetic ADDED events, `sendInitialEvents` ends the initial list with an
//!   `initial-events-end` bookmark, `timeoutSeconds`; [`FakeKube::compact`] makes older
//!   versions answer an ERROR event with `410 Expired` (kube-rs's watcher then
//!   re-lists). With `allowWatchBookmarks=true`, a BOOKMARK event every
//!   [`FakeKube::set_bookmark_interval`] (default 1 s; a real server: about a
//!   minute) carrying the latest resourceVersion the watch has been offered,
//!   including changes its selectors filtered out, so a client resuming from it
//!   after a compaction is not 410'd.
//! - Load: every request spends [`FakeKube::set_latency`] (default
//!   [`DEFAULT_LATENCY`], 2 ms) before it is served, holding no lock, so
//!   concurrent requests overlap as on a real server; the state lock is held
//!   only for each state change. [`FakeKube::set_max_in_flight`] answers 429
//!   TooManyRequests with `Retry-After` (header and `details.retryAfterSeconds`)
//!   beyond a number of requests in flight, like API Priority and Fairness
//!   without its queues (rejected at once, not after queueing); a watch counts
//!   only until its stream starts. [`FakeKube::in_flight_high_water`] and
//!   [`FakeKube::throttled_requests`] show what a client did.
//! - Test hooks: request recording (with arrival time), object inspection and
//!   out-of-band edits, a racing create just before a client's write
//!   ([`FakeKube::create_before_next_write`]), 403 (a whole resource, or one verb with
//!   [`FakeKube::forbid_verb`])/5xx/admission (422) fault
//!   injection.
//!
//! # What is NOT modelled
//! - No authentication or authorization (everything is allowed unless [`FakeKube::forbid`]).
//! - No strategic merge semantics (no list merge keys): lists are atomic everywhere, and
//!   field ownership tracks map keys only (no `k:`/`v:` list entries).
//! - No defaulting (e.g. Deployment `spec.replicas`, `strategy`) and no schema
//!   validation of objects or CRD openAPI schemas; no CRD version conversion (objects are
//!   served under any served version as stored).
//! - No controllers: Deployments never become Available, Pods never run, Jobs never
//!   finish; use [`FakeKube::set_status`]. Namespaces are deleted immediately (no
//!   Terminating phase); garbage collection is synchronous.
//! - Watches do not send DELETED/ADDED when an object's labels move it out of or into a
//!   label selector (they filter on the current object).
//! - History is never compacted by itself (only by [`FakeKube::compact`]); a real
//!   server keeps a few minutes of watch history. Latency is the same for every
//!   request (no per-verb cost, no slower lists of many objects), and no priority
//!   levels or flow schemas: one in-flight limit for everything.
//! - List continue tokens are offsets over the live state, not snapshots.
//! - Only HTTP/1.1 JSON: no protobuf, no Table output, no websockets (exec/logs), no TLS.

mod discovery;
mod error;
mod fields;
mod handlers;
mod selector;
mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

pub use discovery::ResourceType;
pub use error::ApiError;
pub use selector::{FieldSelector, LabelSelector};

use store::{Store, WriteOpts};

/// One HTTP request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub content_type: Option<String>,
    /// When it arrived, since the fake started (for checking a client's
    /// back-off spacing, e.g. that a retry honoured `Retry-After`).
    pub at: Duration,
}

impl RecordedRequest {
    /// Whether this request could change state (anything but GET, HEAD and OPTIONS).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    pub fn is_watch(&self) -> bool {
        self.method == "GET"
            && self
                .query
                .split('&')
                .any(|kv| kv == "watch=true" || kv == "watch=1")
    }

    /// The value of one query parameter (not percent-decoded).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Mutable server state, behind one lock that is never held across an await.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) fail_next: Vec<u16>,
    /// (group, plural, namespace or all namespaces)
    pub(crate) forbidden: Vec<(String, String, Option<String>)>,
    /// (group, plural, verb): one verb refused everywhere.
    pub(crate) forbidden_verbs: Vec<(String, String, String)>,
    /// (kind, name)
    pub(crate) admission_rejects: Vec<(String, String)>,
    pub(crate) crd_delay: Duration,
    pub(crate) discovery_faults: Vec<DiscoveryFault>,
    /// (request path, object): created out of band just before the first
    /// write to that path, as when someone else wins a race to create it.
    pub(crate) created_before_write: Vec<(String, Value)>,
    /// Requests the in-flight limit answered 429, in order.
    pub(crate) throttled: Vec<RecordedRequest>,
    /// Spent by every request before it is served, outside this lock.
    pub(crate) latency: Duration,
    /// Requests served at once before more are answered 429 (`None`: no limit).
    pub(crate) max_in_flight: Option<usize>,
    /// The `Retry-After` (seconds) of a 429 for the in-flight limit.
    pub(crate) retry_after_secs: u64,
    /// How often a watch that allows bookmarks gets one.
    pub(crate) bookmark_interval: Duration,
}

/// An injected failure of one group/version's discovery document.
#[derive(Debug, Clone)]
pub(crate) struct DiscoveryFault {
    /// "" for the core group.
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) code: u16,
    /// How many more requests fail; `None` for every one until cleared.
    pub(crate) remaining: Option<usize>,
}

impl Inner {
    /// Whether a GET of `group`/`version`'s resource list fails now, and with
    /// which code (consuming one use of a counted fault).
    pub(crate) fn take_discovery_fault(&mut self, group: &str, version: &str) -> Option<u16> {
        let index = self
            .discovery_faults
            .iter()
            .position(|f| f.group == group && f.version == version && f.remaining != Some(0))?;
        let fault = &mut self.discovery_faults[index];
        if let Some(n) = &mut fault.remaining {
            *n -= 1;
        }
        Some(fault.code)
    }
}

impl Inner {
    /// Built-in types plus the types of every established CRD.
    pub(crate) fn types(&self) -> Vec<ResourceType> {
        let mut types = discovery::builtins();
        for crd in self
            .store
            .all("apiextensions.k8s.io", "customresourcedefinitions")
        {
            if discovery::crd_established(&crd) {
                types.extend(discovery::crd_types(&crd));
            }
        }
        types
    }

    fn resolve(&self, resource: &str) -> Result<ResourceType, ApiError> {
        resolve_ref(&self.types(), resource).ok_or(ApiError::NoResource)
    }

    /// Create `obj` (type from its apiVersion/kind) as someone else would.
    fn create_out_of_band(&mut self, obj: Value) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let t = self.resolve(&format!("{api_version}/{kind}"))?;
        self.store.create(&t, &ns, obj, &out_of_band())
    }
}

pub(crate) struct Shared {
    state: Mutex<Inner>,
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) load: Load,
    pub(crate) started: std::time::Instant,
}

/// Requests being served right now, counted outside the state lock so that
/// counting never serialises them.
#[derive(Default)]
pub(crate) struct Load {
    in_flight: AtomicUsize,
    high_water: AtomicUsize,
    throttled: AtomicUsize,
}

impl Load {
    /// Admits one request unless `limit` requests are already being served,
    /// as API Priority and Fairness does (without its queues: over the
    /// limit is an immediate 429). The request counts until the guard drops;
    /// a watch counts only until its stream starts, like a real server's
    /// long-running requests.
    pub(crate) fn admit(&self, limit: Option<usize>) -> Option<InFlight<'_>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        if limit.is_some_and(|limit| now > limit) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        self.high_water.fetch_max(now, Ordering::SeqCst);
        Some(InFlight(self))
    }
}

/// One admitted request; dropping it (answered, or the client left) ends it.
pub(crate) struct InFlight<'a>(&'a Load);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic in a test hook must not wedge every later request.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// Finds a served type from `deployments`, `Deployment`, `deployments.apps`,
/// `apps/v1/deployments`, `apps/v1/Deployment` or `v1/configmaps`.
fn resolve_ref(types: &[ResourceType], s: &str) -> Option<ResourceType> {
    let (prefix, last) = match s.rsplit_once('/') {
        Some((p, l)) => (Some(p), l),
        None => (None, s),
    };
    types
        .iter()
        .find(|t| {
            let name_ok = t.plural == last
                || t.kind.eq_ignore_ascii_case(last)
                || (!t.group.is_empty() && format!("{}.{}", t.plural, t.group) == last);
            name_ok && prefix.is_none_or(|p| p == t.api_version() || p == t.group)
        })
        .cloned()
}

/// Per-request latency of a fresh fake: what a small real control plane
/// (one API server, local etcd) answers a get or an apply in. Low enough that
/// a test of a few dozen objects slows by well under a second, high enough
/// that a client sending requests one after another is measurably slower
/// than one sending them concurrently, as against a real server.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(2);

/// A real API server sends a bookmark about once a minute; the fake sends
/// one a second so tests see them without waiting.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// A running fake API server; stops when dropped or on [`FakeKube::shutdown`].
pub struct FakeKube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

impl FakeKube {
    /// Starts serving on `127.0.0.1:0`. Panics if no loopback port can be bound.
    pub async fn start() -> FakeKube {
        Self::try_start()
            .await
            .expect("bind 127.0.0.1:0 for the fake Kubernetes API")
    }

    pub async fn try_start() -> std::io::Result<FakeKube> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                store: Store::new(),
                requests: Vec::new(),
                fail_next: Vec::new(),
                forbidden: Vec::new(),
                forbidden_verbs: Vec::new(),
                admission_rejects: Vec::new(),
                crd_delay: Duration::ZERO,
                discovery_faults: Vec::new(),
                created_before_write: Vec::new(),
                throttled: Vec::new(),
                latency: DEFAULT_LATENCY,
                max_in_flight: None,
                retry_after_secs: 1,
                bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
            }),
            shutdown,
            load: Load::default(),
            started: std::time::Instant::now(),
        });
        let app = axum::Router::new()
            .fallback(handlers::handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::warn!("fake kube server ended: {e}");
            }
        });
        Ok(FakeKube {
            shared,
            addr,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig with one context (`fake-kube`, namespace `default`) and no credentials.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake-kube\n  cluster:\n    \
             server: {url}\ncontexts:\n- name: fake-kube\n  context:\n    cluster: fake-kube\n    \
             user: fake-kube\n    namespace: default\ncurrent-context: fake-kube\nusers:\n\
             - name: fake-kube\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`FakeKube::kubeconfig_yaml`] to `path`, for binaries taking `--kubeconfig`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Stops accepting, ends open watches, and waits (bounded) for the server to finish.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.with(|s| s.requests.clone())
    }

    /// Requests that could change state (see [`RecordedRequest::is_write`]).
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_write)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.with(|s| s.requests.clear());
    }

    /// The stored object, as a GET would return it. `resource` is resolved like
    /// `deployments`, `Deployment`, `deployments.apps`, `apps/v1/deployments`;
    /// `namespace` is ignored for cluster-scoped types.
    pub fn object(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.shared.with(|s| {
            let t = s.resolve(resource).ok()?;
            s.store.get(&t, namespace.unwrap_or(""), name).ok()
        })
    }

    /// All stored objects of a type, in one namespace or all.
    pub fn objects(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.shared.with(|s| match s.resolve(resource) {
            Ok(t) => s.store.list(
                &t,
                namespace,
                &LabelSelector::default(),
                &FieldSelector::default(),
            ),
            Err(_) => Vec::new(),
        })
    }

    /// Creates an object directly (type from its apiVersion/kind), as a seeding step.
    pub fn create_object(&self, obj: Value) -> Result<Value, ApiError> {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let created = self.shared.with(|s| s.create_out_of_band(obj))?;
        if kind == "CustomResourceDefinition" {
            let name = created["metadata"]["name"].as_str().unwrap_or_default();
            self.establish_now_or_later(name);
        }
        Ok(created)
    }

    fn establish_now_or_later(&self, name: &str) {
        let delay = self.shared.with(|s| s.crd_delay);
        let shared = Arc::clone(&self.shared);
        let name = name.to_string();
        let establish = move || {
            shared.with(|s| {
                if let Ok(t) = s.resolve("customresourcedefinitions") {
                    s.store.establish_crd(&t, &name);
                }
            })
        };
        if delay.is_zero() {
            establish();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                establish();
            });
        }
    }

    /// Replaces `.status`, as a controller would (new resourceVersion, MODIFIED event,
    /// generation unchanged).
    pub fn set_status(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        let opts = WriteOpts {
            status_only: true,
            ..out_of_band()
        };
        self.shared.with(|s| {
            let t = s.resolve(resource)?;
            s.store.patch(
                &t,
                namespace.unwrap_or(""),
                name,
                |o| {
                    o["status"] = status;
                    Ok(())
                },
                &opts,
            )
        })
    }

    /// Simulates drift: a JSON merge patch by field manager `out-of-band` (an `Update`),
    /// which takes ownership of the fields it changes.
    pub fn patch_out_of_band(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        merge: Value,
    ) -> Result<Value, ApiError> {
        self.shared.with(|s| {
            let t = s.resolve(resource)?;
            s.store.patch(
                &t,
                namespace.unwrap_or(""),
                name,
                |o| {
                    fields::merge_patch(o, &merge);
                    Ok(())
                },
                &out_of_band(),
            )
        })
    }

    /// Simulates drift: deletes an object (finalizers are honoured, like a real delete).
    pub fn delete_out_of_band(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        self.shared.with(|s| {
            let t = s.resolve(resource)?;
            s.store
                .delete(
                    &t,
                    namespace.unwrap_or(""),
                    name,
                    &serde_json::json!({}),
                    false,
                )
                .map(|_| ())
        })
    }

    /// Answers 403 Forbidden to every request on `resource`, in `namespace` or everywhere.
    /// Panics if `resource` is not a served type (a test bug, not an input error).
    pub fn forbid(&self, resource: &str, namespace: Option<&str>) {
        self.shared.with(|s| {
            let t = s
                .resolve(resource)
                .unwrap_or_else(|_| panic!("forbid: unknown resource {resource:?}"));
            s.forbidden
                .push((t.group, t.plural, namespace.map(str::to_string)));
        })
    }

    /// Answers 403 Forbidden to `verb` (`list`, `watch`, `get`, `patch`…) on
    /// `resource` in every namespace, as RBAC granting the other verbs.
    /// Panics if `resource` is not a served type.
    pub fn forbid_verb(&self, resource: &str, verb: &str) {
        self.shared.with(|s| {
            let t = s
                .resolve(resource)
                .unwrap_or_else(|_| panic!("forbid_verb: unknown resource {resource:?}"));
            s.forbidden_verbs
                .push((t.group, t.plural, verb.to_string()));
        })
    }

    /// The discovery document of `group`/`version` (`/api/{version}` for the
    /// core group "", `/apis/{group}/{version}` otherwise) answers `code`, as
    /// when an aggregated API server is down (503) or discovery breaks (500):
    /// `times` requests, or every one until [`FakeKube::clear_discovery_faults`].
    /// The objects themselves stay reachable on their resource paths.
    pub fn fail_discovery(&self, group: &str, version: &str, code: u16, times: Option<usize>) {
        self.shared.with(|s| {
            s.discovery_faults.push(DiscoveryFault {
                group: group.to_string(),
                version: version.to_string(),
                code,
                remaining: times,
            })
        });
    }

    pub fn clear_discovery_faults(&self) {
        self.shared.with(|s| s.discovery_faults.clear());
    }

    /// Someone else creates `obj` just before the next write (create,
    /// apply, update, patch) to `path` (`/api/v1/namespaces/web`) is
    /// handled: the race between a client's read, which found nothing, and
    /// its create. The write then meets the object.
    pub fn create_before_next_write(&self, path: &str, obj: Value) {
        self.shared
            .with(|s| s.created_before_write.push((path.to_string(), obj)));
    }

    /// The same as [`FakeKube::set_latency`]: a slow or overloaded API
    /// server (zero: answers at once).
    pub fn set_delay(&self, delay: Duration) {
        self.set_latency(delay);
    }

    /// Lifts every [`FakeKube::forbid`] and [`FakeKube::forbid_verb`].
    pub fn allow_all(&self) {
        self.shared.with(|s| {
            s.forbidden.clear();
            s.forbidden_verbs.clear();
        });
    }

    /// The next `n` requests (of any kind, discovery included) fail with `code`
    /// (500 → InternalError, 503 → ServiceUnavailable, 429 → TooManyRequests, ...).
    /// kube-rs retries 429/503/504 by itself with its default config.
    pub fn fail_next(&self, n: usize, code: u16) {
        self.shared
            .with(|s| s.fail_next.extend(std::iter::repeat_n(code, n)));
    }

    /// Create, apply, update and patch of this kind/name answer 422 Invalid, as a
    /// validating admission webhook that denies the request.
    pub fn set_admission_reject(&self, kind: &str, name: &str) {
        self.shared.with(|s| {
            s.admission_rejects
                .push((kind.to_string(), name.to_string()))
        });
    }

    pub fn clear_admission_rejects(&self) {
        self.shared.with(|s| s.admission_rejects.clear());
    }

    /// How long after a CRD write it becomes Established (default: immediately).
    pub fn set_crd_establish_delay(&self, delay: Duration) {
        self.shared.with(|s| s.crd_delay = delay);
    }

    /// Every request waits `latency` before it is served (default
    /// [`DEFAULT_LATENCY`]), holding no lock meanwhile, so concurrent requests
    /// overlap as on a real server. Zero serves at once.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.with(|s| s.latency = latency);
    }

    /// At most `limit` requests are served at once; more answer 429
    /// TooManyRequests with `Retry-After: retry_after_secs` (default: no limit).
    /// Watches count only until their stream starts.
    pub fn set_max_in_flight(&self, limit: Option<usize>, retry_after_secs: u64) {
        self.shared.with(|s| {
            s.max_in_flight = limit;
            s.retry_after_secs = retry_after_secs;
        });
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> usize {
        self.shared.load.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever served at once (each counted from admission to
    /// its answer, latency included).
    pub fn in_flight_high_water(&self) -> usize {
        self.shared.load.high_water.load(Ordering::SeqCst)
    }

    /// How many requests the in-flight limit answered 429.
    pub fn throttled(&self) -> usize {
        self.shared.load.throttled.load(Ordering::SeqCst)
    }

    /// The requests the in-flight limit answered 429, in order (each is also
    /// in [`FakeKube::requests`]).
    pub fn throttled_requests(&self) -> Vec<RecordedRequest> {
        self.shared.with(|s| s.throttled.clone())
    }

    /// How often a watch sent with `allowWatchBookmarks=true` gets a BOOKMARK
    /// event (default [`DEFAULT_BOOKMARK_INTERVAL`]); applies to new watches.
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.shared.with(|s| s.bookmark_interval = every);
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.with(|s| s.store.resource_version())
    }

    /// Forgets the event history: watches from an older resourceVersion get 410 Expired.
    pub fn compact(&self) {
        self.shared.with(|s| s.store.compact());
    }

    /// Every served type (built-ins and established CRDs).
    pub fn resource_types(&self) -> Vec<ResourceType> {
        self.shared.with(|s| s.types())
    }
}

fn out_of_band() -> WriteOpts {
    WriteOpts {
        manager: "out-of-band".into(),
        ..WriteOpts::default()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
