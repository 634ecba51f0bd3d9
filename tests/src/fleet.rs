//! A hub and its agents as real processes on loopback, driven through the
//! real command line, for end-to-end tests.

use crate::process::{Output, Process, binary, run, wait_until};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `switchyard serve` flags that lift the per-IP limits, for load tests
/// whose many simulated agents all come from one loopback address.
pub const ONE_IP_FLEET: [&str; 6] = [
    "--max-connections-per-ip",
    "1000000",
    "--enroll-burst",
    "1000000",
    "--enroll-per-minute",
    "1000000",
];

/// Generous bound for anything that should take a second or two.
pub const SOON: Duration = Duration::from_secs(20);

/// A `switchyard serve` process on loopback with its own data dir.
pub struct TestHub {
    pub dir: PathBuf,
    pub process: Process,
    quic_host: String,
    quic_port: u16,
    extra_args: Vec<String>,
    envs: Vec<(&'static str, String)>,
    restarts: usize,
}

impl TestHub {
    /// Start a hub in `dir/hub` on ephemeral loopback ports.
    pub fn start(dir: &Path, extra_args: &[&str]) -> TestHub {
        Self::start_with_env(dir, extra_args, &[])
    }

    /// Start a hub with extra environment variables (kept across restarts),
    /// for example `SWITCHYARD_LOG` for benchmarks that must not pay for
    /// the tests' debug logging.
    pub fn start_with_env(
        dir: &Path,
        extra_args: &[&str],
        envs: &[(&'static str, String)],
    ) -> TestHub {
        Self::launch(dir, "127.0.0.1", extra_args, envs)
    }

    /// Start a hub whose QUIC endpoint listens on `quic_host` (an address
    /// of a test's network namespace link, say); the admin API stays on loopback.
    pub fn start_on(dir: &Path, quic_host: &str, extra_args: &[&str]) -> TestHub {
        Self::launch(dir, quic_host, extra_args, &[])
    }

    fn launch(
        dir: &Path,
        quic_host: &str,
        extra_args: &[&str],
        envs: &[(&'static str, String)],
    ) -> TestHub {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let process = Self::spawn(dir, &format!("{quic_host}:0"), &extra_args, envs, "hub");
        let mut hub = TestHub {
            dir: dir.to_owned(),
            process,
            quic_host: quic_host.to_owned(),
            quic_port: 0,
            extra_args,
            envs: envs.to_vec(),
            restarts: 0,
        };
        let endpoints = hub.wait_ready();
        // HOST:PORT, where HOST may be a --public-name rather than an address.
        hub.quic_port = endpoints["agent_address"]
            .as_str()
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .expect("agent address in hub.json");
        hub
    }

    fn spawn(
        dir: &Path,
        quic_listen: &str,
        extra: &[String],
        envs: &[(&str, String)],
        label: &str,
    ) -> Process {
        let mut args = vec![
            "serve".to_string(),
            "--data-dir".into(),
            dir.join("hub").display().to_string(),
            "--quic-listen".into(),
            quic_listen.into(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().cloned());
        Process::spawn(&binary("switchyard"), &args, envs, &dir.join("logs"), label)
    }

    /// Start a hub on the data dir `dir/hub` that already exists (such as
    /// one `switchyard restore` made), with agents dialing `quic_port`.
    pub fn start_at(dir: &Path, quic_port: u16, extra_args: &[&str]) -> TestHub {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let quic_listen = format!("127.0.0.1:{quic_port}");
        let process = Self::spawn(dir, &quic_listen, &extra_args, &[], "hub");
        let mut hub = TestHub {
            dir: dir.to_owned(),
            process,
            quic_host: "127.0.0.1".to_owned(),
            quic_port,
            extra_args,
            envs: Vec::new(),
            restarts: 0,
        };
        hub.wait_ready();
        hub
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("hub")
    }

    /// The UDP port agents dial.
    pub fn quic_port(&self) -> u16 {
        self.quic_port
    }

    /// The QUIC address agents dial and the CA fingerprint they pin, from
    /// the hub's discovery file.
    pub fn agent_endpoint(&self) -> (SocketAddr, String) {
        let endpoints: Value = serde_json::from_slice(
            &std::fs::read(self.data_dir().join("hub.json")).expect("hub.json"),
        )
        .expect("hub.json is JSON");
        (
            endpoints["agent_address"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .expect("agent address in hub.json"),
            endpoints["ca_sha256"]
                .as_str()
                .expect("ca_sha256 in hub.json")
                .to_owned(),
        )
    }

    /// `cluster add` and return only the bootstrap token, for raw peers.
    pub fn add_cluster_token(&self, name: &str, labels: &[&str]) -> String {
        let join = self.add_cluster(name, labels);
        let at = join
            .iter()
            .position(|w| w == "--token")
            .expect("--token in the join command");
        join[at + 1].clone()
    }

    /// Wait until this process has written its discovery file.
    fn wait_ready(&mut self) -> Value {
        let file = self.data_dir().join("hub.json");
        let pid = self.process.pid();
        let mut endpoints = Value::Null;
        let ready = wait_until(SOON, || {
            endpoints = std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .unwrap_or(Value::Null);
            endpoints["pid"].as_u64() == Some(u64::from(pid))
        });
        assert!(
            ready,
            "hub did not start; stderr:\n{}",
            self.process.stderr_text()
        );
        endpoints
    }

    /// The admin API's base URL from the discovery file (`https://…`).
    pub fn admin_url(&self) -> String {
        let file = self.data_dir().join("hub.json");
        let endpoints: Value = serde_json::from_slice(&std::fs::read(&file).expect("hub.json"))
            .expect("hub.json is JSON");
        endpoints["admin_url"]
            .as_str()
            .expect("admin_url in hub.json")
            .to_owned()
    }

    /// The CA certificate that signs the hub's server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir().join("ca").join("ca.pem")
    }

    /// TLS for an HTTP client that talks to the admin API directly,
    /// trusting this hub's CA and nothing else.
    pub fn admin_tls(&self) -> rustls::ClientConfig {
        let pem = std::fs::read_to_string(self.ca_file()).expect("hub CA certificate");
        switchyard_certs::admin_client_config(&pem).expect("admin TLS config")
    }

    /// Kill the hub with SIGKILL and start it again on the same data dir and
    /// QUIC port, as a supervisor would after a crash.
    pub fn kill9_and_restart(&mut self) {
        self.process.kill9();
        self.restarts += 1;
        let label = format!("hub-restart-{}", self.restarts);
        self.process = Self::spawn(
            &self.dir,
            &format!("{}:{}", self.quic_host, self.quic_port),
            &self.extra_args,
            &self.envs,
            &label,
        );
        self.wait_ready();
    }

    /// Run `switchyard ARGS` against this hub (found through its data dir).
    pub fn cli(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run(
            &binary("switchyard"),
            &args,
            &[("SWITCHYARD_DATA_DIR", self.data_dir().display().to_string())],
            SOON,
        )
    }

    /// `switchyard ARGS --server URL` with `SWITCHYARD_TOKEN=token`, trusting
    /// the hub's CA through `SWITCHYARD_CA_FILE`, as a remote user would run it.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.extend(["--server".into(), self.admin_url()]);
        run(
            &binary("switchyard"),
            &args,
            &[
                ("SWITCHYARD_TOKEN", token.to_owned()),
                ("SWITCHYARD_CA_FILE", self.ca_file().display().to_string()),
            ],
            SOON,
        )
    }

    /// Run `switchyard ARGS`, which must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.success(),
            "switchyard {args:?}:\n{}{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Run a CLI command that must succeed and print JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let out = self.cli(&args);
        assert!(out.success(), "switchyard {args:?} failed:\n{}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("switchyard {args:?} printed no JSON ({e}):\n{}", out.stdout)
        })
    }

    /// Wait (bounded) until repo `name`'s tracked branch is at `commit` on
    /// the hub (`repo show`'s `head`); whether it got there.
    pub fn repo_reaches(&self, name: &str, commit: &str) -> bool {
        wait_until(SOON, || {
            self.cli_json(&["repo", "show", name])["head"] == commit
        })
    }

    /// `cluster add` and return the join command's arguments (after the program name).
    pub fn add_cluster(&self, name: &str, labels: &[&str]) -> Vec<String> {
        let mut args = vec!["cluster", "add", name];
        for l in labels {
            args.extend(["--label", l]);
        }
        let added = self.cli_json(&args);
        join_args(&added)
    }

    pub fn cluster(&self, name: &str) -> Value {
        self.cli_json(&["cluster", "show", name])
    }

    pub fn is_connected(&self, name: &str) -> bool {
        let out = self.cli(&["cluster", "show", name, "-o", "json"]);
        out.success()
            && serde_json::from_str::<Value>(&out.stdout)
                .map(|v| v["connected"] == Value::Bool(true))
                .unwrap_or(false)
    }

    /// Wait (bounded) until the hub reports the cluster connected or not.
    pub fn wait_connected(&self, name: &str, connected: bool) -> bool {
        wait_until(SOON, || self.is_connected(name) == connected)
    }

    /// Register cluster `name` with `labels` and enrol an agent for it with
    /// its state under `dir`; the agent is not started.
    pub fn enrol(&self, dir: &Path, name: &str, labels: &[&str]) -> TestAgent {
        let agent = TestAgent::new(dir, name);
        let out = agent.join(&self.add_cluster(name, labels));
        assert!(out.success(), "join {name}: {}", out.stderr);
        agent
    }

    /// [`TestHub::enrol`] an agent and start it dry-run (no cluster);
    /// returns once the hub sees it connected.
    pub fn connect_agent(&self, dir: &Path, name: &str, labels: &[&str]) -> TestAgent {
        let mut agent = self.enrol(dir, name, labels);
        agent.start();
        self.expect_connected(&mut agent, name);
        agent
    }

    /// [`TestHub::enrol`] an agent and start it with `switchyard-agent run
    /// ARGS`; returns once the hub sees it connected.
    pub fn connect_agent_with(
        &self,
        dir: &Path,
        name: &str,
        labels: &[&str],
        args: &[&str],
    ) -> TestAgent {
        let mut agent = self.enrol(dir, name, labels);
        agent.start_with(args);
        self.expect_connected(&mut agent, name);
        agent
    }

    /// [`TestHub::enrol`] an agent and start it applying to the cluster of
    /// `kubeconfig`; returns once the hub sees it connected.
    pub fn connect_kube_agent(
        &self,
        dir: &Path,
        name: &str,
        labels: &[&str],
        kubeconfig: &Path,
    ) -> TestAgent {
        let mut agent = self.enrol(dir, name, labels);
        agent.start_applying(kubeconfig);
        self.expect_connected(&mut agent, name);
        agent
    }

    fn expect_connected(&self, agent: &mut TestAgent, name: &str) {
        assert!(
            self.wait_connected(name, true),
            "{name} never connected; agent log:\n{}",
            agent.process().stderr_text()
        );
    }
}

/// The arguments of the join command in a `cluster add -o json` answer.
/// The hub prints the token as `SWITCHYARD_JOIN_TOKEN=… switchyard-agent
/// join …`; here it becomes `--token …` again, so that tests can find and
/// alter it among the arguments (tests/tests/credentials.rs runs the
/// printed form itself).
pub fn join_args(added: &Value) -> Vec<String> {
    let command = added["join_command"].as_str().expect("join_command");
    let mut words = command.split_whitespace().map(str::to_owned).peekable();
    let token = words
        .next_if(|w| w.starts_with("SWITCHYARD_JOIN_TOKEN="))
        .map(|w| w["SWITCHYARD_JOIN_TOKEN=".len()..].to_owned());
    assert_eq!(words.next().as_deref(), Some("switchyard-agent"));
    let mut args: Vec<String> = words.collect();
    if let Some(token) = token {
        args.extend(["--token".to_owned(), token]);
    }
    args
}

/// An agent's state dir and, while it runs, its process.
pub struct TestAgent {
    pub state_dir: PathBuf,
    log_dir: PathBuf,
    name: String,
    pub process: Option<Process>,
    runs: usize,
    /// Network namespace the agent runs in (through `ip netns exec`).
    netns: Option<String>,
}

impl TestAgent {
    pub fn new(dir: &Path, name: &str) -> TestAgent {
        TestAgent {
            state_dir: dir.join(format!("agent-{name}")),
            log_dir: dir.join("logs"),
            name: name.to_owned(),
            process: None,
            runs: 0,
            netns: None,
        }
    }

    /// Run this agent's commands inside network namespace `netns`.
    pub fn in_netns(mut self, netns: &str) -> TestAgent {
        self.netns = Some(netns.to_owned());
        self
    }

    /// The program and leading arguments that run `switchyard-agent`:
    /// `ip netns exec NS` execs it, so the process is the agent itself.
    fn program(&self, args: Vec<String>) -> (PathBuf, Vec<String>) {
        let agent = binary("switchyard-agent");
        match &self.netns {
            None => (agent, args),
            Some(ns) => {
                let mut full = vec!["netns".into(), "exec".into(), ns.clone()];
                full.push(agent.display().to_string());
                full.extend(args);
                (PathBuf::from("ip"), full)
            }
        }
    }

    /// Run `switchyard-agent JOIN_ARGS --state-dir DIR` to completion.
    pub fn join(&self, join_args: &[String]) -> Output {
        let mut args = join_args.to_vec();
        args.extend(["--state-dir".into(), self.state_dir.display().to_string()]);
        let (program, args) = self.program(args);
        run(&program, &args, &[], SOON)
    }

    /// Start `switchyard-agent run --dry-run`.
    pub fn start(&mut self) {
        self.start_with(&["--dry-run"]);
    }

    /// Start `switchyard-agent run` applying to the cluster of `kubeconfig`,
    /// resyncing every second.
    pub fn start_applying(&mut self, kubeconfig: &Path) {
        let kubeconfig = kubeconfig.display().to_string();
        self.start_with(&["--kubeconfig", &kubeconfig, "--resync-interval", "1s"]);
    }

    /// Start `switchyard-agent run EXTRA --max-backoff 1s --state-dir DIR`.
    pub fn start_with(&mut self, extra: &[&str]) {
        self.runs += 1;
        let mut args = vec!["run".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([
            "--max-backoff".into(),
            "1s".into(),
            "--state-dir".into(),
            self.state_dir.display().to_string(),
        ]);
        let label = format!("agent-{}-{}", self.name, self.runs);
        let (program, args) = self.program(args);
        self.process = Some(Process::spawn(&program, &args, &[], &self.log_dir, &label));
    }

    pub fn process(&mut self) -> &mut Process {
        self.process.as_mut().expect("agent is running")
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.terminate(SOON);
        }
    }

    /// The last plan this (dry-run) agent printed, from its last
    /// "assignment generation" line on.
    pub fn latest_plan(&mut self) -> String {
        let out = self.process().stdout_text();
        out.rfind("assignment generation")
            .map(|at| out[at..].to_owned())
            .unwrap_or_default()
    }

    /// Wait (bounded) until the agent's latest plan satisfies `check`;
    /// fails with the plan and the agent's log.
    pub fn wait_plan(&mut self, what: &str, check: impl Fn(&str) -> bool) {
        let ok = wait_until(SOON, || check(&self.latest_plan()));
        assert!(
            ok,
            "{what}: latest plan was:\n{}\nagent log:\n{}",
            self.latest_plan(),
            self.process().stderr_text()
        );
    }

    /// Whether the state dir holds no identity at all.
    pub fn has_no_identity(&self) -> bool {
        ["tls.key", "tls.crt", "enrollment.json"]
            .iter()
            .all(|f| !self.state_dir.join(f).exists())
    }
}

/// A config repo with one ConfigMap app, served from a bare repo under
/// `dir/served` over file://, registered on `hub` as repo `demo` and app
/// `demo` targeting `selector`. Keep the builder to commit more.
pub fn add_demo_app(
    hub: &TestHub,
    dir: &Path,
    selector: &str,
) -> crate::git_server::GitRepoBuilder {
    let source = crate::git_server::GitRepoBuilder::new();
    source.write(
        "demo/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  cluster: ${cluster.name}\n",
    );
    let head = source.commit("demo app");
    let bare = source.publish(&dir.join("served"), "demo");
    let url = format!("file://{}", bare.display());
    let out = hub.cli(&["repo", "add", "demo", &url, "--interval", "1s"]);
    assert!(out.success(), "repo add: {}", out.stderr);
    assert!(
        wait_until(SOON, || hub.cli_json(&["repo", "show", "demo"])["head"]
            == head.as_str()),
        "demo repo never fetched"
    );
    let mut args = vec!["app", "create", "demo", "--repo", "demo", "--path", "demo"];
    if !selector.is_empty() {
        args.extend(["--selector", selector]);
    }
    let out = hub.cli(&args);
    assert!(out.success(), "app create: {}", out.stderr);
    source
}
