//! kube-rs conformance tests: a real `kube::Client` against the fake Kubernetes API server.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Discovery};
use serde_json::{Value, json};
use switchyard_tests::fake_kube::FakeKube;

const STEP: Duration = Duration::from_secs(10);

fn client(fake: &FakeKube) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::new(fake.url().parse().expect("fake url is a valid URI"));
    Client::try_from(config).expect("kube client for the fake")
}

fn deployment_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
}

fn deployment(name: &str, replicas: i64, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    })
}

fn api_reason(err: &kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn apply(api: &Api<DynamicObject>, obj: &Value) -> Result<DynamicObject, kube::Error> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    tokio::time::timeout(
        STEP,
        api.patch(
            name,
            &PatchParams::apply("switchyard").force(),
            &Patch::Apply(obj),
        ),
    )
    .await
    .expect("apply within the step timeout")
}

#[tokio::test]
async fn discovery_finds_builtin_types_plain_and_aggregated() {
    let fake = FakeKube::start().await;
    let client = client(&fake);
    let version = tokio::time::timeout(STEP, client.apiserver_version())
        .await
        .expect("timely")
        .expect("version");
    assert_eq!(version.git_version, "v1.30.0");

    let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
    let plain = tokio::time::timeout(STEP, Discovery::new(client.clone()).run())
        .await
        .expect("timely")
        .expect("discovery");
    let (ar, caps) = plain.resolve_gvk(&gvk).expect("apps/v1 Deployment");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let (ns, _) = plain
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("core Namespace");
    assert_eq!(ns.plural, "namespaces");
    assert!(plain.has_group("rbac.authorization.k8s.io"));

    let aggregated = tokio::time::timeout(STEP, Discovery::new(client).run_aggregated())
        .await
        .expect("timely")
        .expect("aggregated discovery");
    let (ar, caps) = aggregated.resolve_gvk(&gvk).expect("aggregated Deployment");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        aggregated
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
            .is_some()
    );
}

#[tokio::test]
async fn server_side_apply_creates_is_idempotent_and_bumps_generation_on_spec_change() {
    let fake = FakeKube::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&fake), "default", &deployment_resource());

    let desired = deployment("web", 2, json!({"app": "web"}));
    let created = apply(&api, &desired).await.expect("apply creates");
    let rv1 = created.metadata.resource_version.clone().expect("rv");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let managers = created.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("switchyard")
                && m.operation.as_deref() == Some("Apply")),
        "{managers:?}"
    );

    let again = apply(&api, &desired).await.expect("identical apply");
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(again.metadata.generation, Some(1));

    // A label change is metadata: new resourceVersion, same generation.
    let relabelled = apply(
        &api,
        &deployment("web", 2, json!({"app": "web", "tier": "front"})),
    )
    .await
    .expect("label change");
    assert_ne!(
        relabelled.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(relabelled.metadata.generation, Some(1));

    let scaled = apply(&api, &deployment("web", 3, json!({"app": "web"})))
        .await
        .expect("spec change");
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(scaled.data["spec"]["replicas"], 3);
    // The label the manager stopped applying is gone, as with real server-side apply.
    let labels = scaled.metadata.labels.clone().unwrap_or_default();
    assert!(!labels.contains_key("tier"), "{labels:?}");

    // Typed clients deserialize what the fake serves.
    let typed: Api<Deployment> = Api::namespaced(client(&fake), "default");
    let d = typed.get("web").await.expect("typed get");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));

    // Status set by a "controller" survives a later apply of the spec.
    fake.set_status(
        "deployments",
        Some("default"),
        "web",
        json!({"availableReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]}),
    )
    .expect("set status");
    let after = apply(&api, &deployment("web", 3, json!({"app": "web"})))
        .await
        .expect("re-apply");
    assert_eq!(after.data["status"]["availableReplicas"], 3);
    assert_eq!(after.metadata.generation, Some(2));
}

#[tokio::test]
async fn list_with_label_selectors() {
    let fake = FakeKube::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&fake), "default", &deployment_resource());
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        apply(
            &api,
            &deployment(name, 1, json!({"app": name, "tier": tier})),
        )
        .await
        .expect("apply");
    }
    let names = |list: kube::api::ObjectList<DynamicObject>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()
    };
    let cases = [
        ("tier=front", vec!["a", "c"]),
        ("tier!=front", vec!["b"]),
        ("tier in (back,nowhere)", vec!["b"]),
        ("app notin (a),tier", vec!["b", "c"]),
        ("!tier", vec![]),
    ];
    for (selector, want) in cases {
        let got = tokio::time::timeout(STEP, api.list(&ListParams::default().labels(selector)))
            .await
            .expect("timely")
            .expect("list");
        assert_eq!(names(got), want, "{selector}");
    }
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("field selector list");
    assert_eq!(names(by_name), vec!["b"]);
    let meta = api
        .list_metadata(&ListParams::default().labels("tier=back"))
        .await
        .expect("metadata-only list");
    let meta_names: Vec<_> = meta
        .items
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    assert_eq!(meta_names, vec!["b"]);
    let bad = api
        .list(&ListParams::default().labels("tier in front"))
        .await
        .expect_err("malformed selector");
    assert_eq!(api_reason(&bad), (400, "BadRequest".to_string()));
}

