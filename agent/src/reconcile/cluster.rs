//! The agent's view of its Kubernetes API server through kube-rs: resolving
//! kinds by discovery (asking again on a miss, so a CRD applied a moment ago
//! is found), and get, server-side apply and delete of dynamic objects.

use super::live::LiveView;
use kube::api::{
    DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use tracing::debug;

/// Field manager of every write, so the API server tracks our fields apart
/// from those of controllers and people.
pub(crate) const FIELD_MANAGER: &str = "switchyard";

/// Error talking to the API server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("reading kubeconfig {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no Kubernetes configuration found (in-cluster or ~/.kube/config)")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("building the Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("unknown kind {0}: the API server does not serve it (is its CRD installed?)")]
    UnknownKind(String),
    #[error("{0}")]
    Api(String),
    /// A server-side apply refused because other field managers own fields
    /// it would change.
    #[error("{message}")]
    Conflict {
        message: String,
        conflicts: Vec<FieldConflict>,
    },
    #[error("object has no {0}")]
    Malformed(&'static str),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// One field another manager owns, from a server-side apply conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldConflict {
    pub(crate) manager: String,
    /// As the server names it: `.spec.replicas`, `.data.k`,
    /// `.spec.containers[name="web"].image`.
    pub(crate) field: String,
}

/// What the API server said, in its own words (403 forbidden, 422 invalid…).
pub(crate) fn api_error(error: kube::Error) -> Error {
    match error {
        kube::Error::Api(status) => status_error(&status),
        other => Error::Api(other.to_string()),
    }
}

fn status_error(status: &kube::core::Status) -> Error {
    let conflicts: Vec<FieldConflict> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| FieldConflict {
            manager: conflict_manager(&c.message),
            field: c.field.clone(),
        })
        .collect();
    if status.code == 409 && !conflicts.is_empty() {
        return Error::Conflict {
            message: status.message.clone(),
            conflicts,
        };
    }
    Error::Api(format!(
        "{} ({} {})",
        status.message, status.code, status.reason
    ))
}

/// The manager of a conflict cause: `conflict with "kubectl" using apps/v1`.
fn conflict_manager(message: &str) -> String {
    message
        .split_once('"')
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(|| message.to_owned(), |(manager, _)| manager.to_owned())
}

/// The object a write returned, and whether the write created it.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) object: Value,
    /// The server answered 201 Created (not 200: the object existed).
    pub(crate) created: bool,
}

impl Error {
    /// Whether retrying later may succeed (server errors, timeouts).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Api(message) => {
                // A Status reads "MESSAGE (503 ServiceUnavailable)".
                ["429", "500", "502", "503", "504"].iter().any(|code| {
                    message.contains(&format!(" {code} ")) || message.contains(&format!("({code} "))
                }) || message.contains("timed out")
                    || message.contains("connect")
            }
            _ => false,
        }
    }
}

/// Identity of one object, as kept in the inventory of what an app applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct ObjectRef {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
}

impl ObjectRef {
    pub(crate) fn of(object: &Value) -> Result<ObjectRef> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Ok(ObjectRef {
            api_version: text(&object["apiVersion"]).ok_or(Error::Malformed("apiVersion"))?,
            kind: text(&object["kind"]).ok_or(Error::Malformed("kind"))?,
            namespace: text(&object["metadata"]["namespace"]),
            name: text(&object["metadata"]["name"]).ok_or(Error::Malformed("metadata.name"))?,
        })
    }

    pub(crate) fn gvk(&self) -> GroupVersionKind {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        GroupVersionKind::gvk(group, version, &self.kind)
    }

    /// API group ("" for the core group).
    pub(crate) fn group(&self) -> String {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g.to_owned())
            .unwrap_or_default()
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A resolved kind: how to reach it and whether it lives in namespaces.
#[derive(Debug, Clone)]
pub(crate) struct Kind {
    pub(crate) resource: ApiResource,
    pub(crate) namespaced: bool,
}

/// A connection to one API server.
pub(crate) struct Cluster {
    client: Client,
    /// The same server without kube-rs's own retries, for discovery: they
    /// retry a 503 (an aggregated API server that is down) about 15 times
    /// with exponential backoff, minutes inside one pass; discovery follows
    /// [`discovery_retry`] instead.
    discovery: Client,
    kinds: Mutex<HashMap<GroupVersionKind, Kind>>,
    /// Watches of every kind the agent applied: what passes read.
    live: LiveView,
}

/// Objects per page of [`Cluster::names`], and most pages followed.
const NAMES_PAGE: u32 = 500;
const NAMES_PAGES_MAX: usize = 1_000;

/// Attempts at one kind's discovery, the first included.
const DISCOVERY_ATTEMPTS: u32 = 3;

