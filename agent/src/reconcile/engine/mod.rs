//! The applier: one reconcile of one app. It reads the cluster, asks the
//! pure decisions in `plan` what to do with each object (in the phases of
//! `order`), and executes them: creates that record their creation, applies
//! without force (forcing only where `plan` says), bounded waits for CRDs,
//! and prunes in reverse order with a uid precondition.
//!
//! A no-op reconcile sends no request per object: the live object comes
//! from the live view (`live`, kept by watches) and is compared
//! (`compare::is_applied`) before anything is written. Objects the view
//! does not hold are looked for with one metadata-only list per kind and
//! namespace before they are created; kinds whose view is not synced are
//! read object by object.
//!
//! Objects of one phase are applied concurrently (at most
//! `apply_concurrency` at once); a phase starts when the one before it is
//! done, so the order between waves and phases holds.

use super::cluster::{Cluster, Error as ClusterError, Kind, ObjectRef, Written};
use super::live::Seen;
use super::plan::{self, FoundExisting, OnConflict, Options, Prune, Record, Step};
use super::{compare, health, order};
use crate::clock::unix_now;
use futures_util::StreamExt;
use kube::core::GroupVersionKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use switchyard_common::proto::{AppStatus, AssignmentItem, Health, ResourceStatus, SyncStatus};
use tracing::{debug, info, warn};

mod hooks;
mod preview;
mod prune;

pub(crate) use hooks::HookRecord;
pub(crate) use preview::{Preview, preview_app};

pub(crate) use prune::remove_app;
use prune::{in_prune_order, prune_one};

pub(crate) use super::plan::APP_LABEL;
/// Conventional label marking objects managed by a tool.
pub(crate) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotation naming the hub (its CA fingerprint) the object came from.
pub(crate) const HUB_ANNOTATION: &str = "switchyard.dev/hub";

/// How long to wait for a CRD to be Established before applying its objects.
const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a pass waits for the live views it just started to sync
/// before reading those kinds object by object instead.
const VIEW_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Names found by the metadata-only lists of one pass, per kind and
/// namespace: whether an object the live view lacks exists unlabelled.
#[derive(Default)]
struct Existing {
    names: tokio::sync::Mutex<HashMap<KindIn, HashSet<String>>>,
}

/// A kind in one namespace (`None`: cluster-scoped).
type KindIn = (GroupVersionKind, Option<String>);

/// The live object: from the live view when it is synced; from the API
/// server when the view is not synced, or when the view lacks it but one
/// metadata-only list of its kind and namespace (once per pass) says it
/// exists (without our label: not adopted silently, see `plan`).
async fn read_live(
    cluster: &Cluster,
    kind: &Kind,
    reference: &ObjectRef,
    existing: &Existing,
) -> Result<Option<Arc<Value>>, ClusterError> {
    match cluster.live().lookup(reference) {
        Seen::Present(object) => Ok(Some(object)),
        Seen::NotReady => {
            let object = cluster.get(kind, reference).await?;
            // Into the view (a no-op unless it is newer, or the view's copy
            // was stripped under other kept managers), so the next pass
            // need not read it again.
            if let Some(object) = &object
                && cluster.live().ready(reference)
            {
                cluster.live().record(reference, object);
            }
            Ok(object.map(Arc::new))
        }
        Seen::Absent => {
            let namespace = reference.namespace.clone().filter(|_| kind.namespaced);
            let mut names = existing.names.lock().await;
            let key = (reference.gvk(), namespace.clone());
            let found = match names.get(&key) {
                Some(set) => set.contains(&reference.name),
                None => {
                    let set = cluster.names(kind, namespace.as_deref()).await?;
                    let found = set.contains(&reference.name);
                    names.insert(key, set);
                    found
                }
            };
            drop(names);
            if found {
                Ok(cluster.get(kind, reference).await?.map(Arc::new))
            } else {
                Ok(None)
            }
        }
    }
}

/// What an app last applied, kept on disk between reconciles and restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    pub(crate) digest: String,
    pub(crate) prune: bool,
    /// The app's last policy about Namespaces and CRDs, for app deletion.
    #[serde(default)]
    pub(crate) prune_namespaces: bool,
    #[serde(default)]
    pub(crate) prune_crds: bool,
    /// The objects the app manages (created or adopted).
    pub(crate) inventory: BTreeSet<ObjectRef>,
    /// Objects of this digest not applied yet (errors): retried on every
    /// pass even without self-heal, since the cluster never had them right.
    #[serde(default)]
    pub(crate) failed: BTreeSet<ObjectRef>,
    /// The creation record: uid of each object whose create the server
    /// answered 201. Only these may ever be deleted.
    #[serde(default, with = "pairs")]
    pub(crate) created: BTreeMap<ObjectRef, String>,
    /// Field paths of the last successful apply of each object: fields
    /// Switchyard owned, which self-heal may take back by force. Objects of
    /// one shape (a chart's Deployments) share one set.
    #[serde(default, with = "field_sets")]
    pub(crate) fields: BTreeMap<ObjectRef, FieldSet>,
    /// The app's hook runs at its last commit, and the hook objects this
    /// agent created and did not delete yet.
    #[serde(default)]
    pub(crate) hooks: HookRecord,
    /// The app's explicit sync this state answered (see
    /// `AssignmentItem::sync_requested`).
    #[serde(default)]
    pub(crate) sync_requested: u64,
}

impl AppliedState {
    fn options(&self) -> Options {
        Options {
            prune: self.prune,
            prune_namespaces: self.prune_namespaces,
            prune_crds: self.prune_crds,
            ..Options::default()
        }
    }
}

