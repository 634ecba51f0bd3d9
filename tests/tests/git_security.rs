//! What the hub takes from Git and who may choose it, end to end with the
//! real binaries and real git servers: a pack over the hub's limit is
//! stopped with the previous commit still deployed, a branch no app follows
//! is never fetched, operators deploy only commits in the history of an
//! app's tracked revision (an admin may override, audited with a reason),
//! and repo URLs carrying credentials are refused.

use serde_json::Value;
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::git_server::{GitDaemon, GitRepoBuilder};
use switchyard_tests::process::wait_until;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: \"V\"\n";

fn cm(v: u32) -> String {
    CM.replace('V', &v.to_string())
}

/// Deterministic incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn create_token(hub: &TestHub, name: &str, role: &str) -> String {
    let created = hub.cli_json(&["token", "create", name, "--role", role, "--ttl", "1d"]);
    created["secret"].as_str().expect("secret").to_owned()
}

#[test]
fn a_pack_over_the_limit_is_stopped_and_the_deployed_commit_stays() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("app/cm.yaml", cm(1));
    let first = source.commit("first");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);

    let hub = TestHub::start(dir.path(), &["--git-max-pack-bytes", "102400"]);
    let url = daemon.url("fleet.git");
    hub.cli_ok(&["repo", "add", "fleet", &url, "--interval", "1s"]);
    hub.cli_ok(&["app", "create", "web", "--repo", "fleet", "--path", "app"]);
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "web"])["deployed"]
            == first.as_str()),
        "first commit never deployed: {}",
        hub.cli_json(&["app", "show", "web"])
    );

    source.write("app/cm.yaml", cm(2));
    source.write("blobs/video.bin", noise(300 * 1024));
    let big = source.commit("a large file");
    source.publish(&served, "fleet");

    let refused = wait_until(SOON, || {
        hub.cli_json(&["repo", "show", "fleet"])["error"]
            .as_str()
            .is_some_and(|e| e.contains("--git-max-pack-bytes"))
    });
    let repo = hub.cli_json(&["repo", "show", "fleet"]);
    assert!(refused, "the large pack was not refused: {repo}");
    let error = repo["error"].as_str().unwrap();
    assert!(
        error.contains("over the limit of 102400") && error.contains("previous fetch is kept"),
        "{error}"
    );
    assert_eq!(repo["head"], first.as_str(), "{repo}");
    let app = hub.cli_json(&["app", "show", "web"]);
    assert_eq!(app["deployed"], first.as_str(), "{app}");
    assert_eq!(app["latest"], first.as_str(), "{app}");
    let missing = hub.cli(&["app", "sync", "web", "--revision", &big]);
    assert!(
        !missing.success() && missing.stderr.contains("unknown revision"),
        "{}",
        missing.stderr
    );
}

