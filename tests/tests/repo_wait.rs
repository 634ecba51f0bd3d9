//! `switchyard repo add --wait`: returns once the hub has fetched the repo,
//! with the commit its branch resolved to, and ends with the fetch's error
//! when the first fetch fails.

use switchyard_tests::fleet::TestHub;
use switchyard_tests::git_server::GitRepoBuilder;

#[test]
fn repo_add_wait_returns_after_the_first_fetch_with_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let source = GitRepoBuilder::new();
    for i in 0..200 {
        source.write(&format!("apps/app-{i}/cm.yaml"), format!("n: {i}\n"));
    }
    let head = source.commit("two hundred apps");
    let bare = source.publish(&dir.path().join("served"), "config");
    let url = format!("file://{}", bare.display());

    // A long interval: only the first fetch can have happened by the time --wait returns.
    let out = hub.cli(&["repo", "add", "config", &url, "--interval", "1h", "--wait"]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("repo config fetched: main is at {head} (1 refs)\n")
    );
    let shown = hub.cli_json(&["repo", "show", "config"]);
    assert_eq!(shown["head"], head.as_str(), "{shown}");
    assert!(shown["fetching"].is_null(), "{shown}");
    assert!(shown["last_success"].is_string(), "{shown}");

    // -o json prints the fetched repo.
    let out = hub.cli(&["repo", "add", "again", &url, "--wait", "-o", "json"]);
    assert!(out.success(), "{}", out.stderr);
    let again: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(again["head"], head.as_str());

    // A branch the repo does not have: fetched, but nothing to follow (only
    // tracked refs are fetched, so the repo's main is not mirrored either).
    let out = hub.cli(&[
        "repo", "add", "nobranch", &url, "--branch", "prod", "--wait",
    ]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("repo nobranch was fetched (0 refs) but has no branch prod"),
        "{}",
        out.stderr
    );

    // A repo that cannot be fetched: the wait ends with the error.
    let missing = dir.path().join("served/missing.git");
    let url = format!("file://{}", missing.display());
    let out = hub.cli(&["repo", "add", "gone", &url, "--wait", "--timeout", "15s"]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains("the first fetch of repo gone failed:"),
        "{}",
        out.stderr
    );
}
