//! Every route against every kind of caller: status codes, refusals that
//! write nothing, and one audit entry per mutating attempt. The table is
//! checked against the routes the router declares, so a new route without
//! a row fails; so is the OpenAPI description.

use super::*;

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
            "POST",
            "/api/v1/repos/nope/refresh",
            None,
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
        case(
            "GET",
            "/api/v1/apps/nope/manifests",
            None,
            None,
            operator(404),
        ),
        // Viewers too: Secret values are masked by the agent.
        case("GET", "/api/v1/apps/nope/diff", None, None, viewer(404)),
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
