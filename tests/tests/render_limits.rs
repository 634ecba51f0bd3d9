//! Renders bounded in memory, time and processes, end to end with the real
//! `switchyard` binary: a jsonnet memory bomb and an endless loop fail with
//! clear errors while the hub serves on; a hung plugin holds up no other
//! app; a failed render is not run again after a restart; nothing a timed
//! out plugin started outlives it.

use std::path::{Path, PathBuf};
use std::time::Duration;
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::process::wait_until;

const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n";

/// A repo `config` with `files`, fetched by `hub`, and one pending cluster
/// `c1` (no agent needed: the app view counts assignments).
fn repo(hub: &TestHub, dir: &Path, files: &[(&str, &str)]) -> GitRepoBuilder {
    let source = GitRepoBuilder::new();
    for (path, text) in files {
        source.write(path, text);
    }
    let head = source.commit("apps");
    let bare = source.publish(&dir.join("served"), "config");
    let url = format!("file://{}", bare.display());
    hub.cli_ok(&["repo", "add", "config", &url, "--interval", "1s"]);
    assert!(hub.repo_reaches("config", &head), "repo never fetched");
    hub.cli_ok(&["cluster", "add", "c1"]);
    source
}

fn create(hub: &TestHub, name: &str, path: &str, extra: &[&str]) {
    let mut args = vec!["app", "create", name, "--repo", "config", "--path", path];
    args.extend(extra);
    app_change(hub, &args);
}

/// `app create` or `app sync`: the hub takes the change. When its render
/// has already failed by the time the hub answers, the command says so and
/// exits 1 (docs/OPERATIONS.md, "Exit codes"); whether it has is a matter of
/// timing here, so both outcomes are accepted, and the failure only with
/// that message.
fn app_change(hub: &TestHub, args: &[&str]) {
    let out = hub.cli(args);
    let render_failed = out.status.code() == Some(1)
        && out.stderr.contains("but it cannot deploy")
        && out.stderr.contains("render of app");
    assert!(
        out.success() || render_failed,
        "switchyard {args:?}:\n{}{}",
        out.stdout,
        out.stderr
    );
}

fn app_error(hub: &TestHub, name: &str) -> String {
    hub.cli_json(&["app", "show", name])["errors"]["*"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Wait until app `name` shows an error containing `needle`; return it.
fn wait_error(hub: &TestHub, name: &str, needle: &str, within: Duration) -> String {
    let shown = wait_until(within, || app_error(hub, name).contains(needle));
    let error = app_error(hub, name);
    assert!(
        shown,
        "app {name}: no error with {needle:?}; app: {}\nhub log:\n{}",
        hub.cli_json(&["app", "show", name]),
        hub.process.stderr_text()
    );
    error
}

fn assigned(hub: &TestHub, name: &str) -> u64 {
    hub.cli_json(&["app", "show", name])["assigned"]
        .as_u64()
        .unwrap_or_default()
}

fn deploys(hub: &TestHub, name: &str) -> bool {
    wait_until(SOON, || assigned(hub, name) == 1)
}

/// An executable `/bin/sh` script at `dir/name`, returned as its absolute path.
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Whether process `pid` is alive (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name.
            let (_, rest) = stat.rsplit_once(") ")?;
            rest.chars().next()
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn lines(path: &PathBuf) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_jsonnet_memory_bomb_fails_at_the_memory_limit_and_the_hub_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(
        dir.path(),
        &["--render-memory-mib", "512", "--render-timeout", "60s"],
    );
    repo(
        &hub,
        dir.path(),
        &[
            (
                "bomb/main.jsonnet",
                // Four billion objects: the array alone asks for 64 GB.
                "std.makeArray(4e9, function(i) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-' + i } })",
            ),
            ("web/cm.yaml", CONFIG_MAP),
        ],
    );
    create(&hub, "bomb", "bomb", &["--renderer", "jsonnet"]);
    let error = wait_error(&hub, "bomb", "memory limit", SOON * 3);
    assert!(
        error.starts_with("render of app bomb at commit ")
            && error.ends_with("exceeded its memory limit (512 MiB)"),
        "{error}"
    );
    assert!(hub.process.is_running(), "the hub died with its render");
    create(&hub, "web", "web", &[]);
    assert!(deploys(&hub, "web"), "the hub stopped deploying");
    assert_eq!(assigned(&hub, "bomb"), 0);
}

#[test]
fn a_jsonnet_infinite_loop_is_stopped_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(dir.path(), &["--render-timeout", "3s"]);
    repo(
        &hub,
        dir.path(),
        &[
            // Constant memory, no recursion: only the clock ends it.
            (
                "spin/main.jsonnet",
                "std.foldl(function(acc, i) acc + 1, std.range(1, 2e9), 0)",
            ),
            ("web/cm.yaml", CONFIG_MAP),
        ],
    );
    create(&hub, "spin", "spin", &["--renderer", "jsonnet"]);
    let error = wait_error(&hub, "spin", "stopped", SOON);
    assert!(
        error.starts_with("render of app spin at commit ")
            && error.ends_with("was stopped after 3 s"),
        "{error}"
    );
    assert!(hub.process.is_running());
    create(&hub, "web", "web", &[]);
    assert!(deploys(&hub, "web"), "the hub stopped deploying");
}

#[test]
fn a_hung_plugin_holds_up_no_other_app() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("hang.started");
    let sleeper = dir.path().join("hang.sleep");
    let hang = script(
        dir.path(),
        "hang.sh",
        &format!(
            "echo run >> {}\n/bin/sleep 3600 &\necho $! > {}\nwait",
            started.display(),
            sleeper.display()
        ),
    );
    // Far longer than the test: the plugin hangs throughout.
    let hub = TestHub::start(dir.path(), &["--render-timeout", "600s"]);
    repo(
        &hub,
        dir.path(),
        &[("hang/cm.yaml", CONFIG_MAP), ("web/cm.yaml", CONFIG_MAP)],
    );
    // Answers (after the hub's bounded wait) although the render goes on.
    create(
        &hub,
        "hang",
        "hang",
        &["--renderer", "plugin", "--plugin-command", &hang],
    );
    assert!(
        wait_until(SOON, || read_pid(&sleeper).is_some()),
        "the plugin never ran"
    );
    create(&hub, "web", "web", &[]);
    assert!(
        deploys(&hub, "web"),
        "web was held up by the hung plugin: {}",
        hub.cli_json(&["app", "show", "web"])
    );
    // All while the plugin still hangs, its app still without a bundle.
    let pid = read_pid(&sleeper).unwrap();
    assert!(alive(pid), "the plugin did not hang after all");
    assert_eq!(assigned(&hub, "hang"), 0);
    // Another pass while the render hangs neither waits for it nor starts it twice.
    hub.cli_ok(&["cluster", "label", "c1", "env=prod"]);
    assert_eq!(lines(&started), 1, "the hung render was started again");
}

