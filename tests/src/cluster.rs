//! One cluster under Switchyard, for end-to-end tests of what the agent does
//! to a cluster: a hub, a config repo served over `file://` as repo `fleet`,
//! and one enrolled agent `edge` (label `env=prod`) applying to the fake
//! Kubernetes API server.

use crate::fake_kube::FakeKube;
use crate::fleet::{SOON, TestAgent, TestHub};
use crate::git_server::GitRepoBuilder;
use crate::manifests;
use crate::process::wait_until;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A hub, the agent `edge` applying to a fake API server, and the config
/// repo `fleet` it deploys from.
pub struct OneCluster {
    pub fake: FakeKube,
    pub hub: TestHub,
    pub agent: TestAgent,
    /// The config repo's working tree; publish changes with [`OneCluster::commit`].
    pub source: GitRepoBuilder,
    /// The kubeconfig that points at the fake API server.
    pub kubeconfig: PathBuf,
    served: PathBuf,
    /// The fake API server runs on this runtime; declared last, so dropped last.
    _runtime: tokio::runtime::Runtime,
}

impl OneCluster {
    /// Start everything in `dir`: the repo's first commit holds `files`
    /// (path, content), the hub polls it every second, and the agent
    /// (resyncing every second) is connected before this returns.
    pub fn start(dir: &Path, files: &[(&str, &str)]) -> OneCluster {
        let mut builder = OneCluster::builder(dir);
        for (path, content) in files {
            builder = builder.file(path, content);
        }
        builder.start()
    }

    /// A [`OneClusterBuilder`] for setups that need more than [`OneCluster::start`].
    pub fn builder(dir: &Path) -> OneClusterBuilder<'_> {
        OneClusterBuilder {
            dir,
            files: Vec::new(),
            agent_args: vec!["--resync-interval".into(), "1s".into()],
            before_agent: None,
        }
    }

    /// [`OneCluster::start`] with `web/` holding the Deployment `web` (one
    /// replica) and the ConfigMap `web-config` of [`crate::manifests`].
    pub fn start_web(dir: &Path) -> OneCluster {
        let deployment = manifests::web_deployment(1);
        OneCluster::start(
            dir,
            &[
                ("web/deploy.yaml", &deployment),
                ("web/config.yaml", manifests::WEB_CONFIG),
            ],
        )
    }

    /// Commit the working tree and publish it; returns the commit.
    pub fn commit(&self, message: &str) -> String {
        let sha = self.source.commit(message);
        self.source.publish(&self.served, "fleet");
        sha
    }

    /// Run the CLI against the hub; it must succeed. Returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        self.hub.cli_ok(args)
    }

    /// `switchyard app create web --repo fleet --path web --namespace web EXTRA…`
    pub fn create_web(&self, extra: &[&str]) {
        let mut args = vec![
            "app",
            "create",
            "web",
            "--repo",
            "fleet",
            "--path",
            "web",
            "--namespace",
            "web",
        ];
        args.extend_from_slice(extra);
        self.cli(&args);
    }

    /// Wait (bounded) for a condition on the fake cluster; fails with the
    /// agent's log.
    pub fn wait(&mut self, what: &str, mut check: impl FnMut(&FakeKube) -> bool) {
        let fake = &self.fake;
        let ok = wait_until(SOON, || check(fake));
        assert!(
            ok,
            "{what}; agent log:\n{}",
            self.agent.process().stderr_text()
        );
    }

    /// `switchyard status APP -o json`: one row per cluster.
    pub fn status(&self, app: &str) -> Vec<Value> {
        self.hub
            .cli_json(&["status", app])
            .as_array()
            .expect("status -o json is an array")
            .clone()
    }

    /// Wait (bounded) until the app's first status row passes `check`;
    /// fails with the rows and the agent's log.
    pub fn wait_status(&mut self, app: &str, what: &str, check: impl Fn(&Value) -> bool) {
        let ok = wait_until(SOON, || self.status(app).first().is_some_and(&check));
        assert!(
            ok,
            "{what}: {:?}\nagent log:\n{}",
            self.status(app),
            self.agent.process().stderr_text()
        );
    }

    /// The agent's completed reconcile passes so far (its log's "pass done").
    pub fn passes(&mut self) -> usize {
        self.agent
            .process()
            .stderr_text()
            .matches("pass done")
            .count()
    }

    /// Wait (bounded) until at least `n` more passes completed.
    pub fn wait_passes(&mut self, n: usize) {
        let before = self.passes();
        let ok = wait_until(SOON, || self.passes() >= before + n);
        assert!(ok, "fewer than {n} passes ran");
    }

    /// Every DELETE the fake received so far, as `METHOD PATH`.
    pub fn deletes(&self) -> Vec<String> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// What a test does to the fake API server before the agent starts.
type Prepare<'a> = Box<dyn FnOnce(&FakeKube) + 'a>;

/// How to start a [`OneCluster`]: the repo's files, the agent's `run`
/// arguments and what to do to the fake API server before the agent starts.
pub struct OneClusterBuilder<'a> {
    dir: &'a Path,
    files: Vec<(String, String)>,
    agent_args: Vec<String>,
    before_agent: Option<Prepare<'a>>,
}

impl<'a> OneClusterBuilder<'a> {
    /// A file of the repo's first commit.
    pub fn file(mut self, path: &str, content: &str) -> Self {
        self.files.push((path.to_owned(), content.to_owned()));
        self
    }

    /// The agent's `run` arguments after `--kubeconfig F` (default
    /// `--resync-interval 1s`).
    pub fn agent_args(mut self, args: &[&str]) -> Self {
        self.agent_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Run `prepare` on the fake API server before the agent starts (latency,
    /// objects that exist before Switchyard, refusals).
    pub fn before_agent(mut self, prepare: impl FnOnce(&FakeKube) + 'a) -> Self {
        self.before_agent = Some(Box::new(prepare));
        self
    }

    /// Start the fake, the repo, the hub (which has fetched the repo before
    /// this returns) and the agent (connected before this returns).
    pub fn start(self) -> OneCluster {
        let dir = self.dir;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let fake = runtime.block_on(FakeKube::start());
        if let Some(prepare) = self.before_agent {
            prepare(&fake);
        }
        let kubeconfig = dir.join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig)
            .expect("write the fake's kubeconfig");
        let served = dir.join("served");
        let source = GitRepoBuilder::new();
        for (path, content) in &self.files {
            source.write(path, content);
        }
        let head = source.commit("first");
        source.publish(&served, "fleet");
        let hub = TestHub::start(dir, &[]);
        let url = format!("file://{}", served.join("fleet.git").display());
        hub.cli_ok(&["repo", "add", "fleet", &url, "--interval", "1s"]);
        assert!(
            hub.repo_reaches("fleet", &head),
            "the hub never fetched the config repo"
        );
        let mut args = vec!["--kubeconfig".to_owned(), kubeconfig.display().to_string()];
        args.extend(self.agent_args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let agent = hub.connect_agent_with(dir, "edge", &["env=prod"], &args);
        OneCluster {
            fake,
            hub,
            agent,
            source,
            kubeconfig,
            served,
            _runtime: runtime,
        }
    }
}
