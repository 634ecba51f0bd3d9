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
    /// (path, content), the hub polls it every second, and the agent is
    /// connected before this returns.
    pub fn start(dir: &Path, files: &[(&str, &str)]) -> OneCluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let fake = runtime.block_on(FakeKube::start());
        let kubeconfig = dir.join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig)
            .expect("write the fake's kubeconfig");
        let served = dir.join("served");
        let source = GitRepoBuilder::new();
        for (path, content) in files {
            source.write(path, content);
        }
        source.commit("first");
        source.publish(&served, "fleet");
        let hub = TestHub::start(dir, &[]);
        let url = format!("file://{}", served.join("fleet.git").display());
        hub.cli_ok(&["repo", "add", "fleet", &url, "--interval", "1s"]);
        let agent = hub.connect_kube_agent(dir, "edge", &["env=prod"], &kubeconfig);
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