/// The field paths one apply wrote, shared between objects of one shape.
pub(crate) type FieldSet = Arc<BTreeSet<String>>;

/// `fields` with equal sets made one shared set: thousands of objects of a
/// few shapes hold a few sets instead of one each.
fn shared_field_sets(fields: BTreeMap<ObjectRef, FieldSet>) -> BTreeMap<ObjectRef, FieldSet> {
    let mut seen: std::collections::HashSet<FieldSet> = std::collections::HashSet::new();
    fields
        .into_iter()
        .map(|(reference, set)| {
            let shared = match seen.get(&set) {
                Some(held) => held.clone(),
                None => {
                    seen.insert(set.clone());
                    set
                }
            };
            (reference, shared)
        })
        .collect()
}

/// [`AppliedState::fields`] as pairs (see [`pairs`]), equal sets shared
/// again when read.
mod field_sets {
    use super::{FieldSet, ObjectRef};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::{BTreeMap, BTreeSet};

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<ObjectRef, FieldSet>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter().map(|(k, v)| (k, &**v)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<ObjectRef, FieldSet>, D::Error> {
        let pairs = Vec::<(ObjectRef, BTreeSet<String>)>::deserialize(deserializer)?;
        Ok(super::shared_field_sets(
            pairs.into_iter().map(|(k, v)| (k, v.into())).collect(),
        ))
    }
}

/// Maps keyed by objects, as JSON lists of pairs (JSON keys are strings).
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub(super) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// Write to the cluster, or only say what would be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Apply,
    DryRun,
}

/// The result of reconciling one app.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: AppStatus,
    /// State to remember; `None` leaves the previous one.
    pub(crate) applied: Option<AppliedState>,
    /// Dry-run plan lines (create, update with diff, prune).
    pub(crate) plan: Vec<String>,
    pub(crate) writes: usize,
    /// Some failure may go away by itself (server errors, timeouts).
    pub(crate) retry: bool,
}

/// Labels and annotations every object of an app gets.
pub(crate) struct Marks<'a> {
    pub(crate) app: &'a str,
    pub(crate) hub: &'a str,
}

/// The object as we apply it: with the app's marks and its namespace, and
/// never with a creation record of its own (only a create answered 201
/// writes one).
fn decorate(
    object: &Value,
    marks: &Marks<'_>,
    kind: &Kind,
    default_namespace: Option<&str>,
) -> Value {
    let mut body = object.clone();
    let metadata = body
        .as_object_mut()
        .expect("bundle objects are JSON objects")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let metadata = metadata.as_object_mut().expect("metadata is an object");
    if kind.namespaced {
        if !metadata.get("namespace").is_some_and(Value::is_string) {
            metadata.insert(
                "namespace".into(),
                Value::String(default_namespace.unwrap_or("default").to_owned()),
            );
        }
    } else {
        metadata.remove("namespace");
    }
    for (field, key, value) in [
        ("labels", APP_LABEL, marks.app),
        ("labels", MANAGED_BY_LABEL, "switchyard"),
        ("annotations", HUB_ANNOTATION, marks.hub),
    ] {
        let map = metadata.entry(field).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        map.as_object_mut()
            .expect("labels are an object")
            .insert(key.into(), Value::String(value.into()));
    }
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(plan::CREATED_BY_ANNOTATION);
    }
    body
}

fn row(
    object: &ObjectRef,
    sync: SyncStatus,
    health: Health,
    message: Option<String>,
) -> ResourceStatus {
    ResourceStatus {
        group: object.group(),
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        sync,
        health,
        message,
    }
}

fn assessed(live: &Value) -> (Health, Option<String>) {
    let a = health::assess(live);
    (a.health.into(), a.message)
}