#[tokio::test]
async fn watch_sees_added_modified_deleted() {
    let fake = FakeKube::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&fake), "default", &deployment_resource());
    let stream = tokio::time::timeout(STEP, api.watch(&WatchParams::default(), "0"))
        .await
        .expect("timely")
        .expect("watch");
    let mut stream = Box::pin(stream);

    apply(&api, &deployment("w", 1, json!({"app": "w"})))
        .await
        .expect("create");
    apply(&api, &deployment("w", 2, json!({"app": "w"})))
        .await
        .expect("modify");
    tokio::time::timeout(STEP, api.delete("w", &DeleteParams::background()))
        .await
        .expect("timely")
        .expect("delete");

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(STEP, stream.next())
            .await
            .expect("watch event within the step timeout")
            .expect("stream open")
            .expect("event decodes");
        match event {
            WatchEvent::Added(o) => seen.push(("ADDED", o.data["spec"]["replicas"].clone())),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o.data["spec"]["replicas"].clone())),
            WatchEvent::Deleted(o) => seen.push(("DELETED", o.data["spec"]["replicas"].clone())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![
            ("ADDED", json!(1)),
            ("MODIFIED", json!(2)),
            ("DELETED", json!(2))
        ]
    );

    // A watch from a known resourceVersion replays only later events.
    let current = fake.resource_version().to_string();
    fake.patch_out_of_band(
        "configmaps",
        Some("default"),
        "missing",
        json!({"data": {"x": "y"}}),
    )
    .expect_err("patching a missing object is NotFound");
    let cms: Api<ConfigMap> = Api::namespaced(client(&fake), "default");
    let replay = cms
        .watch(&WatchParams::default().timeout(5), &current)
        .await
        .expect("watch configmaps");
    let mut replay = Box::pin(replay);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}))
            .expect("configmap"),
    )
    .await
    .expect("create configmap");
    let first = tokio::time::timeout(STEP, replay.next())
        .await
        .expect("timely")
        .expect("open")
        .expect("decodes");
    assert!(
        matches!(&first, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("cm")),
        "{first:?}"
    );
}

#[tokio::test]
async fn delete_then_get_is_not_found() {
    let fake = FakeKube::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&fake), "default", &deployment_resource());
    apply(&api, &deployment("gone", 1, json!({"app": "gone"})))
        .await
        .expect("apply");
    let deleted = tokio::time::timeout(STEP, api.delete("gone", &DeleteParams::default()))
        .await
        .expect("timely")
        .expect("delete");
    assert!(deleted.is_right(), "built-ins answer a Status on delete");
    let err = api.get("gone").await.expect_err("deleted");
    assert_eq!(api_reason(&err), (404, "NotFound".to_string()));
    assert!(
        fake.object("deployments", Some("default"), "gone")
            .is_none()
    );
    let err = api
        .delete("gone", &DeleteParams::default())
        .await
        .expect_err("second delete");
    assert_eq!(api_reason(&err), (404, "NotFound".to_string()));
}

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