/// Whether a failed discovery request is tried again, and after how long:
/// only answers that may change by themselves (429, 5xx) and only
/// [`DISCOVERY_ATTEMPTS`] times in all, 200 ms then 400 ms apart. A
/// discovery that still fails leaves the kind unresolved for this pass,
/// which applies and prunes nothing of it; the next pass asks again.
pub(crate) fn discovery_retry(attempt: u32, code: Option<u16>) -> Option<std::time::Duration> {
    let transient = code.is_some_and(|c| c == 429 || (500..600).contains(&c));
    (transient && attempt < DISCOVERY_ATTEMPTS)
        .then(|| std::time::Duration::from_millis(200 << (attempt - 1).min(4)))
}

impl Cluster {
    /// From `kubeconfig`, or in-cluster / `$KUBECONFIG` / `~/.kube/config`.
    pub(crate) async fn connect(
        kubeconfig: Option<&Path>,
        watch_timeout: std::time::Duration,
    ) -> Result<Cluster> {
        let config = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    Error::Kubeconfig {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(|source| Error::Kubeconfig {
                        path: path.display().to_string(),
                        source,
                    })?
            }
            None => kube::Config::infer().await.map_err(Error::Infer)?,
        };
        let mut without_retries = config.clone();
        without_retries.default_retry = false;
        let client = Client::try_from(config).map_err(Error::Client)?;
        let discovery = Client::try_from(without_retries).map_err(Error::Client)?;
        Ok(Cluster {
            live: LiveView::new(client.clone(), watch_timeout),
            client,
            discovery,
            kinds: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn live(&self) -> &LiveView {
        &self.live
    }

    /// The API server's version, e.g. `v1.30.2`.
    pub(crate) async fn version(&self) -> Result<String> {
        let info = self.client.apiserver_version().await.map_err(api_error)?;
        Ok(info.git_version)
    }

    /// Resolve a kind, asking the API server when it is not cached.
    pub(crate) async fn kind(&self, object: &ObjectRef) -> Result<Kind> {
        let gvk = object.gvk();
        if let Some(kind) = self.kinds.lock().expect("kinds lock").get(&gvk) {
            return Ok(kind.clone());
        }
        let mut attempt = 1;
        let found = loop {
            let result = kube::discovery::pinned_kind(&self.discovery, &gvk).await;
            let code = match &result {
                Err(kube::Error::Api(status)) => Some(status.code),
                _ => None,
            };
            match (&result, discovery_retry(attempt, code)) {
                (Err(e), Some(delay)) => {
                    debug!(kind = %gvk.kind, attempt, error = %e, ?delay, "discovery failed; asking again");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => break result,
            }
        };
        let (resource, caps) = match found {
            Ok(found) => found,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(Error::UnknownKind(format!(
                    "{}/{}",
                    object.api_version, object.kind
                )));
            }
            Err(kube::Error::Discovery(_)) => {
                return Err(Error::UnknownKind(format!(
                    "{}/{}",
                    object.api_version, object.kind
                )));
            }
            Err(e) => return Err(api_error(e)),
        };
        let kind = Kind {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        };
        self.kinds
            .lock()
            .expect("kinds lock")
            .insert(gvk, kind.clone());
        Ok(kind)
    }

    /// Forget a kind, so the next use asks discovery again (its CRD may
    /// have been deleted or changed).
    pub(crate) fn forget_kind(&self, object: &ObjectRef) {
        self.kinds.lock().expect("kinds lock").remove(&object.gvk());
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    pub(crate) async fn get(&self, kind: &Kind, object: &ObjectRef) -> Result<Option<Value>> {
        let api = self.api(kind, object.namespace.as_deref());
        let live = api.get_opt(&object.name).await.map_err(api_error)?;
        Ok(live.map(|o| serde_json::to_value(o).expect("objects serialize")))
    }

    /// Names of every object of `kind` in `namespace` (every namespace for
    /// cluster-scoped kinds), labelled or not: one metadata-only list, in
    /// pages, so that one request answers "does it exist" for every object
    /// of a pass that the live view does not hold.
    pub(crate) async fn names(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
    ) -> Result<HashSet<String>> {
        let api = self.api(kind, namespace);
        let mut names = HashSet::new();
        let mut params = ListParams::default().limit(NAMES_PAGE);
        // Bounded: a server that keeps sending continue tokens is not
        // followed forever.
        for _ in 0..NAMES_PAGES_MAX {
            let page = api.list_metadata(&params).await.map_err(api_error)?;
            names.extend(page.items.into_iter().filter_map(|o| o.metadata.name));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(names),
            }
        }
        Err(Error::Api(format!(
            "listing {}: more than {} pages",
            kind.resource.plural, NAMES_PAGES_MAX
        )))
    }

    /// Server-side apply with our field manager. Without `force`, fields
    /// other managers own make it fail with [`Error::Conflict`] and change
    /// nothing. Sent as a raw request, because only the status code says
    /// whether the apply created the object (201) or found it (200).
    pub(crate) async fn apply(
        &self,
        kind: &Kind,
        object: &ObjectRef,
        body: &Value,
        force: bool,
    ) -> Result<Written> {
        let api = self.api(kind, object.namespace.as_deref());
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        let request = kube::core::Request::new(api.resource_url())
            .patch(&object.name, &params, &Patch::Apply(body))
            .map_err(|e| Error::Api(format!("building the apply request: {e}")))?;
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(api_error)?;
        let code = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(api_error)?;
        if !(200..300).contains(&code) {
            return Err(match serde_json::from_slice::<kube::core::Status>(&bytes) {
                Ok(status) => status_error(&status),
                Err(_) => Error::Api(format!(
                    "{} ({code})",
                    String::from_utf8_lossy(&bytes).trim()
                )),
            });
        }
        let written: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Api(format!("the apply answer is not an object: {e}")))?;
        self.live.record(object, &written);
        Ok(Written {
            object: written,
            created: code == 201,
        })
    }

    /// Create (POST) `body` in `namespace`: for hooks, which are created
    /// once per run rather than applied, and may be named by
    /// `generateName`; the answer carries the name the server gave. An
    /// object of that name that exists already is an error (409).
    pub(crate) async fn create(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        let api = self.api(kind, namespace);
        let object: DynamicObject =
            serde_json::from_value(body.clone()).map_err(|_| Error::Malformed("a hook object"))?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let created = api.create(&params, &object).await.map_err(api_error)?;
        Ok(serde_json::to_value(created).expect("objects serialize"))
    }

    /// Replace (PUT) the object with `body`, for objects whose sync options
    /// say `Replace=true`: every field `body` does not set is dropped, not
    /// only those our field manager owned.
    pub(crate) async fn replace(
        &self,
        kind: &Kind,
        object: &ObjectRef,
        body: &Value,
    ) -> Result<Written> {
        let api = self.api(kind, object.namespace.as_deref());
        let dynamic: DynamicObject = serde_json::from_value(body.clone())
            .map_err(|_| Error::Malformed("an object to replace"))?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let replaced = api
            .replace(&object.name, &params, &dynamic)
            .await
            .map_err(api_error)?;
        let written = serde_json::to_value(replaced).expect("objects serialize");
        self.live.record(object, &written);
        Ok(Written {
            object: written,
            created: false,
        })
    }

    /// Delete in the background, as kubectl does: dependents are collected
    /// by the garbage collector. The `uid` precondition makes the server
    /// refuse (409) when the name now belongs to another object than the
    /// one the decision was about.
    pub(crate) async fn delete(&self, kind: &Kind, object: &ObjectRef, uid: &str) -> Result<()> {
        let api = self.api(kind, object.namespace.as_deref());
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&object.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(api_error(e)),
        }
        self.live.forget(object);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_refs_name_group_version_and_kind() {
        let r = ObjectRef::of(&serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}
        }))
        .unwrap();
        assert_eq!(r.gvk(), GroupVersionKind::gvk("apps", "v1", "Deployment"));
        assert_eq!(r.group(), "apps");
        assert_eq!(r.to_string(), "Deployment shop/web");
        let core = ObjectRef::of(&serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}
        }))
        .unwrap();
        assert_eq!(core.gvk(), GroupVersionKind::gvk("", "v1", "Namespace"));
        assert!(ObjectRef::of(&serde_json::json!({"kind": "X"})).is_err());
    }

    #[test]
    fn discovery_is_asked_at_most_three_times_and_only_for_transient_answers() {
        use std::time::Duration;
        assert_eq!(
            discovery_retry(1, Some(503)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            discovery_retry(2, Some(500)),
            Some(Duration::from_millis(400))
        );
        assert_eq!(
            discovery_retry(2, Some(429)),
            Some(Duration::from_millis(400))
        );
        assert_eq!(discovery_retry(3, Some(503)), None);
        let unavailable = status_error(
            &serde_json::from_value(serde_json::json!({
                "status": "Failure", "code": 503, "reason": "ServiceUnavailable", "message": "down"
            }))
            .unwrap(),
        );
        assert!(unavailable.is_transient(), "{unavailable}");
        // Answers that will not change by themselves, and transport errors
        // (which kube-rs does not retry either), end at once.
        for code in [Some(404), Some(403), Some(401), None] {
            assert_eq!(discovery_retry(1, code), None, "{code:?}");
        }
    }

    #[test]
    fn apply_conflicts_name_their_managers_and_fields() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
            "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
            "details": {"causes": [{"reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.replicas"}]}
        }))
        .unwrap();
        match status_error(&status) {
            Error::Conflict { conflicts, .. } => assert_eq!(
                conflicts,
                [FieldConflict {
                    manager: "kubectl-edit".into(),
                    field: ".spec.replicas".into()
                }]
            ),
            other => panic!("{other:?}"),
        }
        // A 409 without conflict causes (a stale resourceVersion) is plain.
        let stale: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 409, "reason": "Conflict", "message": "the object has been modified"
        }))
        .unwrap();
        assert!(matches!(status_error(&stale), Error::Api(m) if m.contains("409")));
    }
}
