//! The admin API through the router itself (no sockets). `routes` holds
//! every route against every kind of caller, checked against the routes the
//! router declares; the other files test one concern each. This file holds
//! the environment they share: a hub's API on a fresh data dir.

mod malformed;
mod open_routes;
mod resources;
mod routes;
mod sessions;
mod tokens_and_audit;

use super::*;
use crate::auth::{self, Role};
use crate::fleet::FleetSettings;
use crate::store::SledStore;
use crate::unix_now;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard_common::ClusterName;
use tower::ServiceExt;

const ADMIN_SECRET: &str = "sya_builtin-admin-secret";
const BAD_SECRET: &str = "syt_0000000000000000000000000000000000000000000000000000000000000000";
const REMOTE: &str = "192.0.2.7:4242";

/// A hub's API on a fresh data dir: cluster `seed`, and one token per
/// kind of caller.
struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    fleet: Arc<Fleet>,
    router: Router,
    secrets: BTreeMap<&'static str, String>,
    /// The web sessions the router accepts besides bearer tokens.
    sessions: Arc<Sessions>,
}

async fn env() -> Env {
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
    fleet
        .add_cluster(
            ClusterName::new("seed").unwrap(),
            BTreeMap::new(),
            Duration::from_secs(3600),
        )
        .unwrap();
    let auth = Authenticator::new(store.clone(), ADMIN_SECRET);
    let now = unix_now();
    let mut secrets = BTreeMap::new();
    secrets.insert("admin", ADMIN_SECRET.to_owned());
    secrets.insert("bad", BAD_SECRET.to_owned());
    for (who, role) in [
        ("viewer", Role::Viewer),
        ("operator", Role::Operator),
        ("root", Role::Admin),
        ("spare", Role::Viewer),
    ] {
        secrets.insert(who, auth.create(who, role, None, now).unwrap().0);
    }
    // Expired and revoked tokens are admin tokens, so that their 401 can
    // never be mistaken for a 403.
    let (expired, _) = auth
        .create(
            "expired",
            Role::Admin,
            Some(Duration::from_secs(1)),
            now - 100,
        )
        .unwrap();
    secrets.insert("expired", expired);
    let (revoked, _) = auth.create("revoked", Role::Admin, None, now).unwrap();
    auth.revoke("revoked", now).unwrap();
    secrets.insert("revoked", revoked);
    // As `serve` does, so that the backup route has something to archive.
    let sessions = Arc::new(Sessions::new(
        Arc::new(Authenticator::new(store.clone(), ADMIN_SECRET)),
        true,
    ));
    let router = router_with_sessions(fleet.clone(), gitops, store.clone(), sessions.clone())
        .layer(axum::Extension(DataDir(dir.path().to_owned())));
    Env {
        _dir: dir,
        store,
        fleet,
        router,
        secrets,
        sessions,
    }
}

impl Env {
    async fn call(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(secret) = self.secrets.get(who) {
            request = request.header(header::AUTHORIZATION, format!("Bearer {secret}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(REMOTE.parse::<SocketAddr>().unwrap()));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// What a refused request must leave untouched.
    fn snapshot(&self) -> Value {
        let clusters: Vec<Value> = self
            .store
            .clusters()
            .unwrap()
            .into_iter()
            .map(|c| json!([c.name.as_str(), c.labels, c.generation]))
            .collect();
        let repos: Vec<String> = self
            .store
            .repos()
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        let apps: Vec<String> = self
            .store
            .apps()
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        let groups: Vec<Value> = self
            .store
            .groups()
            .unwrap()
            .into_iter()
            .map(|g| json!([g.name, g.selector]))
            .collect();
        let tokens: Vec<Value> = self
            .store
            .api_tokens()
            .unwrap()
            .into_iter()
            .map(|t| json!([t.name, t.role, t.hash, t.revoked_at]))
            .collect();
        json!({ "clusters": clusters, "repos": repos, "apps": apps, "groups": groups, "tokens": tokens })
    }
}