/// Wait (bounded) until a CustomResourceDefinition is Established.
async fn wait_established(cluster: &Cluster, kind: &Kind, crd: &ObjectRef) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + CRD_ESTABLISH_TIMEOUT;
    loop {
        if let Ok(Some(live)) = cluster.get(kind, crd).await {
            let established = live["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if established {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "CustomResourceDefinition {} not Established after {:?}",
                crd.name, CRD_ESTABLISH_TIMEOUT
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Make sure the app's default namespace exists (objects default into it),
/// through the same creation record as every other object: the app's only
/// when our create was answered 201, then in its inventory (so deleted only
/// by a prune or app deletion that `plan_prune` allows, which asks for
/// `--prune-namespaces`); a Namespace that was there before is used as it
/// is, never labelled, adopted or deleted.
#[allow(clippy::too_many_arguments)]
async fn ensure_namespace(
    cluster: &Cluster,
    namespace: &str,
    marks: &Marks<'_>,
    previous: Option<&AppliedState>,
    mode: Mode,
    existing: &Existing,
    create: bool,
    pass: &mut Pass,
) -> Result<NamespaceState, ClusterError> {
    let reference = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.to_owned(),
    };
    // Desired while it is the app's namespace: never a prune candidate;
    // and if it was the app's, it stays so until a read says otherwise.
    pass.desired.insert(reference.clone());
    if previous.is_some_and(|p| p.inventory.contains(&reference)) {
        pass.inventory.insert(reference.clone());
    }
    let kind = cluster.kind(&reference).await?;
    let body = decorate(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        marks,
        &kind,
        None,
    );
    let live = read_live(cluster, &kind, &reference, existing).await?;
    let recorded = previous
        .and_then(|p| p.created.get(&reference))
        .map(String::as_str);
    let step = plan::plan_app_namespace(marks.app, &body, live.as_deref(), recorded, create);
    if step != plan::AppNamespace::Ours {
        pass.inventory.remove(&reference);
    }
    let withdraw = match step {
        plan::AppNamespace::NotOurs | plan::AppNamespace::Ours => return Ok(NamespaceState::There),
        plan::AppNamespace::Missing => return Ok(NamespaceState::Missing),
        plan::AppNamespace::Withdraw { body } => body,
        plan::AppNamespace::Create { body: with_record } => {
            if mode == Mode::DryRun {
                pass.plan.push(format!("create {reference}"));
                return Ok(NamespaceState::There);
            }
            let written = cluster
                .apply(&kind, &reference, &with_record, false)
                .await?;
            pass.writes += 1;
            match written.object["metadata"]["uid"].as_str() {
                Some(uid) if written.created => {
                    info!(app = %marks.app, %namespace, "created the app's namespace");
                    pass.managed(&reference, &with_record, Some(uid.to_owned()));
                    return Ok(NamespaceState::There);
                }
                // 200, not 201: someone created it between our read and
                // our write. Not ours: take our marks off it again.
                _ => {
                    warn!(app = %marks.app, %namespace, "the app's namespace appeared before our create; removing our creation record");
                    plan::identity_only(&body)
                }
            }
        }
    };
    if mode == Mode::DryRun {
        pass.plan
            .push(format!("leave {reference}: remove Switchyard's marks"));
        return Ok(NamespaceState::There);
    }
    cluster.apply(&kind, &reference, &withdraw, true).await?;
    pass.writes += 1;
    Ok(NamespaceState::There)
}

/// Whether the app's namespace is there after [`ensure_namespace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamespaceState {
    /// There (or created now, or to be created in a dry run).
    There,
    /// Absent, and the app does not create it.
    Missing,
}

/// Everything one reconcile of an app accumulates.
#[derive(Default)]
struct Pass {
    rows: Vec<ResourceStatus>,
    plan: Vec<String>,
    writes: usize,
    retry: bool,
    errors: Vec<String>,
    /// Identities of every desired object that could be resolved.
    desired: BTreeSet<ObjectRef>,
    unresolved: usize,
    inventory: BTreeSet<ObjectRef>,
    failed: BTreeSet<ObjectRef>,
    created: BTreeMap<ObjectRef, String>,
    fields: BTreeMap<ObjectRef, FieldSet>,
    extraneous: bool,
}

impl Pass {
    /// Take in what one object's reconcile accumulated.
    fn absorb(&mut self, one: Pass) {
        self.rows.extend(one.rows);
        self.plan.extend(one.plan);
        self.writes += one.writes;
        self.retry |= one.retry;
        self.errors.extend(one.errors);
        self.desired.extend(one.desired);
        self.unresolved += one.unresolved;
        self.inventory.extend(one.inventory);
        self.failed.extend(one.failed);
        self.created.extend(one.created);
        self.fields.extend(one.fields);
        self.extraneous |= one.extraneous;
    }

    /// Remember a successful write or an in-sync object of the app.
    fn managed(&mut self, reference: &ObjectRef, body: &Value, created_uid: Option<String>) {
        self.inventory.insert(reference.clone());
        self.fields
            .insert(reference.clone(), plan::applied_fields(body).into());
        if let Some(uid) = created_uid {
            self.created.insert(reference.clone(), uid);
        }
    }

    fn fail(&mut self, reference: &ObjectRef, error: &ClusterError, sync: SyncStatus) {
        self.retry |= error.is_transient();
        self.failed.insert(reference.clone());
        self.errors.push(format!("{reference}: {error}"));
        self.rows.push(row(
            reference,
            sync,
            Health::Unknown,
            Some(error.to_string()),
        ));
    }
}

/// How a pass applies: concurrency within a phase and its bounded waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Objects of one phase applied at once, at most.
    pub(crate) concurrency: usize,
    /// How long a hook (a Job, a Pod) may take to finish before it counts
    /// as failed.
    pub(crate) hook_timeout: Duration,
    /// How long one pass waits for a wave to become healthy before it ends
    /// and the next pass (a retry) looks again.
    pub(crate) wave_wait: Duration,
}

/// The bundle split by role: the objects applied as usual (`normal`, in
/// bundle order), the hooks (indices into the bundle), and the unsupported
/// Helm hooks, never applied (index and why).
struct Split<'a> {
    normal: std::borrow::Cow<'a, [Value]>,
    hooks: Vec<(usize, crate::reconcile::hooks::Hook)>,
    left_out: Vec<(usize, String)>,
}

fn split(objects: &[Value]) -> Result<Split<'_>, crate::reconcile::hooks::HookError> {
    use crate::reconcile::hooks::{Role, role};
    let mut hooks = Vec::new();
    let mut left_out = Vec::new();
    let mut normal_indices = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        match role(object)? {
            Role::Normal => normal_indices.push(index),
            Role::Hook(hook) => hooks.push((index, hook)),
            Role::Skip => {}
            Role::Unsupported(why) => left_out.push((index, why)),
        }
    }
    // Cloned only when something is left out of the normal apply.
    let normal = if normal_indices.len() == objects.len() {
        std::borrow::Cow::Borrowed(objects)
    } else {
        std::borrow::Cow::Owned(normal_indices.iter().map(|&i| objects[i].clone()).collect())
    };
    Ok(Split {
        normal,
        hooks,
        left_out,
    })
}