#[tokio::test]
async fn applied_crd_becomes_established_and_discoverable() {
    let fake = FakeKube::start().await;
    fake.set_crd_establish_delay(Duration::from_millis(300));
    let client = client(&fake);
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )),
    );
    apply(&crds, &crd()).await.expect("apply CRD");
    let widget = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let before = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    assert!(
        before.resolve_gvk(&widget).is_none(),
        "not served before Established"
    );

    // Wait for Established the way an agent would: poll with a bound.
    tokio::time::timeout(STEP, async {
        loop {
            let crd = crds.get("widgets.example.com").await.expect("get CRD");
            let established = crd.data["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True");
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("CRD established in time");

    let after = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, _) = after.resolve_gvk(&widget).expect("Widget discoverable");
    assert_eq!(ar.plural, "widgets");

    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w = apply(
        &widgets,
        &json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w1"}, "spec": {"size": 3}}),
    )
    .await
    .expect("apply custom resource");
    assert_eq!(w.data["spec"]["size"], 3);

    // Deleting the CRD removes its custom resources and its discovery entry.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete CRD");
    assert!(fake.object("crds", None, "widgets.example.com").is_none());
    let err = widgets.get("w1").await.expect_err("no longer served");
    assert_eq!(api_reason(&err).0, 404);
}

#[tokio::test]
async fn apply_into_missing_namespace_is_not_found() {
    let fake = FakeKube::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&fake), "nowhere", &deployment_resource());
    let err = apply(&api, &deployment("web", 1, json!({})))
        .await
        .expect_err("namespace missing");
    assert_eq!(api_reason(&err), (404, "NotFound".to_string()));
    match &err {
        kube::Error::Api(s) => assert_eq!(s.message, "namespaces \"nowhere\" not found"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn requests_are_recorded_and_noop_resync_is_visible() {
    let fake = FakeKube::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&fake), "default", &deployment_resource());
    apply(&api, &deployment("r", 1, json!({})))
        .await
        .expect("apply");
    let writes = fake.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(
        writes[0].path,
        "/apis/apps/v1/namespaces/default/deployments/r"
    );
    assert_eq!(
        writes[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(writes[0].param("fieldManager"), Some("switchyard"));
    assert_eq!(writes[0].param("force"), Some("true"));

    fake.clear_requests();
    // A resync that only reads sends zero writes.
    api.get("r").await.expect("get");
    api.list(&ListParams::default()).await.expect("list");
    assert!(fake.writes().is_empty());
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn injected_faults_and_conflicts_surface_as_api_errors() {
    let fake = FakeKube::start().await;
    let client = client(&fake);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}}))
            .expect("configmap");
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let err = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("dup");
    assert_eq!(api_reason(&err), (409, "AlreadyExists".to_string()));

    // PUT with a stale resourceVersion conflicts.
    fake.patch_out_of_band(
        "configmaps",
        Some("default"),
        "c",
        json!({"data": {"a": "2"}}),
    )
    .expect("drift");
    let err = cms
        .replace("c", &PostParams::default(), &created)
        .await
        .expect_err("stale");
    assert_eq!(api_reason(&err), (409, "Conflict".to_string()));

    // Applying a field another manager changed conflicts unless forced.
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "c"}, "data": {"a": "3"}});
    let err = cms
        .patch(
            "c",
            &PatchParams::apply("switchyard"),
            &Patch::Apply(&applied),
        )
        .await
        .expect_err("ownership conflict");
    assert_eq!(api_reason(&err), (409, "Conflict".to_string()));
    let forced = cms
        .patch(
            "c",
            &PatchParams::apply("switchyard").force(),
            &Patch::Apply(&applied),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced.data.and_then(|d| d.get("a").cloned()).as_deref(),
        Some("3")
    );

    fake.forbid("configmaps", Some("default"));
    let err = cms.get("c").await.expect_err("forbidden");
    assert_eq!(api_reason(&err), (403, "Forbidden".to_string()));
    fake.allow_all();

    fake.fail_next(1, 500);
    let err = cms.get("c").await.expect_err("injected 500");
    assert_eq!(api_reason(&err), (500, "InternalError".to_string()));
    cms.get("c").await.expect("only the next request fails");

    fake.set_admission_reject("ConfigMap", "c");
    let err = cms
        .patch(
            "c",
            &PatchParams::apply("switchyard").force(),
            &Patch::Apply(&applied),
        )
        .await
        .expect_err("admission");
    assert_eq!(api_reason(&err), (422, "Invalid".to_string()));
}

