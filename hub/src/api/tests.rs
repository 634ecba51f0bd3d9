//! Every route against every kind of caller, through the router itself
//! (no sockets): status codes, refusals that write nothing, and one audit
//! entry per mutating attempt. The table is checked against the routes the
//! router declares, so a new route without a row fails.

use super::*;
use crate::fleet::FleetSettings;
use crate::store::SledStore;
use axum::body::Body;
use serde_json::{Value, json};
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
    let router = router(
        fleet.clone(),
        gitops,
        store.clone(),
        ADMIN_SECRET.to_owned(),
    )
    .layer(axum::Extension(DataDir(dir.path().to_owned())));
    Env {
        _dir: dir,
        store,
        fleet,
        router,
        secrets,
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

/// Callers, in the order of the expectation columns below.
const CALLERS: [&str; 8] = [
    "none", "bad", "expired", "revoked", "viewer", "operator", "admin", "root",
];

fn role_of(who: &str) -> Role {
    match who {
        "viewer" => Role::Viewer,
        "operator" => Role::Operator,
        _ => Role::Admin,
    }
}

struct Case {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    /// Audit target of a mutation.
    target: Option<&'static str>,
    /// Takes no admin token (probes, the scraper, forges), so never audited.
    open: bool,
    /// Status per caller, in the order of [`CALLERS`].
    expect: [u16; 8],
}

fn case(
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    target: Option<&'static str>,
    expect: [u16; 8],
) -> Case {
    Case {
        method,
        path,
        body,
        target,
        open: false,
        expect,
    }
}

/// A route that takes no admin token: every caller gets `status`.
fn open_case(method: &'static str, path: &'static str, body: Option<Value>, status: u16) -> Case {
    Case {
        open: true,
        ..case(method, path, body, None, [status; 8])
    }
}

fn cases() -> Vec<Case> {
    // What viewers, operators and admins get: the route's own answer or 403.
    let admin_only = |ok: u16| [401, 401, 401, 401, 403, 403, ok, ok];
    let operator = |ok: u16| [401, 401, 401, 401, 403, ok, ok, ok];
    let viewer = |ok: u16| [401, 401, 401, 401, ok, ok, ok, ok];
    vec![
        case(
            "POST",
            "/api/v1/clusters",
            Some(json!({"name": "x"})),
            Some("cluster x"),
            admin_only(201),
        ),
        case(
            "DELETE",
            "/api/v1/clusters/seed",
            None,
            Some("cluster seed"),
            admin_only(200),
        ),
        case(
            "PATCH",
            "/api/v1/clusters/seed/labels",
            Some(json!({"set": {"env": "prod"}})),
            Some("cluster seed"),
            admin_only(200),
        ),
        case(
            "POST",
            "/api/v1/clusters/seed/tokens",
            Some(json!({})),
            Some("cluster seed"),
            admin_only(201),
        ),
        case(
            "POST",
            "/api/v1/repos",
            Some(json!({"name": "r", "url": "file:///nonexistent/r.git"})),
            Some("repo r"),
            admin_only(201),
        ),
        case(
            "POST",
            "/api/v1/repos?dry_run=true",
            Some(json!({"name": "r", "url": "file:///nonexistent/r.git"})),
            Some("repo r"),
            admin_only(200),
        ),
        case(
            "PUT",
            "/api/v1/repos/nope",
            Some(json!({"name": "nope", "url": "file:///nonexistent/r.git"})),
            Some("repo nope"),
            admin_only(404),
        ),
        case(
            "DELETE",
            "/api/v1/repos/nope",
            None,
            Some("repo nope"),
            admin_only(404),
        ),
        case(
            "POST",
            "/api/v1/groups",
            Some(json!({"name": "edge", "selector": "tier=edge"})),
            Some("group edge"),
            admin_only(201),
        ),
        case(
            "PUT",
            "/api/v1/groups/nope",
            Some(json!({"name": "nope", "selector": "tier=edge"})),
            Some("group nope"),
            admin_only(404),
        ),
        case(
            "DELETE",
            "/api/v1/groups/nope",
            None,
            Some("group nope"),
            admin_only(404),
        ),
        case(
            "POST",
            "/api/v1/apps",
            Some(json!({"name": "web", "repo": "nope", "path": "web"})),
            Some("app web"),
            admin_only(404),
        ),
        case(
            "PATCH",
            "/api/v1/apps/nope",
            Some(json!({})),
            Some("app nope"),
            admin_only(404),
        ),
        case(
            "DELETE",
            "/api/v1/apps/nope",
            None,
            Some("app nope"),
            admin_only(404),
        ),
        case(
            "POST",
            "/api/v1/apps/nope/sync",
            Some(json!({})),
            Some("app nope"),
            operator(404),
        ),
        case(
            "POST",
            "/api/v1/apps/nope/rollback",
            Some(json!({})),
            Some("app nope"),
            operator(404),
        ),
        case(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "new", "role": "viewer"})),
            Some("token new"),
            admin_only(201),
        ),
        case(
            "DELETE",
            "/api/v1/tokens/spare",
            None,
            Some("token spare"),
            admin_only(200),
        ),
        case("POST", "/api/v1/backup", None, None, admin_only(200)),
        case("GET", "/api/v1/clusters", None, None, viewer(200)),
        case("GET", "/api/v1/clusters/seed", None, None, viewer(200)),
        case("GET", "/api/v1/repos", None, None, viewer(200)),
        case("GET", "/api/v1/repos/nope", None, None, viewer(404)),
        case("GET", "/api/v1/apps", None, None, viewer(200)),
        case("GET", "/api/v1/apps/nope", None, None, viewer(404)),
        case("GET", "/api/v1/apps/nope/history", None, None, viewer(404)),
        case("GET", "/api/v1/status", None, None, viewer(200)),
        case("GET", "/api/v1/groups", None, None, viewer(200)),
        case("GET", "/api/v1/groups/nope", None, None, viewer(404)),
        case("GET", "/api/v1/tokens", None, None, admin_only(200)),
        case("GET", "/api/v1/audit", None, None, admin_only(200)),
        // Whatever token these are sent, valid or not, is ignored.
        open_case("GET", "/healthz", None, 200),
        // Not ready: this router has no QUIC endpoint and no planning pass.
        open_case("GET", "/readyz", None, 503),
        open_case("GET", "/metrics", None, 200),
        open_case("GET", "/openapi.json", None, 200),
        // From no forge.
        open_case("POST", "/api/v1/webhooks/git", Some(json!({})), 400),
    ]
}