/// Reconcile one assigned app against the cluster: PreSync hooks, then
/// the phases and waves (each wave applied and healthy before the next,
/// Sync hooks with their wave), prune, then PostSync hooks once everything
/// is healthy. A failed hook stops the sync (later waves are not applied,
/// nothing is pruned) and runs the SyncFail hooks.
pub(crate) async fn reconcile_app(
    cluster: &Cluster,
    item: &AssignmentItem,
    bundle: &[Value],
    previous: Option<&AppliedState>,
    marks: &Marks<'_>,
    mode: Mode,
    settings: Settings,
) -> Outcome {
    use crate::reconcile::hooks::Phase;
    let concurrency = settings.concurrency;
    let options = Options::from(item);
    // A new bundle, or an explicit sync not answered yet: every object is
    // written once, drift included, even without self-heal.
    let new_desired =
        previous.is_none_or(|p| p.digest != item.digest || p.sync_requested != item.sync_requested);
    let mut pass = Pass::default();
    let existing = Existing::default();
    let Split {
        normal,
        hooks: hook_list,
        left_out,
    } = match split(bundle) {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                status: app_status(item, Vec::new(), vec![e.to_string()], false),
                applied: None,
                plan: Vec::new(),
                writes: 0,
                retry: false,
            };
        }
    };
    let objects: &[Value] = &normal;
    // Reported on a row of their own that neither makes the app OutOfSync
    // nor changes its health: charts ship test hooks Argo CD ignores too.
    for (index, why) in left_out {
        let object = &bundle[index];
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        pass.rows.push(ResourceStatus {
            group: text(&object["apiVersion"])
                .rsplit_once('/')
                .map_or(String::new(), |(g, _)| g.to_owned()),
            kind: text(&object["kind"]),
            namespace: object["metadata"]["namespace"]
                .as_str()
                .or(item.namespace.as_deref())
                .map(str::to_owned),
            name: crate::reconcile::hooks::hook_name(object),
            sync: SyncStatus::Synced,
            health: Health::Unknown,
            message: Some(why),
        });
    }
    // Sync options Switchyard does not know: reported on the object's row,
    // never ignored silently.
    let unknown_options: Vec<(&str, &str, String)> = bundle
        .iter()
        .filter_map(|o| {
            let unknown = crate::reconcile::hooks::sync_options(o).unknown;
            (!unknown.is_empty()).then(|| {
                (
                    o["kind"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or(""),
                    format!("unknown option ignored: {}", unknown.join(", ")),
                )
            })
        })
        .collect();
    for (kind, name, warning) in &unknown_options {
        warn!(app = %item.app, object = %format!("{kind} {name}"), %warning, "unknown sync option");
    }
    let mut record = previous.map(|p| p.hooks.clone()).unwrap_or_default();
    if record.commit != item.commit {
        // A new commit: its hooks run again; what earlier runs left stays
        // known, for BeforeHookCreation.
        record.commit = item.commit.clone();
        record.runs.clear();
    }
    let mut hooks = hooks::Hooks {
        cluster,
        item,
        marks,
        objects: bundle,
        hooks: hook_list,
        record,
        timeout: settings.hook_timeout,
        wait: settings.wave_wait,
    };
    if mode == Mode::DryRun {
        for (index, hook) in &hooks.hooks {
            for phase in &hook.phases {
                pass.plan.push(format!(
                    "run {phase} hook {} {} (once per commit)",
                    bundle[*index]["kind"].as_str().unwrap_or(""),
                    crate::reconcile::hooks::hook_name(&bundle[*index])
                ));
            }
        }
    }
    if mode == Mode::Apply {
        start_views(cluster, objects, item.namespace.is_some()).await;
    }

    // A bundle that lists the namespace itself decides about it, as about
    // any of its objects.
    if let Some(ns) = &item.namespace
        && !lists_namespace(objects, ns)
    {
        let create = item.create_namespace;
        match ensure_namespace(
            cluster, ns, marks, previous, mode, &existing, create, &mut pass,
        )
        .await
        {
            Ok(NamespaceState::There) => {}
            // Nothing is written: every namespaced object of the app would
            // fail, and hooks must not run against a half-there app. The
            // next pass looks again (someone may create it).
            Ok(NamespaceState::Missing) => {
                let why = format!(
                    "namespace {ns} does not exist and the app does not create it (--create-namespace=false): create it, or set --create-namespace on the app; nothing applied"
                );
                warn!(app = %item.app, namespace = %ns, "app namespace missing; nothing applied");
                return Outcome {
                    status: app_status(item, pass.rows, vec![why], false),
                    applied: None,
                    plan: pass.plan,
                    writes: pass.writes,
                    retry: true,
                };
            }
            Err(e) => {
                pass.retry |= e.is_transient();
                pass.errors.push(format!("namespace {ns}: {e}"));
            }
        }
    }

    let phases = match order::phases(objects) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                status: app_status(item, Vec::new(), vec![e.to_string()], false),
                applied: None,
                plan: Vec::new(),
                writes: pass.writes,
                retry: false,
            };
        }
    };
    // Why this pass stopped before the end: a hook failed (`failed`), or a
    // wave is not healthy yet (`waiting`, tried again on the next pass).
    let mut failed: Option<String> = None;
    let mut waiting: Option<String> = None;
    let run_hooks = mode == Mode::Apply;
    let stop = |result: Result<(), hooks::Stop>,
                failed: &mut Option<String>,
                waiting: &mut Option<String>| {
        match result {
            Ok(()) => false,
            Err(hooks::Stop::Failed(why)) => {
                *failed = Some(why);
                true
            }
            Err(hooks::Stop::Waiting(what)) => {
                *waiting = Some(format!("{what}; what comes after it waits"));
                true
            }
        }
    };
    if run_hooks {
        let result = hooks.run(Phase::PreSync, |_| true, &mut pass).await;
        stop(result, &mut failed, &mut waiting);
    }
    let waves: Vec<Option<i64>> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (i > 0)
                .then(|| {
                    p.first()
                        .and_then(|&ix| order::sync_wave(&objects[ix]).ok())
                })
                .flatten()
        })
        .collect();
    let count = phases.len();
    for (position, phase) in phases.into_iter().enumerate() {
        if failed.is_some() || waiting.is_some() {
            break;
        }
        let wave = waves[position];
        if run_hooks && let Some(w) = wave {
            let result = hooks.run(Phase::Sync, |weight| weight < w, &mut pass).await;
            if stop(result, &mut failed, &mut waiting) {
                break;
            }
        }
        // In order of the phase, at most `concurrency` at once; each
        // object's result is taken in as it comes (holding a whole phase's
        // results first doubled the pass's memory on large apps).
        let mut done = futures_util::stream::iter(phase)
            .map(|index| {
                let (options, existing) = (&options, &existing);
                async move {
                    let mut one = Pass::default();
                    sync_one(
                        cluster,
                        &objects[index],
                        index,
                        item,
                        previous,
                        marks,
                        options,
                        new_desired,
                        mode,
                        existing,
                        &mut one,
                    )
                    .await;
                    one
                }
            })
            .buffered(concurrency.max(1));
        let mut unhealthy = Vec::new();
        while let Some(one) = done.next().await {
            // One object's pass: its identity and its row.
            if one
                .rows
                .iter()
                .any(|r| r.sync == SyncStatus::Synced && hooks::gates(r.health.into()))
            {
                unhealthy.extend(one.desired.iter().cloned());
            }
            pass.absorb(one);
        }
        let Some(w) = wave else { continue };
        if !run_hooks {
            continue;
        }
        let result = hooks
            .run(Phase::Sync, |weight| weight <= w, &mut pass)
            .await;
        if stop(result, &mut failed, &mut waiting) {
            break;
        }
        // The next wave, the PostSync hooks: they start when this wave is
        // healthy.
        let more = position + 1 < count || hooks.any(Phase::PostSync);
        if more
            && !unhealthy.is_empty()
            && let Err(what) = hooks::wait_healthy(cluster, &unhealthy, settings.wave_wait).await
        {
            waiting = Some(format!(
                "wave {w} not healthy yet ({what}); what comes after it waits"
            ));
        }
    }
    if run_hooks && failed.is_none() && waiting.is_none() {
        let result = hooks.run(Phase::Sync, |_| true, &mut pass).await;
        stop(result, &mut failed, &mut waiting);
    }
    let stopped = failed.is_some() || waiting.is_some();

    // What the previous apply left that Git no longer has; nothing while
    // the sync stopped before its last wave (those objects are not gone).
    if let Some(previous) = previous
        && stopped
    {
        for reference in previous.inventory.difference(&pass.desired) {
            pass.inventory.insert(reference.clone());
        }
    }
    if let Some(previous) = previous
        && !stopped
    {
        match plan::prune_candidates(&previous.inventory, &pass.desired, pass.unresolved) {
            Ok(gone) => {
                let mut last = Vec::new();
                for reference in in_prune_order(gone) {
                    let deferred = prune_one(
                        cluster, &reference, marks.app, previous, &options, mode, true, &mut pass,
                    )
                    .await;
                    if deferred {
                        last.push(reference);
                    }
                }
                // PruneLast=true: a final implicit wave, once every other
                // object of the app is healthy (bounded by --wave-wait; the
                // next pass looks again). A dry run plans them at once.
                if !last.is_empty() {
                    let others: Vec<ObjectRef> = pass
                        .inventory
                        .intersection(&pass.desired)
                        .cloned()
                        .collect();
                    let healthy = match mode {
                        Mode::DryRun => Ok(()),
                        Mode::Apply => {
                            hooks::wait_healthy(cluster, &others, settings.wave_wait).await
                        }
                    };
                    match healthy {
                        Ok(()) => {
                            for reference in &last {
                                prune_one(
                                    cluster, reference, marks.app, previous, &options, mode, false,
                                    &mut pass,
                                )
                                .await;
                            }
                        }
                        Err(what) => {
                            for reference in &last {
                                pass.inventory.insert(reference.clone());
                                pass.extraneous = true;
                                pass.rows.push(row(
                                    reference,
                                    SyncStatus::OutOfSync,
                                    Health::Unknown,
                                    Some(
                                        "removed from Git; PruneLast=true: pruned once the app is healthy"
                                            .into(),
                                    ),
                                ));
                            }
                            waiting = Some(format!(
                                "not healthy yet ({what}); the PruneLast prunes wait"
                            ));
                        }
                    }
                }
            }
            Err(why) => {
                // Keep every record: an unresolved object is not gone.
                for reference in previous.inventory.difference(&pass.desired) {
                    pass.inventory.insert(reference.clone());
                }
                pass.errors.push(why);
            }
        }
        // Records of objects the app still manages carry over.
        for (reference, uid) in &previous.created {
            if pass.inventory.contains(reference) && !pass.created.contains_key(reference) {
                pass.created.insert(reference.clone(), uid.clone());
            }
        }
        for (reference, fields) in &previous.fields {
            if pass.inventory.contains(reference) && !pass.fields.contains_key(reference) {
                pass.fields.insert(reference.clone(), fields.clone());
            }
        }
    }

    if stopped && let Some(previous) = previous {
        for (reference, uid) in &previous.created {
            if pass.inventory.contains(reference) && !pass.created.contains_key(reference) {
                pass.created.insert(reference.clone(), uid.clone());
            }
        }
        for (reference, fields) in &previous.fields {
            if pass.inventory.contains(reference) && !pass.fields.contains_key(reference) {
                pass.fields.insert(reference.clone(), fields.clone());
            }
        }
    }

    // PostSync once everything is healthy (and PruneLast prunes done).
    let stopped = stopped || waiting.is_some();
    if run_hooks && !stopped && hooks.any(Phase::PostSync) {
        let all: Vec<ObjectRef> = pass.inventory.iter().cloned().collect();
        match hooks::wait_healthy(cluster, &all, settings.wave_wait).await {
            Ok(()) => {
                let result = hooks.run(Phase::PostSync, |_| true, &mut pass).await;
                stop(result, &mut failed, &mut waiting);
            }
            Err(what) => {
                waiting = Some(format!("not healthy yet ({what}); the PostSync hooks wait"));
            }
        }
    }
    if let Some(why) = &failed {
        pass.errors.insert(0, format!("sync failed: {why}"));
        // A running SyncFail hook is looked at again on the next pass.
        if let Err(hooks::Stop::Failed(also)) =
            hooks.run(Phase::SyncFail, |_| true, &mut pass).await
        {
            pass.errors.push(also);
        }
    }
    if let Some(why) = &waiting {
        pass.retry = true;
        pass.errors.push(why.clone());
    }
    let stopped = failed.is_some() || waiting.is_some();
    pass.rows.extend(hooks.rows());
    for (kind, name, warning) in &unknown_options {
        for r in pass
            .rows
            .iter_mut()
            .filter(|r| r.kind == *kind && r.name == *name)
        {
            r.message = Some(match r.message.take() {
                Some(m) => format!("{m}; {warning}"),
                None => warning.clone(),
            });
        }
    }

    let status = app_status(item, pass.rows, pass.errors, pass.extraneous);
    let applied = (mode == Mode::Apply).then(|| AppliedState {
        // A sync that stopped early keeps the previous digest: the objects
        // of later waves are still to be written, as for a new bundle.
        digest: if stopped {
            previous.map(|p| p.digest.clone()).unwrap_or_default()
        } else {
            item.digest.clone()
        },
        prune: item.prune,
        prune_namespaces: options.prune_namespaces,
        prune_crds: options.prune_crds,
        inventory: pass.inventory,
        failed: pass.failed,
        created: pass.created,
        fields: shared_field_sets(pass.fields),
        hooks: hooks.record,
        // Like the digest: a sync that stopped early is not answered yet.
        sync_requested: if stopped {
            previous.map_or(0, |p| p.sync_requested)
        } else {
            item.sync_requested
        },
    });
    if pass.writes > 0 {
        info!(app = %item.app, writes = pass.writes, sync = ?status.sync, health = ?status.health, "reconciled");
    } else {
        debug!(app = %item.app, sync = ?status.sync, health = ?status.health, "reconciled without writes");
    }
    Outcome {
        status,
        applied,
        plan: pass.plan,
        writes: pass.writes,
        retry: pass.retry,
    }
}

