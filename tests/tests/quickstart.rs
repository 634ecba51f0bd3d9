//! The README's first command works: `switchyard quickstart` brings up a hub
//! and three dry-run agents and shows them connected.

use std::time::Duration;
use switchyard_tests::process::{binary, run};

#[test]
fn quickstart_enrolls_and_connects_three_agents() {
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
