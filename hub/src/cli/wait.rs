//! `switchyard app wait`: block until an app is synced and/or healthy on
//! every cluster it targets, for scripts and pipelines, with exit codes
//! that say how it ended.

use super::Target;
use super::client::{AdminClient, HttpError};
use std::time::Duration;
use switchyard_hub::fleet::StatusView;
use switchyard_hub::gitops::AppView;
use tokio::time::Instant;

/// How often the hub is asked while waiting.
const POLL: Duration = Duration::from_secs(1);

use super::exit::{code, exit};

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) synced: bool,
    pub(crate) healthy: bool,
}

impl Want {
    fn describe(self) -> &'static str {
        match (self.synced, self.healthy) {
            (true, true) => "synced and healthy",
            (true, false) => "synced",
            _ => "healthy",
        }
    }
}

/// Where an app stands against what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Reached {
        clusters: usize,
    },
    Failed(String),
    Waiting {
        ready: usize,
        total: usize,
        /// The first thing still waited for.
        reason: String,
    },
}

/// Judge an app by its view and its status rows. Rules:
/// - any render error of the app is a failure;
/// - nothing is reached until a commit is deployed and at least one
///   cluster is targeted;
/// - a cluster is synced when the agent reports `Synced` for the commit the
///   app deploys, healthy when it reports `Healthy` for it;
/// - when health is wanted, a cluster reporting `Degraded` for the deployed
///   commit is a failure (as `argocd app wait --health` treats it).
pub(crate) fn judge(app: &AppView, rows: &[StatusView], want: Want) -> Verdict {
    if let Some((scope, error)) = app.errors.iter().next() {
        let scope = if scope == "*" { "all clusters" } else { scope };
        return Verdict::Failed(format!("app {} failed ({scope}): {error}", app.name));
    }
    let total = app.target_count;
    let Some(deployed) = &app.deployed else {
        return Verdict::Waiting {
            ready: 0,
            total,
            reason: "no commit deployed yet (a manual app waits for `app sync`)".into(),
        };
    };
    if total == 0 {
        return Verdict::Waiting {
            ready: 0,
            total,
            reason: "the app targets no cluster".into(),
        };
    }
    let mut ready = 0;
    let mut reason = None;
    for cluster in app.target_names() {
        let row = rows
            .iter()
            .find(|r| r.app == app.name && &r.cluster == cluster);
        let state = match row {
            None => Err(format!("{cluster}: not assigned yet")),
            Some(r) if &r.desired_commit != deployed => {
                Err(format!("{cluster}: not assigned the deployed commit yet"))
            }
            Some(r) => {
                let current = r.applied_commit.as_deref() == Some(deployed.as_str());
                if want.healthy && current && r.health == "Degraded" {
                    return Verdict::Failed(format!(
                        "app {} is Degraded on {cluster}: {}",
                        app.name,
                        r.message.as_deref().unwrap_or("no message")
                    ));
                }
                let synced = !want.synced || (current && r.sync == "Synced");
                let healthy = !want.healthy || (current && r.health == "Healthy");
                if synced && healthy {
                    Ok(())
                } else {
                    let mut why = format!("{cluster}: {}/{}", r.sync, r.health);
                    if let Some(m) = &r.message {
                        why.push_str(&format!(" ({m})"));
                    }
                    Err(why)
                }
            }
        };
        match state {
            Ok(()) => ready += 1,
            Err(why) => {
                reason.get_or_insert(why);
            }
        }
    }
    match reason {
        None => Verdict::Reached { clusters: total },
        Some(reason) => Verdict::Waiting {
            ready,
            total,
            reason,
        },
    }
}