/// Start the live views of the kinds of `objects` (and of Namespaces, for
/// the app's namespace), and wait a bounded time for those just started to
/// sync, so a first pass reads from them rather than object by object.
/// Kinds that cannot be resolved yet (a CRD applied in this pass) are
/// started by `sync_one` once they are.
async fn start_views(cluster: &Cluster, objects: &[Value], app_namespace: bool) {
    let mut tried = HashSet::new();
    let mut started = Vec::new();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "-"}});
    let namespace = app_namespace.then_some(&namespace);
    for object in objects.iter().chain(namespace) {
        let Ok(reference) = ObjectRef::of(object) else {
            continue;
        };
        if !tried.insert(reference.gvk()) {
            continue;
        }
        if let Ok(kind) = cluster.kind(&reference).await
            && cluster.live().ensure(&kind)
        {
            started.push(reference);
        }
    }
    if !started.is_empty() {
        cluster.live().wait_synced(&started, VIEW_SYNC_WAIT).await;
    }
}

/// Whether the bundle itself holds the Namespace `name`.
fn lists_namespace(objects: &[Value], name: &str) -> bool {
    objects.iter().any(|o| {
        o["apiVersion"] == "v1" && o["kind"] == "Namespace" && o["metadata"]["name"] == name
    })
}

