//! The README's first command works: `switchyard quickstart` brings up a hub,
//! a config repo and three dry-run agents, and a commit reaches exactly the
//! clusters its app targets; it shows the diff each cluster received, the
//! commands it stands for, and cleans up after itself.

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
    // Dry-run agents report what they planned, not Unknown.
    for line in last_table.lines().skip(1) {
        assert!(line.contains(" Planned "), "{line}");
        assert!(line.contains("planned ("), "{line}");
    }
    for line in last_table.lines().filter(|l| l.starts_with("web ")) {
        assert!(
            line.contains("dry-run: 2 objects planned (")
                && line.contains("Deployment web")
                && line.contains("Service web"),
            "{line}"
        );
    }

    // The change each cluster received: replicas 1 -> 2 on prod, nothing on lab-1.
    let received = section(&out.stdout, "edge-berlin (env=prod):");
    assert!(received.contains("web: Deployment demo/web"), "{received}");
    assert!(received.contains("-   replicas: 1"), "{received}");
    assert!(received.contains("+   replicas: 2"), "{received}");
    assert!(!received.contains("Service"), "{received}");
    let lab = section(&out.stdout, "lab-1 (env=staging):");
    assert!(lab.contains("no object changed"), "{lab}");
    // One result line per cluster.
    let results = section(&out.stdout, "==> result per cluster");
    assert!(
        results
            .lines()
            .any(|l| l.trim_start().starts_with("edge-lisbon")
                && l.contains("web: 1 object changed")
                && l.contains("probe: same objects")),
        "{results}"
    );
    assert!(
        results
            .lines()
            .any(|l| l.trim_start().starts_with("lab-1") && !l.contains("web")),
        "{results}"
    );
    // Every command it stands for, as a user would type it.
    for command in [
        "$ switchyard serve --data-dir",
        "$ switchyard repo add config file://",
        "$ switchyard cluster add lab-1 --label env=staging",
        "$ SWITCHYARD_JOIN_TOKEN=… switchyard-agent join --hub",
        "$ switchyard-agent run --state-dir",
        "$ switchyard app create web --repo config --path apps/web --selector env=prod",
        "$ git commit -am 'scale web to 2 replicas'",
    ] {
        assert!(
            out.stdout.contains(command),
            "{command} not shown:\n{}",
            out.stdout
        );
    }
    // Piped: no colour. With --exit: nothing to try next (the hub is gone).
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    assert!(!out.stdout.contains("Try next"), "{}", out.stdout);
    // A --dir is kept.
    assert!(dir.path().join("hub.log").exists());

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

/// The lines from the one starting with `heading` to the next blank line.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{text}"));
    let rest = &text[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn quickstart_removes_its_temporary_directory_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        &binary("switchyard"),
        &["quickstart".into(), "--exit".into()],
        &[("TMPDIR", tmp.path().display().to_string())],
        Duration::from_secs(90),
    );
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Removed "), "{}", out.stdout);
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    let out = run(
        &binary("switchyard"),
        &["quickstart".into(), "--exit".into(), "--keep".into()],
        &[("TMPDIR", tmp.path().display().to_string())],
        Duration::from_secs(90),
    );
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    let kept: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].join("hub.log").exists(), "{kept:?}");
    assert!(
        out.stdout.contains(&format!("Kept {}", kept[0].display())),
        "{}",
        out.stdout
    );
}
