//! Admin API tokens with roles and the audit log, end to end with the real
//! binary: a viewer token used from "another machine" (`--server` and
//! `SWITCHYARD_TOKEN`, no data dir) reads but may not change anything, and
//! the refusal shows up in `switchyard audit`.

use serde_json::Value;
use switchyard_tests::fleet::TestHub;

fn create_token(hub: &TestHub, name: &str, role: &str) -> String {
    let created = hub.cli_json(&["token", "create", name, "--role", role, "--ttl", "30d"]);
    assert_eq!(created["role"], role, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("syt_"), "{secret}");
    secret
}

#[test]
fn a_viewer_reads_is_refused_changes_and_the_refusal_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let viewer = create_token(&hub, "ci", "viewer");

    let refused = hub.cli_as(&viewer, &["cluster", "add", "x"]);
    assert!(!refused.success(), "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("role viewer may not add clusters (HTTP 403)"),
        "{}",
        refused.stderr
    );
    let listed = hub.cli_as(&viewer, &["cluster", "list"]);
    assert!(listed.success(), "{}", listed.stderr);
    // Nothing was registered by the refused attempt.
    assert_eq!(hub.cli_json(&["cluster", "list"]), Value::Array(vec![]));
    // Viewers do not read tokens or the audit log either.
    let audit_as_viewer = hub.cli_as(&viewer, &["audit"]);
    assert!(
        audit_as_viewer
            .stderr
            .contains("role viewer may not read the audit log (HTTP 403)"),
        "{}",
        audit_as_viewer.stderr
    );

    // An operator may sync: it gets past the role check to the app lookup.
    let operator = create_token(&hub, "deployer", "operator");
    let sync = hub.cli_as(&operator, &["app", "sync", "nope"]);
    assert!(
        sync.stderr.contains("(HTTP 404)") && !sync.stderr.contains("may not"),
        "{}",
        sync.stderr
    );
    let remove = hub.cli_as(&operator, &["app", "delete", "nope"]);
    assert!(
        remove
            .stderr
            .contains("role operator may not delete apps (HTTP 403)"),
        "{}",
        remove.stderr
    );

    let audit = hub.cli_json(&["audit", "--since", "1h"]);
    let entries = audit.as_array().unwrap();
    // Two token creations, the refused add, the sync and the refused delete.
    let actors: Vec<&str> = entries
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["admin", "ci", "admin", "deployer", "deployer"],
        "{audit:#}"
    );
    let add = entries
        .iter()
        .find(|e| e["target"] == "cluster x")
        .expect("the refused cluster add is audited");
    assert_eq!(add["actor"], "ci");
    assert_eq!(add["role"], "viewer");
    assert_eq!(add["method"], "POST");
    assert_eq!(add["path"], "/api/v1/clusters");
    assert_eq!(add["status"], 403);
    assert_eq!(add["message"], "role viewer may not add clusters");
    assert!(
        add["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{add}"
    );
    let table = hub.cli(&["audit"]);
    assert!(table.success(), "{}", table.stderr);
    let row = table
        .stdout
        .lines()
        .find(|l| l.contains("cluster x"))
        .unwrap_or_else(|| panic!("no row for the refusal:\n{}", table.stdout));
    assert!(row.contains("ci") && row.contains("403"), "{row}");

    // The list shows the use but never a secret; a revoked token stops at once.
    let tokens = hub.cli(&["token", "list", "-o", "json"]);
    assert!(tokens.success(), "{}", tokens.stderr);
    assert!(
        !tokens.stdout.contains(&viewer) && !tokens.stdout.contains(&operator),
        "{}",
        tokens.stdout
    );
    let tokens: Value = serde_json::from_str(&tokens.stdout).unwrap();
    let ci = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert!(ci["last_used"].is_string(), "{ci}");
    let revoked = hub.cli(&["token", "revoke", "ci"]);
    assert!(
        revoked.success() && revoked.stdout.contains("token ci revoked"),
        "{}",
        revoked.stderr
    );
    let after = hub.cli_as(&viewer, &["cluster", "list"]);
    assert!(
        !after.success() && after.stderr.contains("token ci was revoked at"),
        "{}",
        after.stderr
    );
}
