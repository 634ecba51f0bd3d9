//! How long the web UI's pages take, and how many bytes they send, on a
//! large fleet: 10,000 clusters with 100 apps each, all reported, built
//! directly in a store (no agents), and the admin API's app list beside
//! them. Run by hand, it prints one line per page (BENCHMARKS.md, "Web UI
//! at fleet scale"):
//! `SWITCHYARD_WEB_SCALE_CLUSTERS=10000 cargo nextest run --workspace
//! -E 'test(pages_at_fleet_scale)' --run-ignored only --no-capture`.

use super::*;
use crate::auth::{Authenticator, Role};
use crate::fleet::FleetSettings;
use crate::store::{AppRecord, SledStore};
use axum::body::Body;
use axum::extract::Request;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchyard_common::ClusterName;
use switchyard_common::proto::{AppStatus, AssignmentItem, Health, SyncStatus};
use tower::ServiceExt;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds a 10,000-cluster store; run by hand for BENCHMARKS.md"]
async fn pages_at_fleet_scale() {
    let clusters = env_or("SWITCHYARD_WEB_SCALE_CLUSTERS", 10_000);
    let apps = env_or("SWITCHYARD_WEB_SCALE_APPS", 100);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let ca =
        switchyard_certs::CertificateAuthority::load_or_create(&dir.path().join("ca")).unwrap();
    let fleet = Arc::new(Fleet::new(
        store.clone(),
        ca,
        FleetSettings {
            agent_address: "127.0.0.1:7700".into(),
            cert_ttl: Duration::from_secs(3600),
            heartbeat: Duration::from_secs(30),
        },
    ));
    let gitops = Arc::new(GitOps::new(
        store.clone(),
        fleet.clone(),
        dir.path().join("repos"),
        dir.path().join("webhook-secret"),
    ));
    let started = Instant::now();
    let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904".to_owned();
    for a in 0..apps {
        let mut app = AppRecord::example(&format!("app-{a:03}"), "config");
        app.latest = Some(commit.clone());
        app.deployed = Some(commit.clone());
        store.create_app(&app).unwrap();
    }
    let items: Vec<AssignmentItem> = (0..apps)
        .map(|a| AssignmentItem {
            app: format!("app-{a:03}"),
            commit: commit.clone(),
            digest: format!("sha256:{a:064}"),
            namespace: None,
            prune: false,
            self_heal: false,
            ownership: Default::default(),
            ignore_differences: Vec::new(),
            prune_confirmed: None,
            create_namespace: true,
            prune_last: false,
            sync_requested: 0,
        })
        .collect();
    let regions = ["eu", "us", "ap"];
    for c in 0..clusters {
        let name = ClusterName::new(format!("shop-{c:05}")).unwrap();
        let labels = BTreeMap::from([
            (
                "env".to_owned(),
                if c % 10 == 0 { "staging" } else { "prod" }.to_owned(),
            ),
            ("region".to_owned(), regions[c % 3].to_owned()),
        ]);
        fleet
            .add_cluster(name.clone(), labels, Duration::from_secs(3600))
            .unwrap();
        store
            .update_cluster(&name, false, &mut |record| {
                record.assignment = items.clone();
                record.agent_version = Some("0.1.0".into());
                record.kubernetes_version = Some("v1.33.1".into());
            })
            .unwrap();
        let statuses = items
            .iter()
            .enumerate()
            .map(|(i, item)| AppStatus {
                app: item.app.clone(),
                commit: commit.clone(),
                digest: item.digest.clone(),
                sync: if (c + i) % 50 == 0 {
                    SyncStatus::OutOfSync
                } else {
                    SyncStatus::Synced
                },
                health: Health::Healthy,
                resources: Vec::new(),
                last_error: None,
                observed_at: crate::clock::unix_now(),
            })
            .collect();
        fleet.record_status(&name, statuses).unwrap();
    }
    store.flush().unwrap();
    println!(
        "built {clusters} clusters x {apps} apps in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let sessions = Arc::new(Sessions::new(
        Arc::new(Authenticator::new(store.clone(), "sya_scale")),
        false,
    ));
    let (cookie, _) = sessions.begin(
        Principal {
            name: "scale".into(),
            role: Role::Admin,
        },
        crate::clock::unix_now(),
    );
    let cookie = cookie.0.split(';').next().unwrap().to_owned();
    // The admin API beside the pages, as `serve` merges them: its app list
    // is measured too (with the session cookie, as the web UI's script calls it).
    let api = crate::api::router_with_sessions(
        fleet.clone(),
        gitops.clone(),
        store.clone(),
        sessions.clone(),
    );
    let router = router(WebState {
        fleet,
        gitops,
        sign_in: Arc::new(crate::sign_in::Guard::new(store.clone())),
        store,
        sessions,
        oidc: false,
        stopping: tokio::sync::watch::channel(false).1,
        heat_map: Default::default(),
    })
    .merge(api);
    let pages = [
        "/",
        "/clusters",
        "/clusters?selector=env%3Dstaging%2Cregion%3Deu&page=2",
        "/clusters/shop-00042",
        "/apps",
        "/apps/app-042",
        "/apps/app-042?page=3",
        "/repos",
        "/audit",
        "/tokens",
        "/api/v1/apps",
        "/api/v1/apps?limit=10",
        "/api/v1/apps?clusters=names",
        "/api/v1/apps/app-042",
    ];
    for path in pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..3 {
            let request = Request::builder()
                .uri(path)
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap();
            let at = Instant::now();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            times.push(at.elapsed());
            bytes = body.len();
            // A page that takes seconds is not run three times.
            if at.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
        times.sort();
        println!(
            "{path:60} median {:>7.1} ms  max {:>7.1} ms  {:>7} bytes",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            bytes
        );
    }
}
