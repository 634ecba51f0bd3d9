//! Cluster, repo, app and group names are DNS labels everywhere: the CLI
//! refuses a bad one before it sends anything, and `apply -f` names the
//! document and line, with the kind of name and the real reason.

use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::process::{Output, binary, run};

/// `switchyard ARGS` against a server where nothing listens: any request
/// would fail with a connection error.
fn against_nothing(args: &[&str]) -> Output {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["--server".into(), "https://127.0.0.1:9".into()]);
    run(
        &binary("switchyard"),
        &args,
        &[("SWITCHYARD_TOKEN", "syt_unused".to_owned())],
        SOON,
    )
}

const LABEL_RULE: &str = "a name is a DNS label: lowercase letters, digits and '-', \
                          starting and ending with a letter or digit";

#[test]
fn the_cli_refuses_bad_names_before_any_request() {
    let long = "a".repeat(100);
    let cases = [
        (
            vec!["app", "create", "Web_App", "--repo", "r", "--path", "p"],
            format!("app name \"Web_App\": {LABEL_RULE}"),
        ),
        (
            vec!["app", "create", &long, "--repo", "r", "--path", "p"],
            format!("app name {long:?}: a name is a DNS label of at most 63 characters, got 100"),
        ),
        (
            vec!["repo", "add", "Bad_Name", "https://example.invalid/r.git"],
            format!("repo name \"Bad_Name\": {LABEL_RULE}"),
        ),
        (
            vec!["group", "create", "edge-", "--selector", "tier=edge"],
            format!("cluster group name \"edge-\": {LABEL_RULE}"),
        ),
        (
            vec!["cluster", "add", "Edge.1"],
            format!("cluster name \"Edge.1\": {LABEL_RULE}"),
        ),
    ];
    for (args, reason) in cases {
        let out = against_nothing(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&reason), "{args:?}: {}", out.stderr);
    }
    // The same command with a good name does reach for the server, so the
    // refusals above were made before any request.
    let out = against_nothing(&["app", "create", "web-app", "--repo", "r", "--path", "p"]);
    assert!(!out.success());
    assert!(!out.stderr.contains("DNS label"), "{}", out.stderr);
    assert!(out.stderr.contains("127.0.0.1:9"), "{}", out.stderr);
}

#[test]
fn apply_refuses_bad_names_with_document_line_kind_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "\
apiVersion: switchyard.dev/v1
kind: Repo
metadata:
  name: Bad_Name
spec:
  url: https://example.invalid/r.git
---
apiVersion: switchyard.dev/v1
kind: App
metadata:
  name: Web_App
spec:
  repo: config
  path: web
  target:
    group: Edge
",
    )
    .unwrap();
    let out = hub.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.success(), "{}", out.stdout);
    let at = file.display();
    for want in [
        format!("{at}: document 1, line 4: metadata.name: repo name \"Bad_Name\": {LABEL_RULE}"),
        format!("{at}: document 2, line 11: metadata.name: app name \"Web_App\": {LABEL_RULE}"),
        format!(
            "{at}: document 2, line 16: spec.target.group: cluster group name \"Edge\": {LABEL_RULE}"
        ),
    ] {
        assert!(out.stderr.contains(&want), "missing {want}\n{}", out.stderr);
    }
    for kind in ["repo", "app"] {
        assert_eq!(
            hub.cli_json(&[kind, "list"]),
            serde_json::json!([]),
            "{kind}"
        );
    }
}