#[test]
fn a_failed_render_is_not_run_again_until_an_explicit_sync() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("fail.runs");
    let fail = script(
        dir.path(),
        "fail.sh",
        &format!(
            "echo run >> {}\necho 'cannot render' >&2\nexit 3",
            runs.display()
        ),
    );
    let mut hub = TestHub::start(dir.path(), &[]);
    repo(
        &hub,
        dir.path(),
        &[
            ("fail/cm.yaml", CONFIG_MAP),
            ("web/cm.yaml", CONFIG_MAP),
            ("other/cm.yaml", CONFIG_MAP),
        ],
    );
    create(
        &hub,
        "fail",
        "fail",
        &["--renderer", "plugin", "--plugin-command", &fail],
    );
    let error = wait_error(&hub, "fail", "cannot render", SOON);
    assert!(
        error.starts_with("render of app fail at commit "),
        "{error}"
    );
    assert_eq!(lines(&runs), 1);
    // More passes: the failure is remembered, not rendered again.
    create(&hub, "web", "web", &[]);
    assert!(deploys(&hub, "web"));
    assert_eq!(lines(&runs), 1, "rendered again by a later pass");

    hub.kill9_and_restart();
    create(&hub, "other", "other", &[]);
    assert!(deploys(&hub, "other"), "no pass after the restart");
    assert_eq!(
        lines(&runs),
        1,
        "a restarted hub ran the failed render again"
    );
    assert!(app_error(&hub, "fail").contains("cannot render"));

    // An explicit sync is how an operator tries it again.
    app_change(&hub, &["app", "sync", "fail"]);
    assert!(
        wait_until(SOON, || lines(&runs) == 2),
        "app sync did not render again"
    );
}

#[test]
fn a_timed_out_plugin_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let sleeper = dir.path().join("sleep.pid");
    let hang = script(
        dir.path(),
        "hang.sh",
        &format!("/bin/sleep 3600 &\necho $! > {}\nwait", sleeper.display()),
    );
    // No `kill` program to be found (the hub must not need one): a PATH
    // with only what fetching a file:// repo runs.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["git", "git-upload-pack"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not on PATH"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let hub = TestHub::start_with_env(
        dir.path(),
        &["--render-timeout", "2s"],
        &[("PATH", bin.display().to_string())],
    );
    repo(&hub, dir.path(), &[("hang/cm.yaml", CONFIG_MAP)]);
    create(
        &hub,
        "hang",
        "hang",
        &["--renderer", "plugin", "--plugin-command", &hang],
    );
    let error = wait_error(&hub, "hang", "stopped", SOON);
    assert!(error.ends_with("was stopped after 2 s"), "{error}");
    let pid = read_pid(&sleeper).expect("the plugin ran");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the plugin's child {pid} outlived the render"
    );
}