/// Resolve, read, decide and execute for one desired object.
#[allow(clippy::too_many_arguments)]
async fn sync_one(
    cluster: &Cluster,
    object: &Value,
    index: usize,
    item: &AssignmentItem,
    previous: Option<&AppliedState>,
    marks: &Marks<'_>,
    options: &Options,
    new_desired: bool,
    mode: Mode,
    existing: &Existing,
    pass: &mut Pass,
) {
    let reference = match ObjectRef::of(object) {
        Ok(r) => r,
        Err(e) => {
            pass.unresolved += 1;
            pass.errors.push(format!("object {index}: {e}"));
            return;
        }
    };
    let kind = match cluster.kind(&reference).await {
        Ok(k) => k,
        Err(e) => {
            // Not applied, and the pass prunes nothing: the object's
            // decorated identity is unknown, so it could be any record.
            pass.unresolved += 1;
            pass.retry |= e.is_transient() || matches!(e, ClusterError::UnknownKind(_));
            pass.failed.insert(reference.clone());
            pass.errors.push(format!("{reference}: {e}"));
            pass.rows.push(row(
                &reference,
                SyncStatus::Unknown,
                Health::Unknown,
                Some(format!(
                    "kind not resolved, not applied and nothing pruned: {e}"
                )),
            ));
            return;
        }
    };
    if mode == Mode::Apply {
        cluster.live().ensure(&kind);
    }
    let body = decorate(object, marks, &kind, item.namespace.as_deref());
    let reference = ObjectRef::of(&body).expect("decorated objects keep their identity");
    pass.desired.insert(reference.clone());
    let live = match read_live(cluster, &kind, &reference, existing).await {
        Ok(live) => live,
        Err(e) => {
            // Unknown; it stays in the inventory if it was there.
            if previous.is_some_and(|p| p.inventory.contains(&reference)) {
                pass.inventory.insert(reference.clone());
            }
            pass.fail(&reference, &e, SyncStatus::Unknown);
            return;
        }
    };
    let record = Record {
        new_desired,
        retrying: previous.is_some_and(|p| p.failed.contains(&reference)),
    };
    let step = plan::plan_object(marks.app, &body, live.as_deref(), record, options);
    if mode == Mode::DryRun {
        dry_run_step(&reference, &step, live.as_deref(), pass);
        return;
    }
    let owned = previous
        .and_then(|p| p.fields.get(&reference))
        .map(|f| &**f);
    let wrote = match step {
        Step::InSync => {
            let live = live.as_ref().expect("in sync with a live object");
            pass.managed(&reference, &body, None);
            let (health, message) = assessed(live);
            pass.rows
                .push(row(&reference, SyncStatus::Synced, health, message));
            false
        }
        Step::Skip { sync, reason, ours } => {
            if ours {
                pass.inventory.insert(reference.clone());
            }
            let health = match &live {
                Some(l) => assessed(l).0,
                None => health::missing().health.into(),
            };
            pass.rows.push(row(&reference, sync, health, Some(reason)));
            false
        }
        Step::Create { body: created } => {
            create(
                cluster, &kind, &reference, &created, &body, options, owned, pass,
            )
            .await
        }
        Step::Apply { body, adopting } => {
            if adopting {
                info!(app = %marks.app, object = %reference, "adopting an existing object");
            }
            // Replace=true: a PUT, which also drops fields others set.
            let written = if crate::reconcile::hooks::sync_options(object).replace {
                cluster.replace(&kind, &reference, &body).await
            } else {
                apply(cluster, &kind, &reference, &body, options, owned).await
            };
            match written {
                Ok(written) => {
                    pass.writes += 1;
                    pass.managed(&reference, &body, None);
                    let (health, message) = assessed(&written.object);
                    pass.rows
                        .push(row(&reference, SyncStatus::Synced, health, message));
                    true
                }
                Err(e) => {
                    if !adopting {
                        pass.inventory.insert(reference.clone());
                    }
                    warn!(app = %marks.app, object = %reference, error = %e, "cannot apply");
                    pass.fail(&reference, &e, SyncStatus::OutOfSync);
                    false
                }
            }
        }
    };
    if reference.kind == "CustomResourceDefinition"
        && wrote
        && let Err(e) = wait_established(cluster, &kind, &reference).await
    {
        pass.retry = true;
        pass.errors.push(e);
    }
}

