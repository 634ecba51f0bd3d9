//! The live view: per kind the agent manages, a watch (kube-rs `watcher`,
//! which lists, then watches with bookmarks, and lists again after a 410
//! Gone) of every object labelled `switchyard.dev/app`, kept in memory
//! across passes. Passes read objects from it instead of asking the API
//! server for each one, so a pass that changes nothing sends no request per
//! object.
//!
//! The view only says "absent" while it is *synced*: its list finished
//! and no watch error happened since. From a watch error until the next
//! complete list, or before the first one, [`LiveView::lookup`] answers
//! [`Seen::NotReady`] and the caller reads the object itself, as before
//! the view existed. Being labelled is not being ours: an object absent
//! from the view may still exist without our label, so the applier checks
//! for it before a create (engine.rs).
//!
//! Cached objects keep only what the agent reads: `managedFields` entries of
//! other field managers are dropped (ours stays: it says which fields we
//! own; so do those of the managers an ignore rule names, at most
//! [`MAX_KEPT_MANAGERS`], whose fields are left to them), everything else is kept, since the comparison and the health
//! assessment read spec, data and status. They are kept as compact JSON
//! text compressed with zstd, decompressed and parsed when a pass looks one
//! up: a parsed `serde_json::Value` takes several times the memory of its
//! text, the text about three times its compressed form, and edge agents
//! hold thousands (BENCHMARKS.md, "Agent memory, session 11").

use super::cluster::{FIELD_MANAGER, Kind, ObjectRef};
use super::plan::APP_LABEL;
use crate::backoff::Backoff;
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{Instrument, debug, info_span, warn};

/// A watch that ran this long before failing counts as having worked.
const HEALTHY_WATCH: Duration = Duration::from_secs(60);

/// At most this many other field managers' `managedFields` entries are
/// kept in the view (the managers ignore rules name); more are read from
/// the API server object by object.
pub(crate) const MAX_KEPT_MANAGERS: usize = 16;

/// The field managers whose `managedFields` entries the view keeps besides
/// ours, and a generation that changes with them: an object stripped under
/// another generation may lack an entry that is needed now.
#[derive(Debug, Default)]
struct Kept {
    generation: u64,
    managers: Arc<std::collections::BTreeSet<String>>,
}

type SharedKept = Arc<RwLock<Kept>>;

/// One object as the view keeps it.
struct Cached {
    /// Its resourceVersion, when a number.
    version: Option<u64>,
    /// The [`Kept`] generation it was stripped under.
    generation: u64,
    /// The stripped object as compact JSON, zstd-compressed.
    compressed: Box<[u8]>,
    /// The length of that JSON.
    json_len: usize,
}

/// zstd level for cached objects: the fastest; objects are small and
/// compressed on every watch event.
const COMPRESSION_LEVEL: i32 = 1;

thread_local! {
    /// One compression and one decompression context per thread, reused:
    /// a context per call would cost more than the object.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl Cached {
    /// `object` stripped under `kept`.
    fn of(object: Value, kept: &SharedKept) -> Cached {
        let kept = kept.read().expect("kept managers lock");
        let object = strip(object, &kept.managers);
        let json = serde_json::to_vec(&object).expect("objects serialize");
        let compressed = COMPRESSOR.with_borrow_mut(|slot| {
            let compressor = match slot {
                Some(c) => c,
                None => slot.insert(
                    zstd::bulk::Compressor::new(COMPRESSION_LEVEL)
                        .expect("a zstd context at level 1"),
                ),
            };
            compressor
                .compress(&json)
                .expect("compressing into a growable buffer")
        });
        Cached {
            version: resource_version(&object),
            generation: kept.generation,
            compressed: compressed.into_boxed_slice(),
            json_len: json.len(),
        }
    }

    /// The object as it was cached.
    fn object(&self) -> Value {
        let json = DECOMPRESSOR.with_borrow_mut(|slot| {
            let decompressor = match slot {
                Some(d) => d,
                None => slot.insert(zstd::bulk::Decompressor::new().expect("a zstd context")),
            };
            decompressor
                .decompress(&self.compressed, self.json_len)
                .expect("the view decompresses what it compressed")
        });
        // Text the view wrote from a Value: it parses.
        serde_json::from_slice(&json).expect("cached objects are JSON")
    }
}

