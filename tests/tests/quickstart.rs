//! The README's first command works: `switchyard quickstart` brings up a hub,
//! a config repo and three dry-run agents, and a commit reaches exactly the
//! clusters its app targets.

use std::time::Duration;
use switchyard_tests::process::{binary, run};

#[test]
fn quickstart_runs_the_whole_journey() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &binary("switchyard"),
        &[
            "quickstart".into(),
            "--exit".into(),
            "--dir".into(),
            dir.path().display().to_string(),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(
        out.success(),
        "quickstart failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("All 3 agents enrolled and connected"),
        "{}",
        out.stdout
    );
    for name in ["edge-berlin", "edge-lisbon", "lab-1"] {
        let row = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", out.stdout));
        assert!(row.contains("Connected"), "{row}");
    }
    // The change reached the prod clusters and only them.
    assert!(out.stdout.contains("web moved to"), "{}", out.stdout);
    let start = out.stdout.rfind("APP ").expect("a status table");
    let end = out.stdout[start..]
        .find("\n\n")
        .map_or(out.stdout.len(), |e| start + e);
    let last_table = &out.stdout[start..end];
    let web_clusters: Vec<&str> = last_table
        .lines()
        .filter_map(|l| {
            let mut cells = l.split_whitespace();
            (cells.next() == Some("web")).then(|| cells.next().unwrap_or_default())
        })
        .collect();
    assert_eq!(web_clusters, ["edge-berlin", "edge-lisbon"], "{last_table}");

    // Running it again in the same place is refused instead of clobbering it.
    let again = run(
        &binary("switchyard"),
        &[
            "quickstart".into(),
            "--exit".into(),
            "--dir".into(),
            dir.path().display().to_string(),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(!again.success());
    assert!(
        again.stderr.contains("already holds a quickstart"),
        "{}",
        again.stderr
    );
}