/// Apply without force; on a conflict, force only where `plan` allows it.
async fn apply(
    cluster: &Cluster,
    kind: &Kind,
    reference: &ObjectRef,
    body: &Value,
    options: &Options,
    owned: Option<&BTreeSet<String>>,
) -> Result<Written, ClusterError> {
    match cluster.apply(kind, reference, body, false).await {
        Err(ClusterError::Conflict { message, conflicts }) => {
            match plan::plan_conflict(&conflicts, owned, options) {
                OnConflict::Force => {
                    debug!(object = %reference, "taking back fields Switchyard owned");
                    cluster.apply(kind, reference, body, true).await
                }
                OnConflict::Report(report) => Err(ClusterError::Conflict {
                    message: report,
                    conflicts,
                })
                .inspect_err(|_| debug!(object = %reference, %message, "apply conflict")),
            }
        }
        Err(ClusterError::UnknownKind(_)) => {
            cluster.forget_kind(reference);
            Err(ClusterError::UnknownKind(reference.to_string()))
        }
        other => other,
    }
}

/// Create an absent object with the creation record, and make sure the
/// record never stays on an object the create did not create.
#[allow(clippy::too_many_arguments)]
async fn create(
    cluster: &Cluster,
    kind: &Kind,
    reference: &ObjectRef,
    with_record: &Value,
    body: &Value,
    options: &Options,
    owned: Option<&BTreeSet<String>>,
    pass: &mut Pass,
) -> bool {
    let written = match apply(cluster, kind, reference, with_record, options, owned).await {
        Ok(w) => w,
        Err(e) => {
            warn!(object = %reference, error = %e, "cannot create");
            pass.fail(reference, &e, SyncStatus::OutOfSync);
            return false;
        }
    };
    pass.writes += 1;
    let uid = written.object["metadata"]["uid"]
        .as_str()
        .map(str::to_owned);
    if written.created && uid.is_some() {
        pass.managed(reference, with_record, uid);
        let (health, message) = assessed(&written.object);
        pass.rows
            .push(row(reference, SyncStatus::Synced, health, message));
        return true;
    }
    // 200, not 201: someone created it between our read and our write.
    warn!(object = %reference, "the object appeared before our create; removing our creation record");
    let withdraw = match plan::plan_found_existing(body, options) {
        FoundExisting::Adopt { body } => {
            // Applied without the record, which the server then drops.
            match apply(cluster, kind, reference, &body, options, owned).await {
                Ok(written) => {
                    pass.writes += 1;
                    pass.managed(reference, &body, None);
                    let (health, message) = assessed(&written.object);
                    pass.rows
                        .push(row(reference, SyncStatus::Synced, health, message));
                    return true;
                }
                Err(e) => {
                    warn!(object = %reference, error = %e, "cannot adopt; withdrawing");
                    plan::identity_only(&body)
                }
            }
        }
        FoundExisting::Withdraw { body } => body,
    };
    // Only the identity: the server removes every field only we set,
    // the creation record with them.
    match cluster.apply(kind, reference, &withdraw, true).await {
        Ok(written) => {
            pass.writes += 1;
            pass.rows.push(row(
                reference,
                SyncStatus::OutOfSync,
                assessed(&written.object).0,
                Some("created by someone else just before Switchyard; not adopted".into()),
            ));
            true
        }
        Err(e) => {
            // The record is still on a foreign object: retry the undo.
            pass.failed.insert(reference.clone());
            pass.retry = true;
            pass.errors.push(format!(
                "{reference}: cannot remove the creation record from an object Switchyard did not create: {e}"
            ));
            false
        }
    }
}

