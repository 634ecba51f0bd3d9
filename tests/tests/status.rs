//! `switchyard status` as scripts and people see it: no escape codes when
//! piped or with NO_COLOR, colour when forced, and `--watch` printing again
//! only when something changes, stopped cleanly by Ctrl-C.

use std::time::Duration;
use switchyard_tests::fleet::{SOON, TestHub, add_demo_app};
use switchyard_tests::process::{Output, Process, binary, run, wait_until};

fn status_with(hub: &TestHub, env: &[(&str, &str)]) -> Output {
    let mut envs = vec![("SWITCHYARD_DATA_DIR", hub.data_dir().display().to_string())];
    envs.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
    run(&binary("switchyard"), &["status".to_owned()], &envs, SOON)
}

#[test]
fn piped_status_has_no_escape_codes_unless_colour_is_forced() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    hub.add_cluster("edge", &["env=prod"]);
    add_demo_app(&hub, dir.path(), "env=prod");

    let piped = status_with(&hub, &[]);
    assert!(piped.success(), "{}", piped.stderr);
    assert!(
        piped
            .stdout
            .lines()
            .any(|l| l.starts_with("demo") && l.contains("edge") && l.contains("Unknown")),
        "{}",
        piped.stdout
    );
    assert!(!piped.stdout.contains('\x1b'), "{:?}", piped.stdout);

    // The same table, coloured: sync and health cells carry styles.
    let forced = status_with(&hub, &[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.stdout.contains("\x1b[2mUnknown\x1b[0m"),
        "{:?}",
        forced.stdout
    );
    // NO_COLOR wins, even over CLICOLOR_FORCE.
    let no_color = status_with(&hub, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!no_color.stdout.contains('\x1b'), "{:?}", no_color.stdout);
    assert_eq!(no_color.stdout, piped.stdout);
}

/// Lines of the status tables printed so far that are rows of app `demo`.
fn demo_rows(watch: &Process) -> Vec<String> {
    watch
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("demo "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn watch_prints_again_only_on_change_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    hub.add_cluster("alpha", &["env=prod"]);
    add_demo_app(&hub, dir.path(), "env=prod");

    let args = ["status", "--watch", "--interval", "200ms"].map(String::from);
    let mut watch = Process::spawn(
        &binary("switchyard"),
        &args,
        &[("SWITCHYARD_DATA_DIR", hub.data_dir().display().to_string())],
        &dir.path().join("logs"),
        "watch",
    );
    assert!(
        watch.wait_for_stdout("alpha", SOON),
        "{}",
        watch.stderr_text()
    );
    // Several refreshes with nothing new: nothing more is printed.
    std::thread::sleep(Duration::from_millis(1200));
    let first = watch.stdout_text();
    assert_eq!(first.matches("APP ").count(), 1, "{first}");
    assert!(!first.contains('\x1b'), "{first:?}");

    // A new cluster the app targets: a second table with both rows.
    hub.add_cluster("bravo", &["env=prod"]);
    assert!(
        switchyard_tests::process::wait_until(SOON, || demo_rows(&watch).len() == 3),
        "{}",
        watch.stdout_text()
    );
    let rows = demo_rows(&watch);
    assert!(
        rows[0].contains("alpha") && rows[1].contains("alpha"),
        "{rows:?}"
    );
    assert!(rows[2].contains("bravo"), "{rows:?}");
    assert_eq!(watch.stdout_text().matches("APP ").count(), 2);

    // Ctrl-C: a clean exit.
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &watch.pid().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = watch
        .wait_exit(SOON)
        .expect("status --watch stops on SIGINT");
    assert!(status.success(), "{status}: {}", watch.stderr_text());
}

/// Exit codes and warnings a script and a person rely on: a missing app is
/// exit code 3, not an empty table; an app that targets no cluster, or
/// every cluster without saying so, is told on stderr.
#[test]
fn a_missing_app_is_an_error_and_warnings_say_where_an_app_goes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    hub.add_cluster("edge", &["env=prod"]);
    add_demo_app(&hub, dir.path(), "env=prod");

    let out = hub.cli(&["status", "nosuchapp"]);
    assert_eq!(out.status.code(), Some(3), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("app nosuchapp not found"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("No apps yet"), "{}", out.stdout);
    let out = hub.cli(&["app", "show", "nosuchapp"]);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);

    let args = [
        "app", "create", "nowhere", "--repo", "demo", "--path", "demo",
    ];
    let out = hub.cli(&[&args[..], &["--selector", "env=none"]].concat());
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: app nowhere targets no cluster: selector env=none matches none"),
        "{}",
        out.stderr
    );
    let out = hub.cli(&[
        "app",
        "create",
        "everywhere",
        "--repo",
        "demo",
        "--path",
        "demo",
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("goes to every cluster: the 1 there are now"),
        "{}",
        out.stderr
    );
}