/// Write an executable shell script.
fn script(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_silent_ssh_or_upload_pack_times_out_and_other_repos_still_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let fakes = dir.path().join("bin");
    std::fs::create_dir_all(&fakes).unwrap();
    // `git-upload-pack` goes silent (and its child with it) while the
    // marker exists; `ssh` never says anything.
    let marker = dir.path().join("silent");
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap();
    let real = std::path::Path::new(String::from_utf8(exec_path.stdout).unwrap().trim())
        .join("git-upload-pack");
    assert!(real.exists(), "{}", real.display());
    script(
        &fakes.join("git-upload-pack"),
        &format!(
            "case \"$1\" in *fleet*) [ -e '{}' ] && {{ sleep 300 & wait; exit 1; }};; esac\nexec '{}' \"$@\"",
            marker.display(),
            real.display()
        ),
    );
    script(&fakes.join("ssh"), "sleep 300 & wait");

    let source = GitRepoBuilder::new();
    source.write("app/cm.yaml", cm(1));
    let first = source.commit("first");
    let fleet = source.publish(&served, "fleet");
    let other = GitRepoBuilder::new();
    other.write("app/cm.yaml", cm(7));
    let other_head = other.commit("other");
    let other_bare = other.publish(&served, "other");

    let path = format!("{}:{}", fakes.display(), std::env::var("PATH").unwrap());
    let hub = TestHub::start_with_env(
        dir.path(),
        &["--git-stall-timeout", "12s"],
        &[("PATH", path)],
    );
    let url = format!("file://{}", fleet.display());
    hub.cli_ok(&["repo", "add", "fleet", &url, "--interval", "1s"]);
    assert!(
        hub.repo_reaches("fleet", &first),
        "{}",
        hub.cli_json(&["repo", "show", "fleet"])
    );

    // The upload-pack goes silent on the next fetch.
    std::fs::write(&marker, "").unwrap();
    source.write("app/cm.yaml", cm(2));
    source.commit("second");
    source.publish(&served, "fleet");
    assert!(
        wait_until(SOON, || {
            !hub.cli_json(&["repo", "show", "fleet"])["fetching"].is_null()
        }),
        "{}",
        hub.cli_json(&["repo", "show", "fleet"])
    );
    hub.cli_ok(&[
        "repo",
        "add",
        "sshd",
        "ssh://git@example.invalid/fleet.git",
        "--interval",
        "1s",
    ]);

    // Another repo fetches while that fetch hangs.
    let other_url = format!("file://{}", other_bare.display());
    hub.cli_ok(&["repo", "add", "other", &other_url, "--interval", "1s"]);
    assert!(
        hub.repo_reaches("other", &other_head),
        "{}",
        hub.cli_json(&["repo", "show", "other"])
    );
    let stuck = hub.cli_json(&["repo", "show", "fleet"]);
    assert!(
        !stuck["fetching"].is_null() && stuck["error"].is_null(),
        "the other repo was meant to fetch while this one hangs: {stuck}"
    );

    // The silent fetches are stopped with a clear error; the previous
    // commit stays.
    for name in ["fleet", "sshd"] {
        let stopped = wait_until(SOON, || {
            hub.cli_json(&["repo", "show", name])["error"]
                .as_str()
                .is_some_and(|e| e.contains("--git-stall-timeout"))
        });
        let repo = hub.cli_json(&["repo", "show", name]);
        assert!(
            stopped,
            "{name}: the silent fetch was never stopped: {repo}"
        );
        let error = repo["error"].as_str().unwrap();
        assert!(
            error.contains("timed out") && error.contains("nothing for 12s"),
            "{error}"
        );
        if name == "fleet" {
            assert!(
                error.contains("git-upload-pack") && error.contains("previous fetch is kept"),
                "{error}"
            );
            assert_eq!(repo["head"], first.as_str(), "{repo}");
        } else {
            assert!(error.contains("ssh"), "{error}");
        }
    }

    // Once the remote answers again, the fetch goes through.
    std::fs::remove_file(&marker).unwrap();
    assert!(
        wait_until(SOON, || hub.cli_json(&["repo", "show", "fleet"])["head"]
            != first.as_str()),
        "{}",
        hub.cli_json(&["repo", "show", "fleet"])
    );
}