fn dry_run_step(reference: &ObjectRef, step: &Step, live: Option<&Value>, pass: &mut Pass) {
    let (verb, body) = match step {
        Step::Create { body } => ("create", body),
        Step::Apply {
            body,
            adopting: true,
        } => ("adopt", body),
        Step::Apply { body, .. } => ("update", body),
        Step::InSync => {
            let (health, message) = assessed(live.expect("in sync with a live object"));
            pass.rows
                .push(row(reference, SyncStatus::Synced, health, message));
            return;
        }
        Step::Skip { sync, reason, .. } => {
            pass.rows
                .push(row(reference, *sync, Health::Unknown, Some(reason.clone())));
            pass.plan.push(format!("leave {reference}: {reason}"));
            return;
        }
    };
    let diff = compare::diff(body, live);
    pass.rows.push(row(
        reference,
        SyncStatus::OutOfSync,
        Health::Missing,
        Some(format!("would {verb}")),
    ));
    pass.plan.push(format!("{verb} {reference}\n{diff}"));
}

fn app_status(
    item: &AssignmentItem,
    resources: Vec<ResourceStatus>,
    errors: Vec<String>,
    extraneous: bool,
) -> AppStatus {
    let synced =
        errors.is_empty() && !extraneous && resources.iter().all(|r| r.sync == SyncStatus::Synced);
    let health = health::aggregate(resources.iter().map(|r| health::Health::from(r.health)));
    AppStatus {
        app: item.app.clone(),
        commit: item.commit.clone(),
        digest: item.digest.clone(),
        sync: if synced {
            SyncStatus::Synced
        } else {
            SyncStatus::OutOfSync
        },
        health: health.into(),
        resources,
        last_error: errors.first().cloned(),
        observed_at: unix_now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::ApiResource;

    fn kind(namespaced: bool) -> Kind {
        Kind {
            resource: ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
            namespaced,
        }
    }

    #[test]
    fn objects_get_the_apps_marks_and_namespace() {
        let marks = Marks {
            app: "web",
            hub: "abcd",
        };
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"tier": "front"}}});
        let body = decorate(&object, &marks, &kind(true), Some("shop"));
        assert_eq!(body["metadata"]["namespace"], "shop");
        assert_eq!(body["metadata"]["labels"]["tier"], "front");
        assert_eq!(body["metadata"]["labels"][APP_LABEL], "web");
        assert_eq!(body["metadata"]["labels"][MANAGED_BY_LABEL], "switchyard");
        assert_eq!(body["metadata"]["annotations"][HUB_ANNOTATION], "abcd");
        // An explicit namespace wins; cluster-scoped objects lose theirs.
        let explicit = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ops"}});
        assert_eq!(
            decorate(&explicit, &marks, &kind(true), Some("shop"))["metadata"]["namespace"],
            "ops"
        );
        assert!(
            decorate(&explicit, &marks, &kind(false), Some("shop"))["metadata"]
                .get("namespace")
                .is_none()
        );
        // No default namespace: "default", like kubectl.
        assert_eq!(
            decorate(&object, &marks, &kind(true), None)["metadata"]["namespace"],
            "default"
        );
        // A manifest cannot bring its own creation record.
        let forged = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "annotations": {plan::CREATED_BY_ANNOTATION: "web", "keep": "me"}}});
        let body = decorate(&forged, &marks, &kind(true), None);
        assert!(body["metadata"]["annotations"][plan::CREATED_BY_ANNOTATION].is_null());
        assert_eq!(body["metadata"]["annotations"]["keep"], "me");
    }

    #[test]
    fn applied_state_round_trips_and_reads_older_files() {
        let reference = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("web".into()),
            name: "c".into(),
        };
        let state = AppliedState {
            digest: "sha256:ab".into(),
            prune: true,
            prune_namespaces: true,
            prune_crds: false,
            inventory: [reference.clone()].into(),
            failed: BTreeSet::new(),
            created: [(reference.clone(), "uid-1".to_owned())].into(),
            fields: [(reference.clone(), Arc::new([".data.k".to_owned()].into()))].into(),
            hooks: HookRecord::default(),
            sync_requested: 3,
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<AppliedState>(&json).unwrap(), state);
        // Written by an agent before the creation record existed: no record,
        // so nothing of it is ever deleted.
        let old = r#"{"digest": "sha256:ab", "prune": true, "inventory": [{"api_version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "c"}]}"#;
        let old: AppliedState = serde_json::from_str(old).unwrap();
        assert!(old.created.is_empty() && old.inventory.contains(&reference));
    }
}