/// A commit that fails to render (here: one ConfigMap defined in two files)
/// is the first thing `status` shows, with the commit; `app show` names it
/// apart from the commit the clusters run. Apps assigned to no cluster (a
/// path that does not exist, a selector nothing matches) get a row too.
#[test]
fn failures_come_first_and_no_app_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    hub.add_cluster("edge", &["env=prod"]);
    let source = add_demo_app(&hub, dir.path(), "env=prod");
    let good = source.head();
    source.write(
        "demo/copy.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n",
    );
    let bad = source.commit("copy the ConfigMap");
    source.publish(&dir.path().join("served"), "demo");
    let mut app = serde_json::Value::Null;
    assert!(
        wait_until(SOON, || {
            app = hub.cli_json(&["app", "show", "demo"]);
            app["failed_commit"] == bad.as_str()
        }),
        "{app:#}"
    );
    // What the cluster runs is deployed; the failed commit is apart.
    assert_eq!(app["deployed"], good.as_str(), "{app:#}");
    assert_eq!(app["running"], serde_json::json!({ &good: ["edge"] }));
    let shown = hub.cli(&["app", "show", "demo"]);
    let field = |name: &str| {
        shown
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        field("Deployed:").ends_with(good.as_str()),
        "{}",
        shown.stdout
    );
    assert!(
        field("Running:").ends_with(&format!("{} on edge", &good[..8])),
        "{}",
        shown.stdout
    );
    assert!(
        field("Failed:").contains(&format!("{bad} did not render")),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains(
            "ConfigMap demo is defined twice: at cm.yaml:1 (document 1) and at copy.yaml:1 (document 1)"
        ),
        "{}",
        shown.stdout
    );

    // Two apps assigned to no cluster: one whose path is missing, one
    // whose selector matches nothing.
    let out = hub.cli(&["app", "create", "ghost", "--repo", "demo", "--path", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let out = hub.cli(&[
        "app",
        "create",
        "lonely",
        "--repo",
        "demo",
        "--path",
        "demo",
        "--selector",
        "env=none",
    ]);
    assert!(out.success(), "{}", out.stderr);
    let rows = hub.cli_json(&["status"]);
    let rows = rows.as_array().unwrap();
    let apps: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["app"].as_str().unwrap(),
                r["cluster"].as_str().unwrap(),
                r["error"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        apps,
        [
            ("demo", "edge", true),
            ("ghost", "", true),
            ("lonely", "", false)
        ],
        "{rows:#?}"
    );
    assert_eq!(rows[0]["latest_commit"], bad.as_str());
    assert_eq!(rows[0]["latest_render"], "Failed");
    assert_eq!(rows[0]["desired_commit"], good.as_str());
    assert!(
        rows[2]["message"]
            .as_str()
            .unwrap()
            .starts_with("targets no cluster"),
        "{:#?}",
        rows[2]
    );
    let table = status_with(&hub, &[]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].contains("LATEST"), "{}", table.stdout);
    assert!(
        lines[1].starts_with("demo") && lines[1].contains(&format!("{} failed", &bad[..8])),
        "{}",
        table.stdout
    );
    assert!(
        lines[2].starts_with("ghost") && lines[2].contains("nope"),
        "{}",
        table.stdout
    );
    assert!(
        lines[3].starts_with("lonely") && lines[3].contains("targets no cluster"),
        "{}",
        table.stdout
    );
}

/// Two apps bringing the same object to one cluster: the hub says so at
/// planning time, on both apps' rows, naming the other app.
#[test]
fn an_object_two_apps_bring_to_one_cluster_is_a_warning_naming_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    hub.add_cluster("edge", &["env=prod"]);
    hub.add_cluster("lab", &["env=lab"]);
    add_demo_app(&hub, dir.path(), "env=prod");
    // The same directory again: the same ConfigMap, on edge only.
    let out = hub.cli(&[
        "app",
        "create",
        "twin",
        "--repo",
        "demo",
        "--path",
        "demo",
        "--selector",
        "env in (prod,lab)",
    ]);
    assert!(out.success(), "{}", out.stderr);
    let mut rows = serde_json::Value::Null;
    assert!(
        wait_until(SOON, || {
            rows = hub.cli_json(&["status"]);
            rows.as_array()
                .unwrap()
                .iter()
                .any(|r| r["warning"].is_string())
        }),
        "{rows:#}"
    );
    let warnings: Vec<(&str, &str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["app"].as_str().unwrap(),
                r["cluster"].as_str().unwrap(),
                r["warning"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let tail =
        " on this cluster: only the app that created it writes it; the other reports a conflict";
    assert_eq!(
        warnings,
        [
            (
                "demo",
                "edge",
                format!("ConfigMap demo is also defined by app twin{tail}").as_str()
            ),
            (
                "twin",
                "edge",
                format!("ConfigMap demo is also defined by app demo{tail}").as_str()
            ),
            ("twin", "lab", ""),
        ],
        "{rows:#}"
    );
    let shown = hub.cli(&["app", "show", "twin"]);
    assert!(
        shown.stdout.contains(&format!(
            "Warning (edge): ConfigMap demo is also defined by app demo{tail}"
        )),
        "{}",
        shown.stdout
    );
    let table = status_with(&hub, &[]);
    assert!(
        table.stdout.lines().any(|l| l.starts_with("twin")
            && l.contains("edge")
            && l.contains("warning: ConfigMap demo is also defined by app demo")),
        "{}",
        table.stdout
    );
    // Apart again, the warning goes.
    let out = hub.cli(&["app", "update", "twin", "--selector", "env=lab"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        wait_until(SOON, || hub
            .cli_json(&["status"])
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["warning"].is_null())),
        "{}",
        hub.cli_json(&["status"])
    );
}
