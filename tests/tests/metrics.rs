//! Operability of a real hub: `/metrics` scraped over the admin API's TLS
//! while an agent enrolls, connects, reports and reconnects, `/readyz`
//! once the hub has planned, and the spans that tag its log lines.

use serde_json::Value;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app};
use switchyard_tests::process::wait_until;

/// `GET path` on the admin API, trusting the hub's CA; status and body.
fn get(hub: &TestHub, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(hub.admin_tls())
        .build()
        .unwrap();
    let url = format!("{}{path}", hub.admin_url());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let response = client.get(&url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
}

/// The value of one series (`name{labels}`) in a scrape, if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(hub: &TestHub, series: &str) -> f64 {
    let (status, text) = get(hub, "/metrics");
    assert_eq!(status, 200, "{text}");
    value(&text, series).unwrap_or(0.0)
}

#[test]
fn metrics_move_as_an_agent_enrolls_connects_reports_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &["--heartbeat", "1s"]);
    assert!(
        wait_until(SOON, || get(&hub, "/readyz").0 == 200),
        "never ready: {:?}",
        get(&hub, "/readyz")
    );
    let (_, ready) = get(&hub, "/readyz");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready, serde_json::json!({"ready": true, "waiting_for": []}));
    assert!(
        hub.process
            .stderr_text()
            .contains("first planning pass done")
    );

    let (status, text) = get(&hub, "/metrics");
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE switchyard_connected_agents gauge"),
        "{text}"
    );
    assert_eq!(value(&text, "switchyard_connected_agents"), Some(0.0));
    assert_eq!(value(&text, "switchyard_status_reports_total"), Some(0.0));

    // A refused enrollment, then a good one.
    let join = hub.add_cluster("edge-1", &["env=prod"]);
    let mut bad = join.clone();
    let token = bad.iter().position(|a| a == "--token").unwrap() + 1;
    bad[token] = "syb_not-a-token".into();
    let refused = TestAgent::new(dir.path(), "intruder").join(&bad);
    assert!(!refused.success());
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    let joined = agent.join(&join);
    assert!(joined.success(), "{}", joined.stderr);
    assert_eq!(
        scrape(&hub, r#"switchyard_enrollments_total{result="failed"}"#),
        1.0
    );
    assert_eq!(
        scrape(&hub, r#"switchyard_enrollments_total{result="ok"}"#),
        1.0
    );

    let _source = add_demo_app(&hub, dir.path(), "env=prod");
    agent.start();
    assert!(hub.wait_connected("edge-1", true));
    assert_eq!(scrape(&hub, "switchyard_connected_agents"), 1.0);
    assert_eq!(scrape(&hub, "switchyard_agent_connections_total"), 1.0);
    assert_eq!(scrape(&hub, "switchyard_agent_reconnects_total"), 0.0);
    assert!(scrape(&hub, r#"switchyard_git_fetch_seconds_count{result="ok"}"#) >= 1.0);
    assert!(scrape(&hub, r#"switchyard_render_seconds_count{result="ok"}"#) >= 1.0);

    // The agent fetches its bundle and reports, every heartbeat.
    assert!(
        wait_until(SOON, || scrape(
            &hub,
            "switchyard_bundle_bytes_served_total"
        ) > 0.0),
        "no bundle bytes counted"
    );
    let reports = scrape(&hub, "switchyard_status_reports_total");
    assert!(
        wait_until(SOON, || scrape(&hub, "switchyard_status_reports_total")
            >= reports + 2.0),
        "status reports do not move past {reports}"
    );
    // The state gauges agree with `switchyard status` (a dry-run agent's
    // report, whatever it says, once it has said it).
    let mut row = Value::Null;
    assert!(wait_until(SOON, || {
        row = hub.cli_json(&["status"])[0].clone();
        row["observed_at"].is_string()
    }));
    let (sync, health) = (
        row["sync"].as_str().unwrap(),
        row["health"].as_str().unwrap(),
    );
    let (_, text) = get(&hub, "/metrics");
    assert_eq!(
        value(
            &text,
            &format!(r#"switchyard_app_clusters_by_sync{{sync="{sync}"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"switchyard_app_clusters_by_health{{health="{health}"}}"#)
        ),
        Some(1.0),
        "{text}"
    );

    // Stop and restart the agent: a reconnect; the gauge follows.
    agent.stop();
    assert!(wait_until(SOON, || scrape(
        &hub,
        "switchyard_connected_agents"
    ) == 0.0));
    agent.start();
    assert!(wait_until(SOON, || scrape(
        &hub,
        "switchyard_connected_agents"
    ) == 1.0));
    assert_eq!(scrape(&hub, "switchyard_agent_reconnects_total"), 1.0);
    assert_eq!(scrape(&hub, "switchyard_agent_connections_total"), 2.0);

    // Log lines carry the span of their connection and of their fetch.
    let log = hub.process.stderr_text();
    assert!(
        log.lines().any(|l| l.contains("agent{remote=127.0.0.1:")
            && l.contains("cluster=edge-1")
            && l.contains("agent connected")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("fetch{repo=demo trigger=") && l.contains("fetched")),
        "{log}"
    );
}
