//! Raw-HTTP tests of the fake API server: exact status codes, bodies and edge cases.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::FakeKube;

struct Resp {
    code: u16,
    /// The status line and headers, as sent.
    head: String,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Decodes a chunked HTTP/1.1 body (enough for axum's streamed responses).
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        raw = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One request over a fresh connection with `Connection: close`, read to the end.
async fn call(
    fake: &FakeKube,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut stream = tokio::net::TcpStream::connect(fake.addr())
        .await
        .expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
        .await
        .expect("response within 10s")
        .expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let code = head[9..12].parse().expect("status code");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let body = if header("transfer-encoding") == "chunked" {
        dechunk(body)
    } else {
        body.to_string()
    };
    Resp {
        code,
        head: head.to_string(),
        content_type: header("content-type"),
        body,
    }
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
    }

    /// The watch events of a streamed body, one JSON document a line.
    fn events(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Polls `cond` every 10 ms for at most 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s: {what}");
}

const APPLY: (&str, &str) = ("Content-Type", "application/apply-patch+yaml");
const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn status_of(r: &Resp) -> (u16, String) {
    let j = r.json();
    assert_eq!(j["kind"], "Status", "{}", r.body);
    assert_eq!(j["apiVersion"], "v1");
    assert_eq!(j["status"], "Failure");
    assert_eq!(j["code"], r.code);
    (r.code, j["reason"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn discovery_documents_and_unknown_paths() {
    let fake = FakeKube::start().await;
    let api = call(&fake, "GET", "/api", &[], "").await.json();
    assert_eq!(api["kind"], "APIVersions");
    let apis = call(&fake, "GET", "/apis", &[], "").await.json();
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in [
        "apps",
        "batch",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(groups.contains(&g), "{groups:?}");
    }
    let core = call(&fake, "GET", "/api/v1", &[], "").await.json();
    let names: Vec<&str> = core["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"configmaps") && names.contains(&"namespaces/status"));

    let accept = (
        "Accept",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    );
    let agg = call(&fake, "GET", "/apis", &[accept], "").await;
    assert!(
        agg.content_type.contains("as=APIGroupDiscoveryList"),
        "{}",
        agg.content_type
    );
    assert_eq!(agg.json()["kind"], "APIGroupDiscoveryList");

    // Unknown group: plain-text 404 like the real server; known group, unknown resource: Status.
    let unknown = call(&fake, "GET", "/apis/nope.example.com/v1/things", &[], "").await;
    assert_eq!(
        (unknown.code, unknown.body.trim()),
        (404, "404 page not found")
    );
    let no_res = call(
        &fake,
        "GET",
        "/apis/apps/v1/namespaces/default/gizmos",
        &[],
        "",
    )
    .await;
    assert_eq!(status_of(&no_res), (404, "NotFound".into()));
}

#[tokio::test]
async fn bad_requests_get_status_answers_not_panics() {
    let fake = FakeKube::start().await;
    let bad_json = call(
        &fake,
        "POST",
        CM_PATH,
        &[("Content-Type", "application/json")],
        "{nope",
    )
    .await;
    assert_eq!(status_of(&bad_json), (400, "BadRequest".into()));
    let no_manager = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/c"),
        &[APPLY],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
    )
    .await;
    assert_eq!(status_of(&no_manager), (422, "Invalid".into()));
    let wrong_media = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/c?fieldManager=t"),
        &[("Content-Type", "text/plain")],
        "x",
    )
    .await;
    assert_eq!(
        status_of(&wrong_media),
        (415, "UnsupportedMediaType".into())
    );
    let post_item = call(
        &fake,
        "POST",
        &format!("{CM_PATH}/c"),
        &[("Content-Type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(status_of(&post_item), (405, "MethodNotAllowed".into()));
    let name_mismatch = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/c?fieldManager=t"),
        &[APPLY],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"}}"#,
    )
    .await;
    assert_eq!(status_of(&name_mismatch), (400, "BadRequest".into()));
    let bad_name = call(
        &fake,
        "POST",
        CM_PATH,
        &[("Content-Type", "application/json")],
        r#"{"metadata":{"name":"Not_Valid"}}"#,
    )
    .await;
    assert_eq!(status_of(&bad_name), (422, "Invalid".into()));
    let bad_rv = call(
        &fake,
        "GET",
        &format!("{CM_PATH}?watch=1&resourceVersion=abc"),
        &[],
        "",
    )
    .await;
    assert_eq!(status_of(&bad_rv), (400, "BadRequest".into()));
    let bad_sel = call(
        &fake,
        "GET",
        &format!("{CM_PATH}?labelSelector=a%20in%20b"),
        &[],
        "",
    )
    .await;
    assert_eq!(status_of(&bad_sel), (400, "BadRequest".into()));
    let bad_json_patch = call(
        &fake,
        "PATCH",
        "/api/v1/namespaces/default",
        &[("Content-Type", "application/json-patch+json")],
        r#"[{"op":"replace","path":"/nope/x","value":1}]"#,
    )
    .await;
    assert_eq!(status_of(&bad_json_patch), (422, "Invalid".into()));
}

#[tokio::test]
async fn yaml_apply_dry_run_merge_and_json_patch() {
    let fake = FakeKube::start().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  labels:\n    a: b\ndata:\n  k: v\n";
    let dry = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/y?fieldManager=t&dryRun=All"),
        &[APPLY],
        yaml,
    )
    .await;
    assert_eq!(dry.code, 201, "{}", dry.body);
    assert!(
        fake.object("configmaps", Some("default"), "y").is_none(),
        "dry run stores nothing"
    );
    let created = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/y?fieldManager=t"),
        &[APPLY],
        yaml,
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    assert_eq!(created.json()["data"]["k"], "v");

    let merged = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/y"),
        &[("Content-Type", "application/merge-patch+json")],
        r#"{"data":{"k":null,"n":"1"}}"#,
    )
    .await;
    assert_eq!(merged.json()["data"], json!({"n": "1"}));
    let patched = call(
        &fake,
        "PATCH",
        &format!("{CM_PATH}/y"),
        &[("Content-Type", "application/json-patch+json")],
        r#"[{"op":"add","path":"/data/m","value":"2"},{"op":"test","path":"/data/n","value":"1"}]"#,
    )
    .await;
    assert_eq!(patched.json()["data"], json!({"n": "1", "m": "2"}));
}

#[tokio::test]
async fn watch_replays_from_rv_and_expires_after_compaction() {
    let fake = FakeKube::start().await;
    let start = fake.resource_version();
    for name in ["a", "b"] {
        let body = json!({"metadata": {"name": name}}).to_string();
        assert_eq!(
            call(
                &fake,
                "POST",
                CM_PATH,
                &[("Content-Type", "application/json")],
                &body
            )
            .await
            .code,
            201
        );
    }
    let replay = call(
        &fake,
        "GET",
        &format!("{CM_PATH}?watch=true&timeoutSeconds=1&resourceVersion={start}"),
        &[],
        "",
    )
    .await;
    let kinds: Vec<String> = replay
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["type"].to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(kinds, vec!["\"ADDED\"", "\"ADDED\""], "{}", replay.body);

    let initial = call(
        &fake,
        "GET",
        &format!(
            "{CM_PATH}?watch=1&timeoutSeconds=1&sendInitialEvents=true&allowWatchBookmarks=true"
        ),
        &[],
        "",
    )
    .await;
    let last: Value = initial
        .body
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(
        last["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    fake.compact();
    let expired = call(
        &fake,
        "GET",
        &format!("{CM_PATH}?watch=1&timeoutSeconds=1&resourceVersion={start}"),
        &[],
        "",
    )
    .await;
    let ev: Value = serde_json::from_str(expired.body.trim()).unwrap_or_default();
    assert_eq!(
        (ev["type"].as_str(), ev["object"]["code"].as_u64()),
        (Some("ERROR"), Some(410)),
        "{}",
        expired.body
    );
    assert_eq!(ev["object"]["reason"], "Expired");
}

#[tokio::test]
async fn finalizers_owner_references_and_namespace_deletion() {
    let fake = FakeKube::start().await;
    let post = |path: &'static str, body: Value| {
        let fake = &fake;
        async move {
            call(
                fake,
                "POST",
                path,
                &[("Content-Type", "application/json")],
                &body.to_string(),
            )
            .await
            .json()
        }
    };
    post("/api/v1/namespaces", json!({"metadata": {"name": "team"}})).await;
    let owner = post(
        "/api/v1/namespaces/team/configmaps",
        json!({"metadata": {"name": "owner", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    post("/api/v1/namespaces/team/secrets", json!({"metadata": {"name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).await;

    let pending = call(
        &fake,
        "DELETE",
        "/api/v1/namespaces/team/configmaps/owner",
        &[],
        "",
    )
    .await
    .json();
    assert!(
        pending["metadata"]["deletionTimestamp"].is_string(),
        "{pending}"
    );
    assert!(
        fake.object("secrets", Some("team"), "dep").is_some(),
        "owner not gone yet"
    );
    fake.patch_out_of_band(
        "configmaps",
        Some("team"),
        "owner",
        json!({"metadata": {"finalizers": null}}),
    )
    .expect("drop finalizer");
    assert!(fake.object("configmaps", Some("team"), "owner").is_none());
    assert!(
        fake.object("secrets", Some("team"), "dep").is_none(),
        "dependent collected"
    );

    post(
        "/api/v1/namespaces/team/configmaps",
        json!({"metadata": {"name": "left"}}),
    )
    .await;
    let gone = call(
        &fake,
        "DELETE",
        "/api/v1/namespaces/team",
        &[],
        r#"{"propagationPolicy":"Foreground"}"#,
    )
    .await;
    assert_eq!(gone.json()["status"], "Success", "{}", gone.body);
    assert!(fake.objects("configmaps", Some("team")).is_empty());
}

#[tokio::test]
async fn forbid_is_scoped_and_fail_next_counts_down() {
    let fake = FakeKube::start().await;
    fake.forbid("secrets", Some("default"));
    let denied = call(&fake, "GET", "/api/v1/namespaces/default/secrets", &[], "").await;
    assert_eq!(status_of(&denied), (403, "Forbidden".into()));
    assert!(
        denied.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot list resource \"secrets\"")
    );
    assert_eq!(
        call(
            &fake,
            "GET",
            "/api/v1/namespaces/kube-system/secrets",
            &[],
            ""
        )
        .await
        .code,
        200
    );

    fake.fail_next(2, 503);
    for _ in 0..2 {
        let r = call(&fake, "GET", "/version", &[], "").await;
        assert_eq!(status_of(&r), (503, "ServiceUnavailable".into()));
    }
    assert_eq!(call(&fake, "GET", "/version", &[], "").await.code, 200);
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn discovery_faults_hit_one_group_version_and_count_down() {
    let fake = FakeKube::start().await;
    fake.fail_discovery("apps", "v1", 500, Some(2));
    for _ in 0..2 {
        let r = call(&fake, "GET", "/apis/apps/v1", &[], "").await;
        assert_eq!(status_of(&r), (500, "InternalError".into()));
    }
    let r = call(&fake, "GET", "/apis/apps/v1", &[], "").await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert!(r.body.contains("\"Deployment\""), "{}", r.body);
    // Other group versions, and the resources themselves, are untouched.
    fake.fail_discovery("apps", "v1", 503, None);
    assert_eq!(call(&fake, "GET", "/api/v1", &[], "").await.code, 200);
    assert_eq!(
        call(
            &fake,
            "GET",
            "/apis/apps/v1/namespaces/default/deployments",
            &[],
            ""
        )
        .await
        .code,
        200
    );
    for _ in 0..3 {
        let r = call(&fake, "GET", "/apis/apps/v1", &[], "").await;
        assert_eq!(status_of(&r), (503, "ServiceUnavailable".into()));
    }
    // The core group is addressed as "".
    fake.fail_discovery("", "v1", 503, Some(1));
    let r = call(&fake, "GET", "/api/v1", &[], "").await;
    assert_eq!(status_of(&r), (503, "ServiceUnavailable".into()));
    fake.clear_discovery_faults();
    assert_eq!(call(&fake, "GET", "/apis/apps/v1", &[], "").await.code, 200);
    assert_eq!(call(&fake, "GET", "/api/v1", &[], "").await.code, 200);
}

#[tokio::test]
async fn apply_answers_created_or_ok_and_names_conflicting_managers_and_fields() {
    let fake = FakeKube::start().await;
    let path = format!("{CM_PATH}/c?fieldManager=alice");
    let body = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1", "j": "x"}}"#;
    // An apply that creates answers 201, one that finds the object 200.
    assert_eq!(call(&fake, "PATCH", &path, &[APPLY], body).await.code, 201);
    assert_eq!(call(&fake, "PATCH", &path, &[APPLY], body).await.code, 200);

    let bob = format!("{CM_PATH}/c?fieldManager=bob");
    let one = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "2"}}"#;
    let r = call(&fake, "PATCH", &bob, &[APPLY], one).await;
    assert_eq!(status_of(&r), (409, "Conflict".into()));
    let j = r.json();
    assert_eq!(
        j["message"],
        "Apply failed with 1 conflict: conflict with \"alice\" using v1: .data.k"
    );
    assert_eq!(
        j["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alice\" using v1", "field": ".data.k"}])
    );
    let two = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "2", "j": "y"}}"#;
    let r = call(&fake, "PATCH", &bob, &[APPLY], two).await;
    assert_eq!(status_of(&r), (409, "Conflict".into()));
    let j = r.json();
    let mut fields: Vec<&str> = j["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, [".data.j", ".data.k"]);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .starts_with("Apply failed with 2 conflicts: conflicts with \"alice\" using v1:"),
        "{}",
        j["message"]
    );
    // Nothing changed; forcing takes the fields over.
    assert_eq!(
        fake.object("configmaps", Some("default"), "c").unwrap()["data"]["k"],
        "1"
    );
    let forced = format!("{bob}&force=true");
    assert_eq!(call(&fake, "PATCH", &forced, &[APPLY], two).await.code, 200);
    assert_eq!(
        fake.object("configmaps", Some("default"), "c").unwrap()["data"]["k"],
        "2"
    );
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let fake = FakeKube::start().await;
    let addr = fake.addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {CM_PATH}?watch=1 HTTP/1.1\r\nHost: fake\r\n\r\n").as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(10), fake.shutdown())
        .await
        .expect("shutdown is bounded");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the watch connection closes on shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn slow_requests_are_served_concurrently_not_one_after_another() {
    let fake = FakeKube::start().await;
    assert_eq!(super::DEFAULT_LATENCY, Duration::from_millis(2));
    // Long enough that every request is still waiting when the last one
    // arrives, even on a loaded machine; the check is the overlap itself.
    fake.set_latency(Duration::from_millis(1500));
    const N: usize = 8;
    let calls = (0..N).map(|_| call(&fake, "GET", CM_PATH, &[], ""));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|r| r.code == 200));
    // Serialised behind one lock, at most one would be in flight at a time.
    assert_eq!(fake.in_flight_high_water(), N);
    assert_eq!(fake.in_flight(), 0, "every answered request left");
    assert_eq!(fake.throttled(), 0);
}

#[tokio::test]
async fn over_the_in_flight_limit_answers_429_with_retry_after() {
    let fake = FakeKube::start().await;
    fake.set_latency(Duration::from_millis(1500));
    fake.set_max_in_flight(Some(1), 3);
    let slow = tokio::spawn({
        let addr = fake.addr();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(
                    format!("GET {CM_PATH} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .expect("write");
            let mut raw = String::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
                .await;
            raw
        }
    });
    eventually("the first request is in flight", || fake.in_flight() == 1).await;
    let refused = call(&fake, "GET", "/api/v1/namespaces", &[], "").await;
    assert_eq!(status_of(&refused), (429, "TooManyRequests".to_string()));
    assert_eq!(refused.header("retry-after"), Some("3"), "{}", refused.head);
    assert_eq!(refused.json()["details"]["retryAfterSeconds"], 3);
    assert_eq!(fake.throttled(), 1);
    let first = slow.await.expect("first request task");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    // A watch holds its slot only until its stream starts, as with API
    // Priority and Fairness: an open watch does not starve other requests.
    fake.set_latency(Duration::ZERO);
    let mut watch = tokio::net::TcpStream::connect(fake.addr())
        .await
        .expect("connect");
    watch
        .write_all(format!("GET {CM_PATH}?watch=1 HTTP/1.1\r\nHost: fake\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), watch.read_exact(&mut head))
        .await
        .expect("watch answers")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(call(&fake, "GET", CM_PATH, &[], "").await.code, 200);
    assert_eq!(fake.throttled(), 1);
}

#[tokio::test]
async fn watches_that_allow_bookmarks_get_them_with_the_latest_seen_version() {
    let fake = FakeKube::start().await;
    fake.set_latency(Duration::ZERO);
    fake.set_bookmark_interval(Duration::from_millis(50));
    fake.create_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "default"}}))
        .expect("seed");
    let cm_rv = fake.resource_version();
    let watch = tokio::spawn({
        let fake_addr = fake.addr();
        async move {
            // `call` needs the fake; a second handle is just its address.
            let mut stream = tokio::net::TcpStream::connect(fake_addr)
                .await
                .expect("connect");
            let path = format!(
                "{CM_PATH}?watch=1&timeoutSeconds=2&allowWatchBookmarks=true&resourceVersion={cm_rv}"
            );
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .expect("write");
            let mut raw = String::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
                .await;
            raw
        }
    });
    eventually("the watch is open", || {
        fake.requests().iter().any(|r| r.is_watch())
    })
    .await;
    // A write the watch filters out (another kind) still moves its bookmarks on.
    fake.create_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"}}))
        .expect("secret");
    let secret_rv = fake.resource_version();
    assert!(secret_rv > cm_rv);
    let raw = watch.await.expect("watch task");
    let (_, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let events = Resp {
        code: 200,
        head: String::new(),
        content_type: String::new(),
        body: dechunk(body),
    }
    .events();
    assert!(
        events.iter().all(|e| e["type"] == "BOOKMARK"),
        "only bookmarks: nothing of the watched kind changed: {events:?}"
    );
    let versions: Vec<u64> = events
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .collect();
    assert!(versions.len() >= 2, "{events:?}");
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
    assert_eq!(versions.last(), Some(&secret_rv), "{versions:?}");
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");

    // Without allowWatchBookmarks: none.
    let plain = call(
        &fake,
        "GET",
        &format!("{CM_PATH}?watch=1&timeoutSeconds=1&resourceVersion={secret_rv}"),
        &[],
        "",
    )
    .await;
    assert_eq!(plain.body.trim(), "", "no events, no bookmarks");
}
