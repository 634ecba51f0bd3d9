//! What the real binaries refuse to do before doing anything else: the CLI
//! sends no admin token over plain HTTP to another machine (it does not even
//! connect), and the hub and the agent do not run on a data or state dir
//! whose modes cannot be made private (docs/SECURITY.md, "The admin API" and
//! "Parties and trust model").

use std::net::{IpAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::process::{binary, run, wait_until};

/// An address of this machine that is not loopback: the source address of
/// the route towards a documentation address (no packet is sent).
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A TCP listener on every address that counts and drops the connections
/// it gets, on a thread that ends when the test process does.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

fn cli_with_token(server: &str) -> switchyard_tests::process::Output {
    run(
        &binary("switchyard"),
        &[
            "--server".into(),
            server.into(),
            "cluster".into(),
            "list".into(),
        ],
        &[("SWITCHYARD_TOKEN", "sya_not-a-real-token".into())],
        SOON,
    )
}

/// Item 13 of issue 14, with the real binary: `--server http://` to an
/// address of this machine that is not loopback is refused before any
/// connection (a listener there sees none), and so is a host name; the
/// same request to loopback does connect, which shows the listener would
/// have seen it.
#[test]
fn the_cli_refuses_the_admin_token_over_plain_http_to_another_host() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address to listen on");
        return;
    };
    let (port, connections) = counting_listener();

    let loopback = cli_with_token(&format!("http://127.0.0.1:{port}"));
    assert!(!loopback.success(), "{}", loopback.stdout);
    assert!(
        wait_until(SOON, || connections.load(Ordering::SeqCst) >= 1),
        "the CLI did not connect to loopback: {}",
        loopback.stderr
    );
    let before = connections.load(Ordering::SeqCst);

    for server in [
        format!("http://{ip}:{port}"),
        format!("http://hub.example.invalid:{port}"),
    ] {
        let out = cli_with_token(&server);
        assert!(!out.success(), "{server}: {}", out.stdout);
        assert!(
            out.stderr
                .contains("refusing to send the admin token over plain HTTP"),
            "{server}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("sya_not-a-real-token"),
            "{}",
            out.stderr
        );
    }
    // Give a connection that was made a moment to be counted.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        before,
        "the CLI connected to {ip}:{port} before refusing"
    );
}

/// Whether this machine lets the test make a mount namespace and mount in
/// it (root, or CAP_SYS_ADMIN).
fn can_unshare_mounts() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Run `program args…` in a mount namespace of its own in which `read_only`
/// is a read-only bind mount of itself: there, no mode under it can change
/// (EROFS), whoever asks, root included. Outside, nothing changes.
fn run_with_read_only(read_only: &Path, program: &Path, args: &[&str]) -> std::process::Output {
    let script = r#"dir="$1"; shift
mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir" "$dir" || exit 99
exec timeout 20 "$@""#;
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(read_only)
        .arg(program)
        .args(args)
        .env_remove("KUBECONFIG");
    let out = command.output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot mount read-only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Item 15 of issue 14, the refusal path: a CA key left readable by others
/// (0644) on a file system where its mode cannot be changed (a read-only
/// mount, which root cannot chmod either) makes the hub refuse to start,
/// naming the file; an agent key in the same situation makes
/// `switchyard-agent run` refuse. Neither process gets to serve or connect.
#[test]
fn a_data_or_state_dir_that_cannot_be_made_private_is_refused() {
    if let Err(why) = can_unshare_mounts() {
        eprintln!("skipped: no mount namespace for the test ({why})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(dir.path(), &[]);
    let agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    hub.process.terminate(SOON);

    let data = hub.data_dir();
    let key = data.join("ca/ca-key.pem");
    // As a second start leaves `ca/` (the first writes it after the check,
    // inside the private data dir), but for the key, loosened.
    set_mode(&data.join("ca"), 0o700);
    for entry in std::fs::read_dir(data.join("ca")).unwrap() {
        set_mode(&entry.unwrap().path(), 0o600);
    }
    set_mode(&key, 0o644);
    let data_arg = data.display().to_string();
    let out = run_with_read_only(
        &data.join("ca"),
        &binary("switchyard"),
        &[
            "serve",
            "--data-dir",
            &data_arg,
            "--quic-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the hub started: {stderr}");
    assert_ne!(
        out.status.code(),
        Some(124),
        "the hub ran until killed: {stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot make {} private", key.display()))
            && stderr.contains("must be private"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening"),
        "the hub served before refusing: {stderr}"
    );
    assert_eq!(mode(&key), 0o644, "the read-only mount leaked");

    let tls_key = agent.state_dir.join("tls.key");
    set_mode(&tls_key, 0o644);
    let state_arg = agent.state_dir.display().to_string();
    let out = run_with_read_only(
        &agent.state_dir,
        &binary("switchyard-agent"),
        &["run", "--dry-run", "--state-dir", &state_arg],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the agent ran: {stderr}");
    assert_ne!(
        out.status.code(),
        Some(124),
        "the agent ran until killed: {stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot make {} private", tls_key.display())),
        "{stderr}"
    );
    assert!(
        !stderr.contains("agent starting"),
        "the agent started before refusing: {stderr}"
    );
    assert_eq!(mode(&tls_key), 0o644, "the read-only mount leaked");
}