#[tokio::test]
async fn kubeconfig_file_points_kube_rs_at_the_fake() {
    let fake = FakeKube::start().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&path).expect("write kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("parse kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config from kubeconfig");
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).expect("client");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let ns = namespaces.get("default").await.expect("default namespace");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    drop(fake);
}

/// Drains a kube-rs watcher into a channel, so a test can wait for events
/// while the watcher keeps re-watching in the background.
fn spawn_watcher(
    api: Api<ConfigMap>,
    config: kube::runtime::watcher::Config,
) -> tokio::sync::mpsc::UnboundedReceiver<kube::runtime::watcher::Event<ConfigMap>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut events = Box::pin(kube::runtime::watcher(api, config));
        while let Some(event) = events.next().await {
            if let Ok(event) = event
                && tx.send(event).is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Waits (bounded) for the watcher's next `InitDone`, returning the names
/// of the objects its (re-)list delivered.
async fn next_init_done(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<kube::runtime::watcher::Event<ConfigMap>>,
) -> Vec<String> {
    use kube::runtime::watcher::Event;
    let mut listed = Vec::new();
    let mut started = false;
    loop {
        let event = tokio::time::timeout(STEP, events.recv())
            .await
            .expect("a watcher event within the step timeout")
            .expect("watcher running");
        match event {
            Event::Init => started = true,
            Event::InitApply(cm) if started => listed.push(cm.metadata.name.unwrap_or_default()),
            Event::InitDone if started => return listed,
            _ => {}
        }
    }
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

#[tokio::test]
async fn kube_rs_watcher_resumes_from_bookmarks() {
    let fake = FakeKube::start().await;
    fake.set_bookmark_interval(Duration::from_millis(50));
    let cms: Api<ConfigMap> = Api::namespaced(client(&fake), "default");
    cms.create(&PostParams::default(), &configmap("a"))
        .await
        .expect("create");
    // Server-side timeout of 1 s: the watcher re-watches every second, from
    // the last resourceVersion it saw.
    let config = kube::runtime::watcher::Config::default().timeout(1);
    let mut events = spawn_watcher(cms.clone(), config);
    assert_eq!(next_init_done(&mut events).await, ["a"]);
    // Only another kind changes: just a bookmark can tell the watcher.
    fake.create_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"}}))
        .expect("secret");
    let latest = fake.resource_version().to_string();
    let resumed = async {
        loop {
            let resumed = fake.requests().iter().any(|r| {
                r.is_watch()
                    && r.path.ends_with("/configmaps")
                    && r.param("resourceVersion") == Some(latest.as_str())
            });
            if resumed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(STEP, resumed)
        .await
        .expect("the watcher re-watches from the bookmark's resourceVersion");
    // A compaction now costs it nothing: it resumes, never re-lists.
    fake.compact();
    let lists_before = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch() && r.path.ends_with("/configmaps"))
        .count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let lists_after = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch() && r.path.ends_with("/configmaps"))
        .count();
    assert_eq!(lists_before, lists_after, "no re-list after compaction");
}

#[tokio::test]
async fn kube_rs_watcher_relists_after_410_gone() {
    let fake = FakeKube::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&fake), "default");
    cms.create(&PostParams::default(), &configmap("a"))
        .await
        .expect("create");
    let config = kube::runtime::watcher::Config::default()
        .timeout(1)
        .disable_bookmarks();
    let mut events = spawn_watcher(cms.clone(), config);
    assert_eq!(next_init_done(&mut events).await, ["a"]);
    // The watcher's resourceVersion falls behind the compaction: its next
    // watch answers 410 Expired, and it must list again.
    fake.create_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"}}))
        .expect("secret");
    let compacted = fake.resource_version();
    fake.compact();
    assert_eq!(next_init_done(&mut events).await, ["a"]);
    let requests = fake.requests();
    let on_configmaps = |r: &&switchyard_tests::fake_kube::RecordedRequest| {
        r.method == "GET" && r.path.ends_with("/configmaps")
    };
    let expired = requests.iter().filter(on_configmaps).any(|r| {
        r.is_watch()
            && r.param("resourceVersion")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v < compacted)
    });
    assert!(expired, "a watch from before the compaction: {requests:#?}");
    let lists = requests
        .iter()
        .filter(on_configmaps)
        .filter(|r| !r.is_watch())
        .count();
    assert_eq!(lists, 2, "listed, expired, listed again: {requests:#?}");
}