/// Poll until the app reaches `want`, fails, or `timeout` passes. Progress
/// goes to stderr, once per change.
pub(crate) async fn wait(
    name: &str,
    want: Want,
    timeout: Duration,
    target: &Target,
) -> anyhow::Result<()> {
    let client = AdminClient::discover(target)?;
    let deadline = Instant::now() + timeout;
    let mut last_progress = String::new();
    let mut last_unreachable = None;
    loop {
        match poll(&client, name).await {
            Ok((app, rows)) => match judge(&app, &rows, want) {
                Verdict::Reached { clusters } => {
                    println!(
                        "app {name} is {} on {clusters}/{clusters} clusters",
                        want.describe()
                    );
                    return Ok(());
                }
                Verdict::Failed(message) => return Err(exit(code::FAILED, message)),
                Verdict::Waiting {
                    ready,
                    total,
                    reason,
                } => {
                    let progress = format!(
                        "app {name}: {ready}/{total} clusters {}; waiting for {reason}",
                        want.describe()
                    );
                    if progress != last_progress {
                        eprintln!("{progress}");
                        last_progress = progress;
                    }
                }
            },
            Err(error) => match error.downcast_ref::<HttpError>() {
                Some(e) if e.status == 404 => {
                    return Err(exit(code::NOT_FOUND, error.to_string()));
                }
                Some(e) if e.status == 401 || e.status == 403 => {
                    return Err(exit(code::REFUSED, error.to_string()));
                }
                // The hub restarting or briefly unreachable: keep waiting.
                _ => {
                    let message = format!("{error:#}");
                    if last_unreachable.as_ref() != Some(&message) {
                        eprintln!("{message}; retrying");
                        last_unreachable = Some(message);
                    }
                }
            },
        }
        let now = Instant::now();
        if now >= deadline {
            let state = if last_progress.is_empty() {
                "the hub never answered".to_owned()
            } else {
                last_progress
            };
            return Err(exit(
                code::TIMEOUT,
                format!(
                    "timed out after {}: {state}",
                    humantime::format_duration(timeout)
                ),
            ));
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

async fn poll(client: &AdminClient, name: &str) -> anyhow::Result<(AppView, Vec<StatusView>)> {
    let app: AppView = client.get(&format!("/apps/{name}")).await?;
    let rows: Vec<StatusView> = client.get(&format!("/status?app={name}")).await?;
    Ok((app, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const C1: &str = "1111111111111111111111111111111111111111";
    const C0: &str = "0000000000000000000000000000000000000000";

    fn app(targets: &[&str], deployed: Option<&str>) -> AppView {
        AppView {
            name: "web".into(),
            repo: "r".into(),
            path: "web".into(),
            revision: "main".into(),
            revision_configured: None,
            chart: None,
            chart_version: None,
            selector: String::new(),
            group: None,
            namespace: None,
            renderer: "directory".into(),
            plugin_command: None,
            helm: None,
            directory: None,
            sync_policy: "automatic".into(),
            prune: false,
            self_heal: false,
            adopt: false,
            prune_namespaces: false,
            prune_crds: false,
            force_conflicts: false,
            ignore_differences: Vec::new(),
            create_namespace: true,
            prune_last: false,
            prune_confirmed: None,
            latest: deployed.map(str::to_owned),
            deployed: deployed.map(str::to_owned),
            failed_commit: None,
            running_counts: Default::default(),
            running: None,
            warnings: Default::default(),
            pending: None,
            pinned: false,
            target_count: targets.len(),
            target_clusters: Some(targets.iter().map(|t| t.to_string()).collect()),
            assigned: targets.len(),
            errors: BTreeMap::new(),
            created_at: String::new(),
        }
    }

    fn row(
        cluster: &str,
        desired: &str,
        applied: Option<&str>,
        sync: &str,
        health: &str,
    ) -> StatusView {
        StatusView {
            app: "web".into(),
            cluster: cluster.into(),
            sync: sync.into(),
            health: health.into(),
            desired_commit: desired.into(),
            applied_commit: applied.map(str::to_owned),
            message: None,
            error: None,
            warning: None,
            latest_commit: None,
            latest_render: None,
            connected: true,
            observed_at: None,
            resources: Vec::new(),
        }
    }

    const BOTH: Want = Want {
        synced: true,
        healthy: true,
    };
    const SYNCED: Want = Want {
        synced: true,
        healthy: false,
    };

    #[test]
    fn every_targeted_cluster_must_report_the_deployed_commit() {
        let a = app(&["a", "b"], Some(C1));
        let rows = [
            row("a", C1, Some(C1), "Synced", "Healthy"),
            row("b", C1, Some(C0), "OutOfSync", "Progressing"),
        ];
        assert!(matches!(
            judge(&a, &rows, BOTH),
            Verdict::Waiting { ready: 1, total: 2, ref reason } if reason.starts_with("b: OutOfSync/Progressing")
        ));
        let rows = [
            row("a", C1, Some(C1), "Synced", "Healthy"),
            row("b", C1, Some(C1), "Synced", "Progressing"),
        ];
        assert_eq!(judge(&a, &rows, SYNCED), Verdict::Reached { clusters: 2 });
        assert!(matches!(
            judge(&a, &rows, BOTH),
            Verdict::Waiting { ready: 1, .. }
        ));
        // A row for an older commit does not count, whatever it says.
        let rows = [
            row("a", C0, Some(C0), "Synced", "Healthy"),
            row("b", C1, Some(C1), "Synced", "Healthy"),
        ];
        assert!(matches!(
            judge(&a, &rows, BOTH),
            Verdict::Waiting { ready: 1, .. }
        ));
        // A cluster without a row is waited for.
        assert!(matches!(
            judge(&a, &rows[1..], BOTH),
            Verdict::Waiting { ready: 1, total: 2, ref reason } if reason == "a: not assigned yet"
        ));
    }

    #[test]
    fn nothing_deployed_or_nothing_targeted_is_never_reached() {
        assert!(matches!(
            judge(&app(&["a"], None), &[], BOTH),
            Verdict::Waiting {
                ready: 0,
                total: 1,
                ..
            }
        ));
        assert!(matches!(
            judge(&app(&[], Some(C1)), &[], BOTH),
            Verdict::Waiting { ready: 0, total: 0, ref reason } if reason == "the app targets no cluster"
        ));
    }

    #[test]
    fn render_errors_and_degraded_clusters_fail() {
        let mut a = app(&["a"], Some(C1));
        let rows = [row("a", C1, Some(C1), "Synced", "Degraded")];
        assert!(
            matches!(judge(&a, &rows, BOTH), Verdict::Failed(m) if m.contains("Degraded on a"))
        );
        // Only when health is wanted.
        assert_eq!(judge(&a, &rows, SYNCED), Verdict::Reached { clusters: 1 });
        a.errors.insert("*".into(), "render: bad yaml".into());
        assert!(
            matches!(judge(&a, &rows, SYNCED), Verdict::Failed(m) if m.contains("render: bad yaml"))
        );
    }
}