/// The statuses observed, one row per route and one column per caller.
fn render(rows: &[(String, Vec<u16>)]) -> String {
    let width = rows.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
    let mut out = format!("{:width$}", "route \\ caller");
    for who in CALLERS {
        out.push_str(&format!(" | {who:>8}"));
    }
    out.push('\n');
    for (route, statuses) in rows {
        out.push_str(&format!("{route:width$}"));
        for status in statuses {
            out.push_str(&format!(" | {status:>8}"));
        }
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn every_route_against_every_caller() {
    let mut failures = Vec::new();
    let mut observed = Vec::new();
    for case in cases() {
        let mut row = Vec::new();
        for (who, expected) in CALLERS.iter().zip(case.expect) {
            let env = env().await;
            let before = env.snapshot();
            let (status, body) = env
                .call(who, case.method, case.path, case.body.as_ref())
                .await;
            row.push(status);
            let cell = format!("{} {} as {who}", case.method, case.path);
            if status != expected {
                failures.push(format!("{cell}: got {status}, want {expected}: {body}"));
                continue;
            }
            let message = body["error"].as_str().unwrap_or_default().to_owned();
            match status {
                401 => {
                    let want = match *who {
                        "none" => "missing bearer token",
                        "bad" => "invalid bearer token",
                        "expired" => "token expired expired at",
                        _ => "token revoked was revoked at",
                    };
                    assert!(message.starts_with(want), "{cell}: {message}");
                }
                403 => {
                    let want = format!("role {} may not ", role_of(who));
                    assert!(message.starts_with(&want), "{cell}: {message}");
                }
                _ => {}
            }
            if matches!(status, 401 | 403) {
                assert_eq!(env.snapshot(), before, "{cell} changed the store");
            }
            let audit = env.store.audit(0, 100).unwrap();
            let authenticated = status != 401;
            if case.method == "GET" || case.open || !authenticated {
                assert!(audit.is_empty(), "{cell} was audited: {audit:?}");
                continue;
            }
            assert_eq!(audit.len(), 1, "{cell}: {audit:?}");
            let entry = &audit[0];
            let actor = if *who == "admin" {
                auth::BUILTIN_ADMIN
            } else {
                who
            };
            assert_eq!(entry.actor, actor, "{cell}");
            assert_eq!(entry.role, role_of(who), "{cell}");
            assert_eq!(entry.method, case.method, "{cell}");
            assert_eq!(entry.path, case.path, "{cell}");
            assert_eq!(entry.target.as_deref(), case.target, "{cell}");
            assert_eq!(entry.status, status, "{cell}");
            assert_eq!(entry.remote.as_deref(), Some(REMOTE), "{cell}");
            if status >= 400 {
                assert_eq!(entry.message.as_deref(), Some(message.as_str()), "{cell}");
            } else {
                assert_eq!(entry.message, None, "{cell}");
            }
        }
        observed.push((format!("{} {}", case.method, case.path), row));
    }
    let table = render(&observed);
    println!("{table}");
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}

/// `(method, path pattern)` of every route `router` serves: the router is
/// built from the same descriptions (see `described_routes`).
fn declared_routes() -> Vec<(String, String)> {
    let description = serde_json::to_value(description()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in description["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// Whether a concrete path (query ignored) fits a route pattern with `{name}` segments.
fn fits(path: &str, pattern: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (a, b): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), pattern.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (y.starts_with('{') && y.ends_with('}')))
}

#[test]
fn the_table_has_a_row_for_every_route() {
    let routes = declared_routes();
    assert!(routes.len() > 30, "{routes:?}");
    let cases = cases();
    let missing: Vec<String> = routes
        .iter()
        .filter(|(method, pattern)| {
            !cases
                .iter()
                .any(|c| c.method == method && fits(c.path, pattern))
        })
        .map(|(method, pattern)| format!("{method} {pattern}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in cases(): {missing:?}"
    );
    for case in &cases {
        assert!(
            routes
                .iter()
                .any(|(m, p)| m == case.method && fits(case.path, p)),
            "row {} {} names no declared route",
            case.method,
            case.path
        );
    }
}

#[tokio::test]
async fn webhooks_and_healthz_need_no_token_and_are_not_audited() {
    let env = env().await;
    let (status, _) = env.call("none", "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (status, body) = env
        .call("none", "POST", "/api/v1/webhooks/git", Some(&json!({})))
        .await;
    // Refused for its missing signature, not for a missing bearer token.
    assert!(matches!(status, 400 | 401), "{status} {body}");
    let message = body["error"].as_str().unwrap();
    assert!(!message.contains("bearer"), "{message}");
    assert!(env.store.audit(0, 100).unwrap().is_empty());
}

#[tokio::test]
async fn readyz_waits_for_store_quic_and_the_first_plan_and_metrics_need_no_token() {
    let env = env().await;
    let (status, body) = env.call("none", "GET", "/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"ready": false, "waiting_for": ["store", "QUIC endpoint", "first planning pass"]})
    );
    env.fleet.readiness().store_opened();
    env.fleet.readiness().quic_bound();
    let (status, body) = env.call("none", "GET", "/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["waiting_for"], json!(["first planning pass"]));
    env.fleet.readiness().first_plan_done();
    let (status, body) = env.call("none", "GET", "/readyz", None).await;
    assert_eq!(
        (status, body),
        (200, json!({"ready": true, "waiting_for": []}))
    );

    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = env.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(text.contains("\nswitchyard_connected_agents 0\n"), "{text}");
    assert!(env.store.audit(0, 100).unwrap().is_empty());
}

/// A push delivery signed GitHub-style with `secret` (unsigned if `None`).
async fn deliver(env: &Env, url: &str, secret: Option<&[u8]>) -> (u16, Value) {
    let body = json!({"ref": "refs/heads/main", "repository": {"clone_url": url}}).to_string();
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/v1/webhooks/git")
        .header("X-GitHub-Event", "push");
    if let Some(secret) = secret {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let mac = hex::encode(ring::hmac::sign(&key, body.as_bytes()).as_ref());
        request = request.header("X-Hub-Signature-256", format!("sha256={mac}"));
    }
    let response = env
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn webhooks_do_not_tell_strangers_which_repos_are_followed() {
    let env = env().await;
    std::fs::write(env._dir.path().join("webhook-secret"), "hub-secret\n").unwrap();
    let followed = "file:///nonexistent/followed.git";
    let unknown = "file:///nonexistent/unknown.git";
    let (status, body) = env
        .call(
            "admin",
            "POST",
            "/api/v1/repos",
            Some(&json!({"name": "followed", "url": followed})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    for secret in [None, Some(&b"guessed"[..])] {
        let known = deliver(&env, followed, secret).await;
        let stranger = deliver(&env, unknown, secret).await;
        assert_eq!(known.0, 401, "{known:?}");
        assert_eq!(
            known, stranger,
            "the answers differ, so they reveal the followed repo"
        );
    }
    // Whoever holds the hub's secret may learn that nobody follows a URL.
    let (status, body) = deliver(&env, unknown, Some(b"hub-secret")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = deliver(&env, followed, Some(b"hub-secret")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["fetching"], json!(["followed"]));
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_used_tokens_show_it() {
    let env = env().await;
    let (status, created) = env
        .call(
            "admin",
            "POST",
            "/api/v1/tokens",
            Some(&json!({"name": "ci", "role": "viewer", "ttl_secs": 3600})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(auth::TOKEN_PREFIX));
    assert_eq!(created["state"], "active");
    assert!(created["expires_at"].is_string());

    // An active name is not minted twice; reserved and bad names are refused.
    let again = json!({"name": "ci", "role": "admin"});
    assert_eq!(
        env.call("admin", "POST", "/api/v1/tokens", Some(&again))
            .await
            .0,
        409
    );
    let reserved = json!({"name": "admin", "role": "admin"});
    assert_eq!(
        env.call("admin", "POST", "/api/v1/tokens", Some(&reserved))
            .await
            .0,
        422
    );
    let bad_role = json!({"name": "x", "role": "root"});
    assert_eq!(
        env.call("admin", "POST", "/api/v1/tokens", Some(&bad_role))
            .await
            .0,
        422
    );

    let mut env = env;
    env.secrets.insert("ci", secret.clone());
    assert_eq!(env.call("ci", "GET", "/api/v1/clusters", None).await.0, 200);
    let (status, list) = env.call("admin", "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&secret), "{text}");
    let ci = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert_eq!(ci["role"], "viewer");
    assert!(ci["last_used"].is_string(), "{ci}");
    let revoked = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "revoked")
        .unwrap();
    assert_eq!(revoked["state"], "revoked");

    // Revoked at once; a revoked name can be minted again, with a new secret.
    assert_eq!(
        env.call("admin", "DELETE", "/api/v1/tokens/ci", None)
            .await
            .0,
        200
    );
    assert_eq!(env.call("ci", "GET", "/api/v1/clusters", None).await.0, 401);
    let (status, fresh) = env
        .call(
            "admin",
            "POST",
            "/api/v1/tokens",
            Some(&json!({"name": "ci", "role": "operator"})),
        )
        .await;
    assert_eq!(status, 201, "{fresh}");
    assert_eq!(env.call("ci", "GET", "/api/v1/clusters", None).await.0, 401);
    assert_eq!(
        env.call("admin", "DELETE", "/api/v1/tokens/nope", None)
            .await
            .0,
        404
    );
    assert_eq!(
        env.call("admin", "DELETE", "/api/v1/tokens/admin", None)
            .await
            .0,
        422
    );
}

#[tokio::test]
async fn audit_is_filtered_by_time_and_limited_to_the_newest() {
    let env = env().await;
    for name in ["a", "b", "c"] {
        let body = json!({ "name": name });
        assert_eq!(
            env.call("admin", "POST", "/api/v1/clusters", Some(&body))
                .await
                .0,
            201
        );
    }
    let (status, all) = env.call("admin", "GET", "/api/v1/audit", None).await;
    assert_eq!(status, 200);
    let targets: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["cluster a", "cluster b", "cluster c"]);
    let (_, newest) = env
        .call("admin", "GET", "/api/v1/audit?limit=2", None)
        .await;
    assert_eq!(newest[0]["target"], "cluster b");
    assert_eq!(newest.as_array().unwrap().len(), 2);
    let (_, future) = env
        .call(
            "admin",
            "GET",
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(future, json!([]));
    let (status, body) = env
        .call("admin", "GET", "/api/v1/audit?since=yesterday", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("RFC 3339"));
}

#[tokio::test]
async fn a_repo_dry_run_checks_the_hubs_files_and_stores_nothing() {
    let env = env().await;
    let before = env.snapshot();
    let (status, body) = env
        .call(
            "admin",
            "POST",
            "/api/v1/repos?dry_run=true",
            Some(&json!({"name": "r", "url": "https://example.invalid/r.git",
                         "username": "bot", "password_file": "/nonexistent/token"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/token"),
        "{body}"
    );
    let (status, body) = env
        .call(
            "admin",
            "POST",
            "/api/v1/repos?dry_run=true",
            Some(&json!({"name": "r", "url": "https://example.invalid/r.git"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "r");
    assert_eq!(env.snapshot(), before);
}

#[tokio::test]
async fn groups_in_use_are_not_deleted_and_renames_are_refused() {
    let env = env().await;
    let call = |method, path, body: Option<Value>| {
        let env = &env;
        async move { env.call("admin", method, path, body.as_ref()).await }
    };
    let (status, body) = call(
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "edge", "selector": "tier = edge"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["selector"], "tier=edge");
    let (status, _) = call(
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "edge", "selector": ""})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, body) = call(
        "PUT",
        "/api/v1/groups/edge",
        Some(json!({"name": "other", "selector": ""})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        "POST",
        "/api/v1/repos",
        Some(json!({"name": "r", "url": "file:///nonexistent/r.git"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        "POST",
        "/api/v1/apps",
        Some(json!({"name": "web", "repo": "r", "path": "web", "group": "nope"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "cluster group nope not found");
    let (status, body) = call(
        "POST",
        "/api/v1/apps",
        Some(json!({"name": "web", "repo": "r", "path": "web", "group": "edge"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["group"], "edge");
    let (status, body) = call("DELETE", "/api/v1/groups/edge", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("web"), "{body}");
    let (status, body) = call("GET", "/api/v1/groups/edge", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["apps"], json!(["web"]));
}

/// A request with a raw body and content type, as `root` (an admin token
/// whose uses are recorded); status, content type and body.
async fn raw_call(
    env: &Env,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let mut request = Request::builder().method(method).uri(path).header(
        header::AUTHORIZATION,
        format!("Bearer {}", env.secrets["root"]),
    );
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let mut request = request.body(Body::from(body)).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(REMOTE.parse::<SocketAddr>().unwrap()));
    let response = env.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, content_type, value)
}

/// Everything a request could write: the store's contents, every token
/// with its last use, and the audit log.
fn everything(env: &Env) -> Value {
    json!({
        "snapshot": env.snapshot(),
        "tokens": serde_json::to_value(env.store.api_tokens().unwrap()).unwrap(),
        "audit": env.store.audit(0, 10_000).unwrap().len(),
    })
}

#[tokio::test]
async fn malformed_requests_get_json_errors_and_write_nothing() {
    let env = env().await;
    let json = Some("application/json");
    let huge = {
        let mut body = br#"{"name":"big","repo":"r","path":""#.to_vec();
        body.extend(std::iter::repeat_n(b'a', 2 * BODY_LIMIT));
        body.extend(br#""}"#);
        body
    };
    // Method, path, content type, body, expected status, part of the error.
    type Malformed<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Malformed> = vec![
        (
            "POST",
            "/api/v1/clusters",
            json,
            b"{\"name\": ".to_vec(),
            400,
            "parse",
        ),
        (
            "POST",
            "/api/v1/clusters",
            Some("text/plain"),
            br#"{"name":"x"}"#.to_vec(),
            415,
            "Content-Type: application/json",
        ),
        (
            "POST",
            "/api/v1/clusters",
            None,
            br#"{"name":"x"}"#.to_vec(),
            415,
            "Content-Type: application/json",
        ),
        (
            "POST",
            "/api/v1/clusters",
            json,
            br#"{"name":"x","colour":"red"}"#.to_vec(),
            422,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/api/v1/apps",
            json,
            huge.clone(),
            413,
            "request body larger than 1048576 bytes",
        ),
        (
            "PATCH",
            "/api/v1/clusters/seed/labels",
            json,
            huge,
            413,
            "request body larger than 1048576 bytes",
        ),
        (
            "GET",
            "/api/v1/audit?limit=many",
            None,
            vec![],
            400,
            "limit",
        ),
        (
            "GET",
            "/api/v1/nope",
            None,
            vec![],
            404,
            "no such route: GET /api/v1/nope",
        ),
        (
            "POST",
            "/nope",
            json,
            b"{}".to_vec(),
            404,
            "no such route: POST /nope",
        ),
        (
            "PUT",
            "/api/v1/status",
            json,
            b"{}".to_vec(),
            405,
            "method PUT is not allowed on /api/v1/status",
        ),
        (
            "DELETE",
            "/api/v1/clusters",
            None,
            vec![],
            405,
            "method DELETE is not allowed on /api/v1/clusters",
        ),
        (
            "GET",
            "/api/v1/webhooks/git",
            None,
            vec![],
            405,
            "method GET is not allowed on /api/v1/webhooks/git",
        ),
        (
            "POST",
            "/healthz",
            None,
            vec![],
            405,
            "method POST is not allowed on /healthz",
        ),
    ];
    let before = everything(&env);
    for (method, path, content_type, body, status, says) in cases {
        let (got, content_type, answer) = raw_call(&env, method, path, content_type, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(content_type, "application/json", "{method} {path}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path}: {answer}");
        assert_eq!(everything(&env), before, "{method} {path} wrote something");
    }

    // The same caller's well-formed request is recorded: the checks above
    // would have seen a write.
    let (status, _, answer) = raw_call(
        &env,
        "POST",
        "/api/v1/clusters",
        json,
        br#"{"name":"fine"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let after = everything(&env);
    assert_eq!(after["audit"], before["audit"].as_u64().unwrap() + 1);
    assert_ne!(after["tokens"], before["tokens"]);
}

#[tokio::test]
async fn the_openapi_description_lists_exactly_the_served_routes() {
    let env = env().await;
    let (status, doc) = env.call("none", "GET", "/openapi.json", None).await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let paths = doc["paths"].as_object().expect("paths");
    let described: std::collections::BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (path.clone(), m.to_string()))
        })
        .collect();

    // An independent list: the authorization rules of /api/v1 and the
    // routes that need no token.
    let mut expected: std::collections::BTreeSet<(String, String)> = auth::RULES
        .iter()
        .map(|r| (format!("/api/v1{}", r.route), r.method.to_lowercase()))
        .collect();
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/api/v1/webhooks/git", "post"),
    ] {
        expected.insert((path.to_owned(), method.to_owned()));
    }
    assert_eq!(described, expected);

    // Every operation says who may call it, and every schema it names exists.
    for (path, method) in &described {
        let operation = &paths[path][method];
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty())
        );
        let needs_token = path.starts_with("/api/v1/") && path != "/api/v1/webhooks/git";
        assert_eq!(
            operation["security"] == json!([{"bearer": []}]),
            needs_token,
            "{method} {path}: {operation}"
        );
    }
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for reference in text.split("\"$ref\":\"").skip(1) {
        let name = reference
            .split('"')
            .next()
            .unwrap()
            .strip_prefix("#/components/schemas/")
            .expect("a schema reference");
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not described"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // The router serves exactly what is described: each described method
    // reaches its route, every other method on a described path is 405.
    for path in paths.keys() {
        let concrete = path.replace("{name}", "seed");
        for method in METHODS {
            let (status, body) = env
                .call("admin", &method.to_uppercase(), &concrete, None)
                .await;
            let routed = !(status == 405
                || status == 404
                    && body["error"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("no such route"));
            assert_eq!(
                routed,
                described.contains(&(path.clone(), method.to_owned())),
                "{method} {concrete}: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn credentials_in_repo_urls_are_refused_and_stored_ones_never_shown() {
    let env = env().await;
    let before = env.snapshot();
    for dry_run in ["", "?dry_run=true"] {
        let (status, body) = env
            .call(
                "admin",
                "POST",
                &format!("/api/v1/repos{dry_run}"),
                Some(&json!({"name": "r", "url": "https://bot:tok3n@example.invalid/r.git"})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("--username") && error.contains("--password-file"),
            "{error}"
        );
        assert!(
            !error.contains("tok3n"),
            "the refusal repeats the secret: {error}"
        );
    }
    assert_eq!(env.snapshot(), before);
    let (_, audit) = env.call("admin", "GET", "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains("tok3n"), "{audit}");

    // A record stored by an older version that accepted such URLs.
    env.store
        .create_repo(&crate::store::RepoRecord {
            name: "old".into(),
            url: "https://bot:tok3n@example.invalid/r.git".into(),
            branch: "main".into(),
            interval_secs: 3600,
            username: None,
            password_file: None,
            ca_file: None,
            webhook_secret_file: None,
            created_at: unix_now(),
            fetch: Default::default(),
        })
        .unwrap();
    for path in ["/api/v1/repos/old", "/api/v1/repos"] {
        let (status, body) = env.call("viewer", "GET", path, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.to_string().contains("tok3n"), "{path}: {body}");
        assert!(
            body.to_string()
                .contains("https://***@example.invalid/r.git"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn only_an_admin_with_a_reason_may_sync_outside_the_tracked_revision() {
    let env = env().await;
    let before = env.snapshot();
    let body = json!({"revision": "abc1234", "allow_unreachable": true, "reason": "hotfix"});
    let (status, answer) = env
        .call("operator", "POST", "/api/v1/apps/web/sync", Some(&body))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("role operator may not deploy a commit outside the app's tracked revision"),
        "{answer}"
    );
    let no_reason = json!({"revision": "abc1234", "allow_unreachable": true});
    let (status, answer) = env
        .call("root", "POST", "/api/v1/apps/web/sync", Some(&no_reason))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("--reason"),
        "{answer}"
    );
    // Past the override checks, an admin reaches the app lookup.
    let (status, answer) = env
        .call("root", "POST", "/api/v1/apps/web/sync", Some(&body))
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(env.snapshot(), before);
}