/// Kills the processes whose pids are in these files when the test ends,
/// so that a failing test leaves no sleeper behind.
struct KillOnDrop(Vec<PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            if let Some(pid) = read_pid(path) {
                let _ = std::process::Command::new("/bin/kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// A program that leaves the worker's process group and its parent on
/// purpose: `setsid -f` forks, the child starts a session of its own and
/// its parent exits (a double fork). Such a process is out of reach of the
/// group's SIGKILL; the worker, being its subreaper, still finds and kills
/// it: at the timeout of a plugin that then hangs, and after the render of
/// a plugin that succeeds. The hub meanwhile deploys another app.
#[test]
fn a_plugin_that_starts_its_own_session_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let setsid = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("setsid"))
        .find(|p| p.exists());
    let Some(setsid) = setsid else {
        eprintln!("skipped: no setsid program on PATH");
        return;
    };
    let escaped = dir.path().join("escaped.pid");
    let left = dir.path().join("left.pid");
    let _cleanup = KillOnDrop(vec![escaped.clone(), left.clone()]);
    let escape = |pid_file: &Path| {
        format!(
            "{} -f /bin/sh -c 'echo $$ > {}; exec /bin/sleep 3600' </dev/null >/dev/null 2>&1",
            setsid.display(),
            pid_file.display()
        )
    };
    let hang = script(
        dir.path(),
        "hang.sh",
        &format!("{}\n/bin/sleep 3600", escape(&escaped)),
    );
    let leave = script(
        dir.path(),
        "leave.sh",
        &format!(
            "{}\nwhile [ ! -s {} ]; do /bin/sleep 0.05; done\nprintf '{}'",
            escape(&left),
            left.display(),
            CONFIG_MAP.replace('\n', "\\n")
        ),
    );
    let hub = TestHub::start(dir.path(), &["--render-timeout", "3s"]);
    repo(
        &hub,
        dir.path(),
        &[
            ("hang/cm.yaml", CONFIG_MAP),
            ("leave/cm.yaml", CONFIG_MAP),
            ("web/cm.yaml", CONFIG_MAP),
        ],
    );
    create(
        &hub,
        "hang",
        "hang",
        &["--renderer", "plugin", "--plugin-command", &hang],
    );
    create(
        &hub,
        "leave",
        "leave",
        &["--renderer", "plugin", "--plugin-command", &leave],
    );
    create(&hub, "web", "web", &[]);
    assert!(
        deploys(&hub, "web"),
        "web was held up: {}",
        hub.cli_json(&["app", "show", "web"])
    );
    assert!(
        deploys(&hub, "leave"),
        "the plugin that succeeds did not deploy: {}",
        hub.cli_json(&["app", "show", "leave"])
    );
    let pid = read_pid(&left).expect("the plugin that succeeds started its process");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "process {pid}, in a session of its own, outlived a render that succeeded"
    );

    let error = wait_error(&hub, "hang", "stopped", SOON);
    assert!(error.ends_with("was stopped after 3 s"), "{error}");
    let pid = read_pid(&escaped).expect("the hung plugin started its process");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "process {pid}, in a session of its own, outlived a render that timed out"
    );
}

/// A render outlives no hub: the hub is killed (SIGKILL, so it cleans up
/// nothing) while a plugin hangs; its render worker sees its parent gone
/// and kills the plugin and what the plugin started, then exits.
#[test]
fn a_render_does_not_outlive_a_killed_hub() {
    let dir = tempfile::tempdir().unwrap();
    let sleeper = dir.path().join("sleep.pid");
    let _cleanup = KillOnDrop(vec![sleeper.clone()]);
    let hang = script(
        dir.path(),
        "hang.sh",
        &format!("/bin/sleep 3600 &\necho $! > {}\nwait", sleeper.display()),
    );
    let mut hub = TestHub::start(dir.path(), &["--render-timeout", "600s"]);
    repo(&hub, dir.path(), &[("hang/cm.yaml", CONFIG_MAP)]);
    create(
        &hub,
        "hang",
        "hang",
        &["--renderer", "plugin", "--plugin-command", &hang],
    );
    assert!(
        wait_until(SOON, || read_pid(&sleeper).is_some()),
        "the plugin never ran"
    );
    let pid = read_pid(&sleeper).unwrap();
    assert!(alive(pid));
    hub.process.kill9();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the plugin's child {pid} outlived the hub"
    );
}
