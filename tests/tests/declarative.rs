//! `switchyard apply -f` and `switchyard export` end to end with the real
//! binary: created, configured and unchanged like kubectl, a round trip
//! through export, groups that move apps' clusters, and files refused with
//! their file, document and line, writing nothing.

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::process::{binary, wait_until};

/// A config repo with one ConfigMap app under `web/`, served over file://.
fn config_repo(dir: &Path) -> String {
    let source = GitRepoBuilder::new();
    source.write(
        "web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
    );
    source.commit("web");
    let bare = source.publish(&dir.join("served"), "config");
    format!("file://{}", bare.display())
}

fn manifests(url: &str, password_file: &Path, edge_selector: &str) -> (String, String) {
    let infra = format!(
        "\
apiVersion: switchyard.dev/v1
kind: Repo
metadata:
  name: config
spec:
  url: {url}
  interval: 1m
  username: bot
  passwordFile: {}
---
apiVersion: switchyard.dev/v1
kind: ClusterGroup
metadata:
  name: edge
spec:
  selector: {edge_selector}
",
        password_file.display()
    );
    let apps = "\
apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: web
spec:
  repo: config
  path: web
  target:
    group: edge
    selector: env=prod
  prune: true
";
    (infra, apps.to_owned())
}

fn apply(hub: &TestHub, args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["apply"];
    full.extend(args);
    let out = hub.cli(&full);
    (out.success(), out.stdout, out.stderr)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn targets(hub: &TestHub, app: &str) -> Value {
    hub.cli_json(&["app", "show", app])["target_clusters"].clone()
}

#[test]
fn apply_is_idempotent_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let url = config_repo(dir.path());
    let secret = "s3cr3t-token-never-exported";
    let password_file = dir.path().join("git-token");
    std::fs::write(&password_file, secret).unwrap();
    for (name, labels) in [
        ("eu-1", &["tier=edge", "env=prod"][..]),
        ("us-1", &["tier=edge", "env=dev"][..]),
        ("core", &["tier=core", "env=prod"][..]),
    ] {
        hub.add_cluster(name, labels);
    }

    // A directory: its *.yaml and *.yml files in name order; others ignored.
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let (infra, apps) = manifests(&url, &password_file, "tier=edge");
    std::fs::write(config.join("10-infra.yaml"), &infra).unwrap();
    std::fs::write(config.join("20-apps.yml"), &apps).unwrap();
    std::fs::write(config.join("README.md"), "not a manifest").unwrap();
    let config_arg = config.to_str().unwrap();

    let (ok, stdout, stderr) = apply(&hub, &["-f", config_arg]);
    assert!(ok, "{stderr}");
    // Groups and repos before the apps that name them.
    assert_eq!(
        lines(&stdout),
        [
            "clustergroup/edge created",
            "repo/config created",
            "app/web created"
        ]
    );
    assert_eq!(targets(&hub, "web"), serde_json::json!(["eu-1"]));

    let (ok, stdout, stderr) = apply(&hub, &["-f", config_arg]);
    assert!(ok, "{stderr}");
    assert_eq!(
        lines(&stdout),
        [
            "clustergroup/edge unchanged",
            "repo/config unchanged",
            "app/web unchanged"
        ]
    );

    // Export: no secret, and fed back to apply, nothing changes.
    let exported = hub.cli(&["export"]);
    assert!(exported.success(), "{}", exported.stderr);
    assert!(!exported.stdout.contains(secret), "{}", exported.stdout);
    assert!(
        exported
            .stdout
            .contains(&format!("passwordFile: {}", password_file.display())),
        "{}",
        exported.stdout
    );
    let export_file = dir.path().join("export.yaml");
    std::fs::write(&export_file, &exported.stdout).unwrap();
    let (ok, stdout, stderr) = apply(&hub, &["-f", export_file.to_str().unwrap()]);
    assert!(ok, "{stderr}\n{}", exported.stdout);
    assert_eq!(
        lines(&stdout),
        [
            "clustergroup/edge unchanged",
            "repo/config unchanged",
            "app/web unchanged"
        ]
    );
    // JSON export, only apps, read from stdin.
    let json = hub.cli(&["export", "-o", "json", "app"]);
    assert!(json.success(), "{}", json.stderr);
    let docs: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 1, "{docs}");
    assert_eq!(docs[0]["kind"], "App");
    assert_eq!(docs[0]["spec"]["target"]["group"], "edge");
    let mut child = Command::new(binary("switchyard"))
        .args(["apply", "-f", "-"])
        .env("SWITCHYARD_DATA_DIR", hub.data_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.stdout.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app/web unchanged\n");

    // The group's selector changes: the app's clusters follow.
    let (infra, _) = manifests(&url, &password_file, "tier in (edge,core)");
    std::fs::write(config.join("10-infra.yaml"), &infra).unwrap();
    // A dry run says what would change and changes nothing.
    let (ok, stdout, stderr) = apply(&hub, &["-f", config_arg, "--dry-run"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        lines(&stdout),
        [
            "clustergroup/edge configured (dry run)",
            "repo/config unchanged (dry run)",
            "app/web unchanged (dry run)"
        ]
    );
    assert_eq!(targets(&hub, "web"), serde_json::json!(["eu-1"]));
    let (ok, stdout, stderr) = apply(&hub, &["-f", config_arg]);
    assert!(ok, "{stderr}");
    assert_eq!(
        lines(&stdout),
        [
            "clustergroup/edge configured",
            "repo/config unchanged",
            "app/web unchanged"
        ]
    );
    assert_eq!(targets(&hub, "web"), serde_json::json!(["core", "eu-1"]));
    let group = hub.cli(&["group", "show", "edge"]);
    assert!(
        group.stdout.contains("core, eu-1, us-1"),
        "{}",
        group.stdout
    );
    assert!(
        group.stdout.contains("Apps:           web"),
        "{}",
        group.stdout
    );
    let cores = hub.cli_json(&["cluster", "show", "core"]);
    assert!(
        wait_until(SOON, || {
            hub.cli_json(&["app", "show", "web"])["assigned"] == 2
        }),
        "the app was not assigned to both clusters: {cores}"
    );

    // The repo's interval and the app's policy change: configured.
    let changed = apps.replace("  prune: true", "  prune: true\n  manual: true");
    std::fs::write(config.join("20-apps.yml"), changed).unwrap();
    let (ok, stdout, stderr) = apply(&hub, &["-f", config_arg]);
    assert!(ok, "{stderr}");
    assert_eq!(lines(&stdout)[2], "app/web configured");
    assert_eq!(
        hub.cli_json(&["app", "show", "web"])["sync_policy"],
        "manual"
    );
}

#[test]
fn a_file_with_any_problem_changes_nothing_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let url = config_repo(dir.path());
    let password_file = dir.path().join("git-token");
    std::fs::write(&password_file, "token").unwrap();
    let (infra, apps) = manifests(&url, &password_file, "tier=edge");

    // The first two documents are fine; the third has a typo and a bad selector.
    let broken = format!(
        "{infra}---\n{}",
        apps.replace("  prune: true", "  prune: true\n  slefHeal: true")
    );
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, &broken).unwrap();
    let (ok, stdout, stderr) = apply(&hub, &["-f", file.to_str().unwrap()]);
    assert!(!ok, "{stdout}");
    let at = format!(
        "{}: document 3, line 29: unknown field `slefHeal`",
        file.display()
    );
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");

    let bad_values = format!(
        "{infra}---\n{}---\n{}",
        apps.replace("env=prod", "env in (prod"),
        apps.replace("name: web", "name: api")
            .replace("repo: config", "repo: nope")
    );
    std::fs::write(&file, &bad_values).unwrap();
    let (ok, _, stderr) = apply(&hub, &["-f", file.to_str().unwrap()]);
    assert!(!ok);
    for want in [
        format!(
            "{}: document 3, line 27: spec.target.selector: \"env in (prod\" is not a label selector",
            file.display()
        ),
        format!(
            "{}: document 4, line 35: spec.repo: repo nope is neither on the hub nor in these files",
            file.display()
        ),
    ] {
        assert!(stderr.contains(&want), "missing {want}\n{stderr}");
    }

    // Only the hub can see that a credentials file is missing; still nothing is written.
    let missing = infra.replace(
        password_file.to_str().unwrap(),
        "/nonexistent/switchyard-token",
    );
    std::fs::write(&file, format!("{missing}---\n{apps}")).unwrap();
    let (ok, _, stderr) = apply(&hub, &["-f", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "document 1, line 1: repo config: invalid password-file: /nonexistent/switchyard-token"
        ),
        "{stderr}"
    );

    for kind in ["repo", "group", "app"] {
        let listed = hub.cli_json(&[kind, "list"]);
        assert_eq!(listed, Value::Array(vec![]), "{kind}: {listed}");
    }
    let exported = hub.cli(&["export"]);
    assert!(exported.success(), "{}", exported.stderr);
    assert_eq!(exported.stdout, "");
}