/// Key of one object in a kind's view.
type Key = (Option<String>, String);

/// What the view knows about one object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen {
    /// Labelled `switchyard.dev/app` and present, as last seen.
    Present(Arc<Value>),
    /// The view is synced and holds no labelled object of that name. It may
    /// still exist without our label.
    Absent,
    /// No synced view of this kind: read the object from the API server.
    NotReady,
}

/// One kind's objects and whether they can be trusted.
struct KindView {
    objects: RwLock<HashMap<Key, Cached>>,
    synced: watch::Sender<bool>,
}

/// Every kind's view, and a counter of changes for the reconcile loop.
pub(crate) struct LiveView {
    client: kube::Client,
    /// How long each watch request lasts before the watcher renews it.
    watch_timeout: Duration,
    kinds: Mutex<HashMap<GroupVersionKind, Arc<KindView>>>,
    changes: watch::Sender<u64>,
    kept: SharedKept,
}

fn key_of(object: &Value) -> Option<Key> {
    let name = object["metadata"]["name"].as_str()?.to_owned();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
    Some((namespace, name))
}

fn resource_version(object: &Value) -> Option<u64> {
    object["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

/// The object as the view keeps it: without the `managedFields` entries of
/// managers other than ours and those in `kept`.
fn strip(mut object: Value, kept: &std::collections::BTreeSet<String>) -> Value {
    if let Some(entries) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Value::as_array_mut)
    {
        entries.retain(|e| {
            e["manager"]
                .as_str()
                .is_some_and(|m| m == FIELD_MANAGER || kept.contains(m))
        });
    }
    object
}

impl LiveView {
    pub(crate) fn new(client: kube::Client, watch_timeout: Duration) -> LiveView {
        LiveView {
            client,
            watch_timeout,
            kinds: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
            kept: SharedKept::default(),
        }
    }

    /// Keep the `managedFields` entries of these managers (beyond ours)
    /// from now on, at most [`MAX_KEPT_MANAGERS`]. Objects cached before a
    /// change are looked up as not ready until the watch or a read brings
    /// them again, so no pass sees an object without an entry it needs.
    pub(crate) fn keep_managers(&self, managers: std::collections::BTreeSet<String>) {
        let managers: std::collections::BTreeSet<String> =
            managers.into_iter().take(MAX_KEPT_MANAGERS).collect();
        let mut kept = self.kept.write().expect("kept managers lock");
        if *kept.managers != managers {
            kept.generation += 1;
            kept.managers = Arc::new(managers);
        }
    }

    /// A receiver that sees a change whenever a watched object changes
    /// or a view (re)synced.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Start watching `kind` unless already watched. True when this call
    /// started it.
    pub(crate) fn ensure(&self, kind: &Kind) -> bool {
        let gvk = GroupVersionKind::gvk(
            &kind.resource.group,
            &kind.resource.version,
            &kind.resource.kind,
        );
        let mut kinds = self.kinds.lock().expect("live view lock");
        if kinds.contains_key(&gvk) {
            return false;
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.resource);
        let view = Arc::new(KindView {
            objects: RwLock::new(HashMap::new()),
            synced: watch::channel(false).0,
        });
        // Views live as long as the agent: the task never ends by itself.
        tokio::spawn(
            follow(
                api,
                view.clone(),
                self.changes.clone(),
                self.kept.clone(),
                self.watch_timeout,
            )
            .instrument(info_span!("watch", kind = %kind.resource.kind)),
        );
        kinds.insert(gvk, view);
        true
    }

    fn view(&self, reference: &ObjectRef) -> Option<Arc<KindView>> {
        self.kinds
            .lock()
            .expect("live view lock")
            .get(&reference.gvk())
            .cloned()
    }

    /// Whether the view of `reference`'s kind is synced.
    pub(crate) fn ready(&self, reference: &ObjectRef) -> bool {
        self.view(reference).is_some_and(|v| *v.synced.borrow())
    }

    /// What the view knows about `reference`.
    pub(crate) fn lookup(&self, reference: &ObjectRef) -> Seen {
        let Some(view) = self.view(reference) else {
            return Seen::NotReady;
        };
        if !*view.synced.borrow() {
            return Seen::NotReady;
        }
        let key = (reference.namespace.clone(), reference.name.clone());
        let generation = self.kept.read().expect("kept managers lock").generation;
        let objects = view.objects.read().expect("view lock");
        match objects.get(&key) {
            // Stripped before the kept managers changed: read it again.
            Some(cached) if cached.generation != generation => Seen::NotReady,
            Some(cached) => Seen::Present(Arc::new(cached.object())),
            None => Seen::Absent,
        }
    }

    /// Wait, at most `limit`, until the views of `kinds` are synced.
    pub(crate) async fn wait_synced(&self, kinds: &[ObjectRef], limit: Duration) {
        let views: Vec<Arc<KindView>> = kinds.iter().filter_map(|r| self.view(r)).collect();
        let all = async {
            for view in &views {
                let mut synced = view.synced.subscribe();
                let _ = synced.wait_for(|s| *s).await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            debug!(
                ?limit,
                "some live views are not synced yet; reading those kinds directly"
            );
        }
    }

    /// Put what a write returned into the view, unless the view already
    /// holds a newer version (from the watch). Saves the next pass a
    /// write when the watch event is still on its way. Resource versions
    /// are compared as numbers, which every API server's are in practice;
    /// one that is not a number is not recorded (the watch brings it).
    pub(crate) fn record(&self, reference: &ObjectRef, written: &Value) {
        let Some(view) = self.view(reference) else {
            return;
        };
        let Some(key) = key_of(written) else {
            return;
        };
        let mut objects = view.objects.write().expect("view lock");
        // Our label gone (a withdrawn creation record): out of the view,
        // as a real server's watch says with a DELETED event.
        if written["metadata"]["labels"][APP_LABEL].is_null() {
            objects.remove(&key);
            return;
        }
        let Some(version) = resource_version(written) else {
            return;
        };
        let generation = self.kept.read().expect("kept managers lock").generation;
        // A newer version, or the same one stripped under the kept
        // managers of now, is not replaced.
        let newer = objects.get(&key).is_some_and(|o| {
            o.version.is_some_and(|held| {
                held > version || (held == version && o.generation == generation)
            })
        });
        if !newer {
            objects.insert(key, Cached::of(written.clone(), &self.kept));
        }
    }

    /// Take a deleted object out of the view at once, so a pass before the
    /// watch's DELETED event does not find it (and, say, apply instead of
    /// create, which would lose the creation record).
    pub(crate) fn forget(&self, reference: &ObjectRef) {
        if let Some(view) = self.view(reference) {
            let key = (reference.namespace.clone(), reference.name.clone());
            view.objects.write().expect("view lock").remove(&key);
        }
    }

    /// Number of objects held, over every kind (for logs and tests).
    pub(crate) fn len(&self) -> usize {
        self.kinds
            .lock()
            .expect("live view lock")
            .values()
            .map(|v| v.objects.read().expect("view lock").len())
            .sum()
    }
}

/// Keep one kind's view: list, watch, list again after a 410 (kube-rs's
/// watcher does that itself), and start over after any other error, so
/// the view is synced again only after a complete list.
async fn follow(
    api: Api<DynamicObject>,
    view: Arc<KindView>,
    changes: watch::Sender<u64>,
    kept: SharedKept,
    watch_timeout: Duration,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut warned = false;
    let changed = || changes.send_modify(|n| *n = n.wrapping_add(1));
    let timeout = u32::try_from(watch_timeout.as_secs().max(1)).unwrap_or(u32::MAX);
    loop {
        let config = watcher::Config::default()
            .labels(APP_LABEL)
            .timeout(timeout);
        let started = tokio::time::Instant::now();
        let mut events = watcher(api.clone(), config).boxed();
        let mut buffer: HashMap<Key, Cached> = HashMap::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => {
                    view.synced.send_replace(false);
                    buffer = HashMap::new();
                }
                Ok(watcher::Event::InitApply(object)) => {
                    let object = serde_json::to_value(object).expect("objects serialize");
                    if let Some(key) = key_of(&object) {
                        buffer.insert(key, Cached::of(object, &kept));
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    let count = buffer.len();
                    *view.objects.write().expect("view lock") = std::mem::take(&mut buffer);
                    view.synced.send_replace(true);
                    debug!(objects = count, "live view synced");
                    // Whatever happened while unsynced is seen by a pass now.
                    changed();
                }
                Ok(watcher::Event::Apply(object)) => {
                    let object = serde_json::to_value(object).expect("objects serialize");
                    if let Some(key) = key_of(&object) {
                        let cached = Cached::of(object, &kept);
                        view.objects.write().expect("view lock").insert(key, cached);
                    }
                    changed();
                }
                Ok(watcher::Event::Delete(object)) => {
                    let object = serde_json::to_value(object).expect("objects serialize");
                    if let Some(key) = key_of(&object) {
                        view.objects.write().expect("view lock").remove(&key);
                    }
                    changed();
                }
                Err(e) => {
                    // Not synced until a complete list again: "not in the
                    // view" means nothing meanwhile.
                    view.synced.send_replace(false);
                    let expired =
                        matches!(&e, watcher::Error::WatchError(status) if status.code == 410);
                    if expired {
                        // The watcher lists again by itself.
                        debug!("watch expired (410 Gone); listing again");
                        continue;
                    }
                    if !warned {
                        warned = true;
                        warn!(error = %e, "cannot watch; reading this kind object by object until the watch works");
                    } else {
                        debug!(error = %e, "watch still failing");
                    }
                    break;
                }
            }
        }
        view.synced.send_replace(false);
        // A watch that worked a while starts over quickly; one that keeps
        // failing right after its list (watch forbidden, list allowed)
        // waits longer each time instead of listing in a loop.
        if started.elapsed() > HEALTHY_WATCH {
            backoff.reset();
            warned = false;
        }
        tokio::time::sleep(backoff.next_delay(rand::random::<f64>())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("web".into()),
            name: name.into(),
        }
    }

    fn config_map(name: &str, version: &str, labelled: bool, value: &str) -> Value {
        let labels = if labelled {
            json!({APP_LABEL: "web"})
        } else {
            json!({})
        };
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "web", "resourceVersion": version, "labels": labels},
            "data": {"k": value}})
    }

    /// A view of ConfigMaps holding `c` at version 5, with no watch behind it.
    fn view_with_one() -> (LiveView, Arc<KindView>) {
        let client = kube::Client::try_from(kube::Config::new(
            "http://127.0.0.1:9".parse().expect("a URL"),
        ))
        .expect("a client");
        let live = LiveView::new(client, Duration::from_secs(290));
        let view = Arc::new(KindView {
            objects: RwLock::new(HashMap::new()),
            synced: watch::channel(false).0,
        });
        let held = config_map("c", "5", true, "v");
        view.objects
            .write()
            .unwrap()
            .insert(key_of(&held).unwrap(), Cached::of(held, &live.kept));
        live.kinds
            .lock()
            .unwrap()
            .insert(reference("c").gvk(), view.clone());
        (live, view)
    }

    #[tokio::test]
    async fn an_unsynced_view_never_says_absent() {
        let (live, view) = view_with_one();
        // Not synced: neither present nor absent; the caller reads.
        assert_eq!(live.lookup(&reference("c")), Seen::NotReady);
        assert_eq!(live.lookup(&reference("other")), Seen::NotReady);
        view.synced.send_replace(true);
        assert!(matches!(live.lookup(&reference("c")), Seen::Present(o) if o["data"]["k"] == "v"));
        assert_eq!(live.lookup(&reference("other")), Seen::Absent);
        // A kind without a view is never absent either.
        let mut deployment = reference("c");
        deployment.api_version = "apps/v1".into();
        deployment.kind = "Deployment".into();
        assert_eq!(live.lookup(&deployment), Seen::NotReady);
        // A watch error makes it unsynced again.
        view.synced.send_replace(false);
        assert_eq!(live.lookup(&reference("other")), Seen::NotReady);
    }

    #[tokio::test]
    async fn writes_go_into_the_view_unless_it_holds_a_newer_version() {
        let (live, view) = view_with_one();
        view.synced.send_replace(true);
        let data = |live: &LiveView| match live.lookup(&reference("c")) {
            Seen::Present(o) => o["data"]["k"].as_str().map(str::to_owned),
            _ => None,
        };
        // Older than what the watch brought: ignored.
        live.record(&reference("c"), &config_map("c", "4", true, "old"));
        assert_eq!(data(&live).as_deref(), Some("v"));
        live.record(&reference("c"), &config_map("c", "9", true, "new"));
        assert_eq!(data(&live).as_deref(), Some("new"));
        // Our label gone (a withdrawn record): out of the view.
        live.record(&reference("c"), &config_map("c", "10", false, "new"));
        assert_eq!(live.lookup(&reference("c")), Seen::Absent);
        live.record(&reference("c"), &config_map("c", "11", true, "back"));
        assert_eq!(data(&live).as_deref(), Some("back"));
        live.forget(&reference("c"));
        assert_eq!(live.lookup(&reference("c")), Seen::Absent);
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn cached_objects_keep_only_our_managed_fields_entry() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "web", "resourceVersion": "7",
                "managedFields": [
                    {"manager": "switchyard", "operation": "Apply", "fieldsV1": {"f:data": {"f:k": {}}}},
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:x": {}}}},
                    {"manager": "kube-controller-manager", "operation": "Update"}
                ]},
            "data": {"k": "v", "x": "y"}});
        let kept = strip(object.clone(), &Default::default());
        assert_eq!(
            kept["metadata"]["managedFields"],
            json!([{"manager": "switchyard", "operation": "Apply", "fieldsV1": {"f:data": {"f:k": {}}}}])
        );
        assert_eq!(kept["data"], object["data"]);
        assert_eq!(key_of(&kept), Some((Some("web".into()), "c".into())));
        assert_eq!(resource_version(&kept), Some(7));
        // The managers an ignore rule names are kept too.
        let named = strip(object, &["kubectl-edit".to_owned()].into());
        let managers: Vec<&str> = named["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["switchyard", "kubectl-edit"]);
    }

    #[tokio::test]
    async fn objects_stripped_before_the_kept_managers_changed_are_read_again() {
        let (live, view) = view_with_one();
        view.synced.send_replace(true);
        assert!(matches!(live.lookup(&reference("c")), Seen::Present(_)));
        live.keep_managers(["kube-controller-manager".to_owned()].into());
        assert_eq!(live.lookup(&reference("c")), Seen::NotReady);
        // What a read brings, at the same version, replaces it.
        live.record(&reference("c"), &config_map("c", "5", true, "read"));
        assert!(
            matches!(live.lookup(&reference("c")), Seen::Present(o) if o["data"]["k"] == "read")
        );
        // The same set again changes nothing.
        live.keep_managers(["kube-controller-manager".to_owned()].into());
        assert!(matches!(live.lookup(&reference("c")), Seen::Present(_)));
    }
}