#[test]
fn operators_deploy_only_the_history_of_the_tracked_revision() {
    let dir = tempfile::tempdir().unwrap();
    let source = GitRepoBuilder::new();
    source.write("app/cm.yaml", cm(1));
    let c1 = source.commit("one");
    source.write("app/cm.yaml", cm(2));
    let c2 = source.commit("two");
    // A branch another app follows, and one nobody follows.
    source.git(&["checkout", "-q", "-b", "hotfix", &c1]);
    source.write("app/cm.yaml", cm(10));
    let hot = source.commit("hotfix");
    source.git(&["checkout", "-q", "-b", "unreviewed", &c2]);
    source.write("app/cm.yaml", cm(666));
    let unreviewed = source.commit("not reviewed");
    source.checkout("main");
    let bare = source.publish(&dir.path().join("served"), "fleet");
    let url = format!("file://{}", bare.display());

    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&["repo", "add", "fleet", &url, "--interval", "1s"]);
    hub.cli_ok(&[
        "app", "create", "web", "--repo", "fleet", "--path", "app", "--manual",
    ]);
    hub.cli_ok(&[
        "app",
        "create",
        "hot",
        "--repo",
        "fleet",
        "--path",
        "app",
        "--revision",
        "hotfix",
        "--manual",
    ]);
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "hot"])["latest"]
            == hot.as_str()),
        "the hotfix branch was never fetched: {}",
        hub.cli_json(&["app", "show", "hot"])
    );
    // main and hotfix, not the branch nobody follows.
    assert_eq!(hub.cli_json(&["repo", "show", "fleet"])["refs"], 2);

    // A revision no fetch has asked for yet is waited for (a note, exit 0),
    // and one the remote does not have becomes an error after that fetch.
    let typo = hub.cli(&[
        "app",
        "create",
        "typo",
        "--repo",
        "fleet",
        "--path",
        "app",
        "--revision",
        "hotfx",
        "--manual",
    ]);
    assert!(typo.success(), "{}{}", typo.stdout, typo.stderr);
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "typo"])["errors"]
            .to_string()
            .contains("unknown revision")),
        "a revision the remote lacks stayed waiting: {}",
        hub.cli_json(&["app", "show", "typo"])
    );
    hub.cli_ok(&["app", "delete", "typo"]);

    let operator = create_token(&hub, "deployer", "operator");
    for absent in ["unreviewed", unreviewed.as_str()] {
        let out = hub.cli_as(&operator, &["app", "sync", "web", "--revision", absent]);
        assert!(
            !out.success() && out.stderr.contains("unknown revision"),
            "{absent}: {}",
            out.stderr
        );
    }
    let out = hub.cli_as(&operator, &["app", "sync", "web", "--revision", &hot]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains("is not in the history of main")
            && out.stderr.contains("--allow-unreachable")
            && out.stderr.contains("(HTTP 403)"),
        "{}",
        out.stderr
    );
    assert!(hub.cli_json(&["app", "show", "web"])["deployed"].is_null());

    // An older commit of main is fine, by sha or by the branch itself.
    let out = hub.cli_as(&operator, &["app", "sync", "web", "--revision", &c1]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        hub.cli_json(&["app", "show", "web"])["deployed"],
        c1.as_str()
    );
    let out = hub.cli_as(&operator, &["app", "sync", "web", "--revision", "main"]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        hub.cli_json(&["app", "show", "web"])["deployed"],
        c2.as_str()
    );

    // The override is the admin's.
    let args = [
        "app",
        "sync",
        "web",
        "--revision",
        &hot,
        "--allow-unreachable",
        "--reason",
        "incident 42",
    ];
    let out = hub.cli_as(&operator, &args);
    assert!(
        !out.success()
            && out.stderr.contains(
                "role operator may not deploy a commit outside the app's tracked revision"
            ),
        "{}",
        out.stderr
    );
    assert_eq!(
        hub.cli_json(&["app", "show", "web"])["deployed"],
        c2.as_str()
    );
    hub.cli_ok(&args);
    let app = hub.cli_json(&["app", "show", "web"]);
    assert_eq!(app["deployed"], hot.as_str(), "{app}");
    assert_eq!(app["pinned"], true, "{app}");

    let audit = hub.cli_json(&["audit", "--since", "1h"]);
    let syncs: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/api/v1/apps/web/sync")
        .collect();
    let overridden = syncs
        .iter()
        .find(|e| e["status"] == 200 && e["actor"] == "admin")
        .unwrap_or_else(|| panic!("no audited override: {audit:#}"));
    let note = overridden["message"].as_str().unwrap_or_default();
    assert!(
        note.contains("incident 42") && note.contains(&hot) && note.contains("--allow-unreachable"),
        "{overridden}"
    );
    assert!(
        syncs
            .iter()
            .any(|e| e["actor"] == "deployer" && e["status"] == 403),
        "{audit:#}"
    );
    let history = hub.cli_json(&["app", "history", "web"]);
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["commit"] == hot.as_str() && r["event"] == "sync outside main: incident 42"),
        "{history:#}"
    );
}

#[test]
fn repo_urls_with_credentials_are_refused_with_the_way_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    for url in [
        "https://bot:tok3n@git.example.invalid/fleet.git",
        "https://tok3n@git.example.invalid/fleet.git",
    ] {
        let out = hub.cli(&["repo", "add", "fleet", url]);
        assert!(!out.success(), "{}", out.stdout);
        assert!(
            out.stderr.contains("--username") && out.stderr.contains("--password-file"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("tok3n"), "{}", out.stderr);
    }

    let file = dir.path().join("repo.yaml");
    std::fs::write(
        &file,
        "apiVersion: switchyard.dev/v1\nkind: Repo\nmetadata:\n  name: fleet\nspec:\n  url: https://bot:tok3n@git.example.invalid/fleet.git\n",
    )
    .unwrap();
    let out = hub.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains("--password-file") && out.stderr.contains("spec.passwordFile"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("tok3n"), "{}", out.stderr);

    assert_eq!(hub.cli_json(&["repo", "list"]), Value::Array(vec![]));
}