#[test]
fn groups_from_the_command_line_move_apps_and_are_kept_while_used() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let url = config_repo(dir.path());
    hub.add_cluster("eu-1", &["tier=edge", "region=eu"]);
    hub.add_cluster("us-1", &["tier=edge", "region=us"]);
    let created = hub.cli(&["group", "create", "edge", "--selector", "tier=edge"]);
    assert!(created.success(), "{}", created.stderr);
    assert_eq!(
        created.stdout,
        "cluster group edge created; it selects 2 cluster(s) now\n"
    );
    let out = hub.cli(&["repo", "add", "config", &url, "--wait"]);
    assert!(out.success(), "{}", out.stderr);
    let out = hub.cli(&[
        "app",
        "create",
        "web",
        "--repo",
        "config",
        "--path",
        "web",
        "--group",
        "edge",
        "--selector",
        "region=eu",
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(targets(&hub, "web"), serde_json::json!(["eu-1"]));
    let listed = hub.cli(&["group", "list"]);
    assert_eq!(
        lines(&listed.stdout),
        [
            "NAME   SELECTOR    CLUSTERS   APPS",
            "edge   tier=edge   2          web"
        ]
    );
    let apps = hub.cli(&["app", "list"]);
    assert!(
        apps.stdout.contains("group/edge,region=eu"),
        "{}",
        apps.stdout
    );

    // A group in use stays; once no app targets it, it goes.
    let refused = hub.cli(&["group", "delete", "edge"]);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains(
            "cluster group edge is targeted by apps web; delete or move them first (HTTP 409)"
        ),
        "{}",
        refused.stderr
    );
    // `--group ''` stops targeting it: the app's own selector alone decides.
    let out = hub.cli(&[
        "app",
        "update",
        "web",
        "--group",
        "",
        "--selector",
        "tier=edge",
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(targets(&hub, "web"), serde_json::json!(["eu-1", "us-1"]));
    let deleted = hub.cli(&["group", "delete", "edge"]);
    assert!(deleted.success(), "{}", deleted.stderr);
    assert_eq!(hub.cli_json(&["group", "list"]), Value::Array(vec![]));
}
