//! `switchyard-agent run`: stay connected to the hub, follow notifications,
//! report on a heartbeat, renew the certificate, reconnect after any failure.

use crate::backoff::Backoff;
use crate::cache::Cache;
use crate::clock::unix_now;
use crate::enroll::rustls_pemfile_first_cert;
use crate::hub_link::{self, Error as LinkError};
use crate::reconcile::{BundleObjects, Desired, DesiredApp, Runner};
use crate::state::{Identity, StateDir};
use anyhow::Context;
use rand::RngExt;
use std::time::{Duration, UNIX_EPOCH};
use switchyard_common::error_chain;
use switchyard_common::proto::{
    AppStatus, Assignment, GetAssignment, GetBundle, Health, Hello, Message, Notification,
    RenewCertificate, ReportDiff, ResourceStatus, StatusReport, SyncStatus, close_code,
    read_message,
};
use tracing::{Instrument, debug, error, info, info_span, warn};

/// Settings of `run`.
pub(crate) struct RunOptions {
    pub(crate) dry_run: bool,
    /// The reconcile loop, when the agent has a cluster to talk to.
    pub(crate) runner: Option<Runner>,
    pub(crate) kubernetes_version: Option<String>,
    pub(crate) max_backoff: Duration,
}

/// The first reconnect after losing a working connection waits a random
/// time up to this, so that a fleet cut off at once (hub restart) comes back
/// spread over it rather than in the same instant (BENCHMARKS.md, fleet scale).
const RECONNECT_SPREAD: Duration = Duration::from_secs(3);

/// What the agent knows between connections.
struct Progress {
    generation: u64,
    cache: Cache,
}

/// When to renew: two thirds into the certificate's life.
fn renew_at(received_at: u64, not_after: u64) -> u64 {
    received_at + not_after.saturating_sub(received_at) * 2 / 3
}

/// Run until a permanent failure (revocation) or `shutdown`.
pub(crate) async fn run(
    state: StateDir,
    options: RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let made = state.make_private()?;
    for path in &made.changed {
        warn!(path = %path.display(), "was readable by others; made private to the agent's user");
    }
    if let Some((dir, mode)) = &made.top_not_ours {
        warn!(dir = %dir.display(), mode = %format!("{mode:o}"), "the state dir belongs to another user and keeps its mode; everything in it is private");
    }
    let identity = state.load()?;
    let cluster = identity.enrollment.cluster.clone();
    let (addr, _) = hub_link::resolve(&identity.enrollment.hub).await?;
    let endpoint = hub_link::client_endpoint(addr)?;
    let mut backoff = Backoff::new(Duration::from_millis(500), options.max_backoff)
        .with_first_spread(RECONNECT_SPREAD);
    let cache = Cache::new(state.root());
    let recovery = cache.recover();
    if recovery != Default::default() {
        warn!(
            temporary_files = recovery.temporary_files,
            bad_bundles = recovery.bad_bundles,
            "removed what an interrupted run left in the cache"
        );
    }
    let cached = match cache.assignment() {
        Ok(cached) => cached,
        Err(e) => {
            // Not "nothing assigned": the reconciler must not take an
            // unreadable assignment for one that unassigns every app.
            warn!(error = %error_chain(&e), "the cached assignment is unreadable; enforcing and pruning nothing until the hub sends one");
            if let Some(runner) = &options.runner {
                runner
                    .desired
                    .send_replace(Some(std::sync::Arc::new(Desired {
                        generation: 0,
                        apps: Err(format!(
                            "the cached assignment is unreadable ({})",
                            error_chain(&e)
                        )),
                    })));
            }
            None
        }
    };
    let mut progress = Progress {
        generation: cached.as_ref().map_or(0, |a| a.generation),
        cache,
    };
    if let Some(assignment) = &cached {
        info!(
            generation = assignment.generation,
            apps = assignment.items.len(),
            "loaded the cached assignment"
        );
        // Enforce the last desired state at once, hub or no hub.
        hand_to_runner(&options, &progress.cache, assignment);
        if options.dry_run && options.runner.is_none() {
            print_plan(&progress.cache, assignment);
        }
    }
    tokio::pin!(shutdown);
    info!(%cluster, hub = %identity.enrollment.hub, dry_run = options.dry_run, "agent starting");
    loop {
        let span = info_span!("hub_connection", %cluster);
        let session = connect_and_serve(&endpoint, &state, &options, &mut progress, &mut backoff)
            .instrument(span);
        let outcome = tokio::select! {
            outcome = session => outcome,
            () = &mut shutdown => {
                endpoint.close(close_code::NORMAL.into(), b"agent shutting down");
                endpoint.wait_idle().await;
                info!("agent stopped");
                return Ok(());
            }
        };
        match outcome {
            Ok(()) => info!("connection to the hub ended"),
            Err(e) if e.is_permanent() => {
                error!(error = %e, "giving up");
                return Err(e.into());
            }
            Err(LinkError::VersionMismatch(reason)) => {
                error!(%reason, "the hub speaks another protocol version; upgrade the agent or the hub");
            }
            Err(e) => warn!(error = %error_chain(&e), "connection to the hub failed"),
        }
        let delay = backoff.next_delay(rand::rng().random::<f64>());
        debug!(?delay, "reconnecting after backoff");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => {
                info!("agent stopped");
                return Ok(());
            }
        }
    }
}

async fn connect_and_serve(
    endpoint: &quinn::Endpoint,
    state: &StateDir,
    options: &RunOptions,
    progress: &mut Progress,
    backoff: &mut Backoff,
) -> Result<(), LinkError> {
    // Reload each time: a renewal may have replaced the certificate.
    let identity = state
        .load()
        .map_err(|e| LinkError::Identity(error_chain(&e)))?;
    if identity.enrollment.cert_not_after <= unix_now() {
        warn!(
            not_after = identity.enrollment.cert_not_after,
            "the agent's certificate has expired; the hub will refuse it: enroll again with a new join command"
        );
    }
    let tls =
        switchyard_certs::agent_client_config(&identity.ca_pem, &identity.cert_pem, &identity.key)
            .map_err(|e| LinkError::Identity(error_chain(&e)))?;
    let (addr, server_name) = hub_link::resolve(&identity.enrollment.hub).await?;
    let conn = hub_link::dial(
        endpoint,
        hub_link::quic_client_config(tls)?,
        addr,
        &server_name,
    )
    .await?;

    let welcome = match hub_link::request(
        &conn,
        &Message::Hello(Hello {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            kubernetes_version: options.kubernetes_version.clone(),
            generation: progress.generation,
        }),
    )
    .await?
    {
        Message::Welcome(welcome) => welcome,
        other => {
            return Err(LinkError::Unexpected {
                expected: "Welcome",
                got: other.kind(),
            });
        }
    };
    backoff.reset();
    info!(generation = welcome.generation, hub_version = %welcome.hub_version, "connected to the hub");
    // Tell the hub at once how things stand, including what happened while
    // it was unreachable (an app left Unknown by a damaged cache, with the
    // reason): before any fetch, so the hub hears it even when the fetch
    // fails, and before a new desired state replaces it.
    report(&conn, options, progress).await?;
    // Also fetch when the cache lacks a bundle of its assignment (removed
    // as damaged): its app stays Unknown until the hub sends it again.
    if welcome.generation != progress.generation || progress.cache.lacks_bundles() {
        fetch_assignment(&conn, options, progress).await?;
        report(&conn, options, progress).await?;
    }
    let mut statuses = options.runner.as_ref().map(|r| r.statuses.clone());

    let heartbeat = Duration::from_secs(u64::from(welcome.heartbeat_secs.max(1)));
    let mut heartbeat_timer =
        tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut renewal = identity.clone_enrollment_times();
    loop {
        let renew_in =
            Duration::from_secs(renew_at(renewal.0, renewal.1).saturating_sub(unix_now()));
        tokio::select! {
            stream = conn.accept_uni() => {
                let mut recv = stream?;
                match tokio::time::timeout(Duration::from_secs(10), read_message(&mut recv)).await {
                    Ok(Ok(Some(Message::Notify(notification)))) => {
                        handle_notification(&conn, state, options, progress, &mut renewal, notification).await?;
                    }
                    Ok(Ok(other)) => warn!(message = ?other.map(|m| m.kind()), "ignoring unexpected message on a notification stream"),
                    Ok(Err(e)) => return Err(LinkError::Protocol(e)),
                    Err(_) => warn!("notification stream stalled; ignored"),
                }
            }
            _ = heartbeat_timer.tick() => {
                report(&conn, options, progress).await?;
            }
            Ok(()) = async {
                match statuses.as_mut() {
                    Some(s) => s.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                report(&conn, options, progress).await?;
            }
            () = tokio::time::sleep(renew_in) => {
                renewal = renew(&conn, state).await?;
            }
        }
    }
}

impl Identity {
    fn clone_enrollment_times(&self) -> (u64, u64) {
        (
            self.enrollment.cert_received_at,
            self.enrollment.cert_not_after,
        )
    }
}

async fn handle_notification(
    conn: &quinn::Connection,
    state: &StateDir,
    options: &RunOptions,
    progress: &mut Progress,
    renewal: &mut (u64, u64),
    notification: Notification,
) -> Result<(), LinkError> {
    info!(?notification, "notified by the hub");
    match notification {
        // Coalescing: notifications for generations already fetched cost nothing.
        Notification::AssignmentChanged { generation } if generation <= progress.generation => {
            Ok(())
        }
        Notification::AssignmentChanged { .. } | Notification::Resync => {
            fetch_assignment(conn, options, progress).await?;
            report(conn, options, progress).await
        }
        Notification::RenewCertificate => {
            *renewal = renew(conn, state).await?;
            Ok(())
        }
        Notification::DiffRequested { request_id, app } => {
            // In its own task: the connection keeps reporting meanwhile.
            let previewer = options.runner.as_ref().map(|r| r.previewer.clone());
            let conn = conn.clone();
            tokio::spawn(
                answer_diff(conn, previewer, request_id, app)
                    .instrument(info_span!("diff", request_id)),
            );
            Ok(())
        }
    }
}

/// Longest a diff may take on the agent; the hub stops waiting sooner.
const DIFF_COMPUTE_LIMIT: Duration = Duration::from_secs(30);
/// Longest reason sent with a diff, in bytes.
const DIFF_ERROR_LIMIT: usize = 4096;
/// Diffs computed at once: each walks an app's objects, and requests from
/// many callers must not take the agent's CPU from its reconcile loop.
static DIFFS_AT_ONCE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Compute the diff the hub asked for and send it back.
async fn answer_diff(
    conn: quinn::Connection,
    previewer: Option<crate::reconcile::Previewer>,
    request_id: u64,
    app: String,
) {
    let mut report = ReportDiff {
        request_id,
        app: app.clone(),
        objects: Vec::new(),
        truncated: false,
        error: None,
    };
    let turn = DIFFS_AT_ONCE.try_acquire();
    let outcome = match (&previewer, &turn) {
        (_, Err(_)) => Err("the agent is busy with other diffs; try again".into()),
        (None, _) => Err("the agent runs without a cluster (dry-run); it has no live state".into()),
        (Some(previewer), Ok(_)) => {
            match tokio::time::timeout(DIFF_COMPUTE_LIMIT, previewer.preview(&app)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("not computed within {DIFF_COMPUTE_LIMIT:?}")),
            }
        }
    };
    match outcome {
        Ok(preview) => {
            report.objects = preview.objects;
            report.truncated = preview.truncated;
            if !preview.problems.is_empty() {
                report.error = Some(preview.problems.join("; "));
            }
        }
        Err(why) => report.error = Some(why),
    }
    drop(turn);
    if let Some(error) = &mut report.error
        && error.len() > DIFF_ERROR_LIMIT
    {
        let mut cut = DIFF_ERROR_LIMIT;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
        error.push_str(" ...");
    }
    let objects = report.objects.len();
    match hub_link::request(&conn, &Message::ReportDiff(report)).await {
        Ok(Message::StatusAccepted(_)) => debug!(%app, objects, "diff sent"),
        Ok(other) => debug!(%app, answer = ?other, "diff not taken (the hub stopped waiting)"),
        Err(e) => warn!(%app, error = %error_chain(&e), "cannot send the diff"),
    }
}

async fn fetch_assignment(
    conn: &quinn::Connection,
    options: &RunOptions,
    progress: &mut Progress,
) -> Result<(), LinkError> {
    let answer = hub_link::request(
        conn,
        &Message::GetAssignment(GetAssignment {
            known_generation: progress.generation,
        }),
    )
    .await?;
    let Message::Assignment(assignment) = answer else {
        return Err(LinkError::Unexpected {
            expected: "Assignment",
            got: answer.kind(),
        });
    };
    for item in &assignment.items {
        if progress.cache.has_bundle(&item.digest) {
            continue;
        }
        let answer = hub_link::request(
            conn,
            &Message::GetBundle(GetBundle {
                digest: item.digest.clone(),
            }),
        )
        .await?;
        let Message::Bundle(bundle) = answer else {
            return Err(LinkError::Unexpected {
                expected: "Bundle",
                got: answer.kind(),
            });
        };
        if bundle.digest != item.digest {
            return Err(LinkError::Identity(format!(
                "asked for bundle {} and got {}",
                item.digest, bundle.digest
            )));
        }
        match progress
            .cache
            .store_bundle(&item.digest, &bundle.compressed)
        {
            Ok(b) => {
                info!(app = %item.app, digest = %item.digest, objects = b.objects.len(), bytes = bundle.compressed.len(), "bundle fetched")
            }
            // A bad bundle is refused; the next notification or reconnect retries.
            Err(e) => {
                warn!(app = %item.app, error = %error_chain(&e), "refusing a bundle");
                return Err(LinkError::BadBundle(error_chain(&e)));
            }
        }
    }
    if let Err(e) = progress.cache.store_assignment(&assignment) {
        warn!(error = %error_chain(&e), "cannot cache the assignment; it is kept in memory only");
    }
    progress.generation = assignment.generation;
    info!(
        generation = assignment.generation,
        apps = assignment.items.len(),
        "assignment received"
    );
    hand_to_runner(options, &progress.cache, &assignment);
    if options.dry_run && options.runner.is_none() {
        print_plan(&progress.cache, &assignment);
    }
    Ok(())
}

/// Give the reconcile loop the objects of every assigned app.
fn hand_to_runner(options: &RunOptions, cache: &Cache, assignment: &Assignment) {
    let Some(runner) = &options.runner else {
        return;
    };
    let mut apps = Vec::new();
    for item in &assignment.items {
        // An unreadable bundle leaves its app Unknown (never unassigned)
        // until the hub sends it again.
        let objects = cache
            .compressed_bundle(&item.digest)
            .map_err(|e| error_chain(&e))
            .and_then(|bytes| {
                BundleObjects::new(&item.digest, bytes)
                    .map_err(|e| format!("bundle {}: {}", item.digest, error_chain(&e)))
            })
            .map_err(|e| {
                warn!(app = %item.app, error = %e, "bundle unavailable; app not enforced until it is fetched again");
                format!("the cached bundle is missing or damaged ({e})")
            });
        apps.push(DesiredApp {
            item: item.clone(),
            objects,
        });
    }
    let desired = std::sync::Arc::new(Desired {
        generation: assignment.generation,
        apps: Ok(apps),
    });
    runner.desired.send_replace(Some(desired));
}

/// Dry-run output: what this agent would apply.
fn print_plan(cache: &Cache, assignment: &Assignment) {
    use std::io::Write;
    let mut out = String::new();
    if assignment.items.is_empty() {
        out.push_str(&format!(
            "assignment generation {}: no apps assigned\n",
            assignment.generation
        ));
    } else {
        out.push_str(&format!(
            "assignment generation {}:\n",
            assignment.generation
        ));
    }
    for item in &assignment.items {
        // A chart version from a chart repository (`6.1.0@sha256:…`) by
        // its version, a commit by its first digits.
        let short: String = match item.commit.split_once("@sha256:") {
            Some((version, _)) => version.to_owned(),
            None => item.commit.chars().take(8).collect(),
        };
        out.push_str(&format!(
            "  app {} at {short} ({}){}{}\n",
            item.app,
            item.digest,
            if item.prune { ", prune" } else { "" },
            if item.self_heal { ", self-heal" } else { "" },
        ));
        match cache.bundle(&item.digest) {
            Ok(bundle) => {
                for object in &bundle.objects {
                    let namespace = object["metadata"]["namespace"]
                        .as_str()
                        .or(item.namespace.as_deref());
                    out.push_str(&format!(
                        "    would apply {} {}{} ({})\n",
                        object["kind"].as_str().unwrap_or("?"),
                        namespace.map(|n| format!("{n}/")).unwrap_or_default(),
                        object["metadata"]["name"].as_str().unwrap_or("?"),
                        object["apiVersion"].as_str().unwrap_or("?"),
                    ));
                }
            }
            Err(e) => out.push_str(&format!("    bundle unavailable: {}\n", error_chain(&e))),
        }
    }
    // One write, so concurrent readers of the output never see half a plan.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// What to report about the assigned apps: the reconciler's statuses, or in
/// a dry-run without a cluster, that each app's objects were planned.
fn app_statuses(options: &RunOptions, progress: &Progress) -> Vec<AppStatus> {
    if let Some(runner) = &options.runner {
        return runner.statuses.borrow().clone();
    }
    let Ok(Some(assignment)) = progress.cache.assignment() else {
        return Vec::new();
    };
    let observed_at = unix_now();
    assignment
        .items
        .iter()
        .map(|item| planned_status(item, progress.cache.bundle(&item.digest).ok(), observed_at))
        .collect()
}

/// A dry-run agent's status of one app: `Planned` with one row per object
/// when it holds the bundle; `Unknown` with the reason when it does not
/// (nothing was planned then). Health stays `Unknown`: nothing runs.
fn planned_status(
    item: &switchyard_common::proto::AssignmentItem,
    bundle: Option<switchyard_common::bundle::Bundle>,
    observed_at: u64,
) -> AppStatus {
    let Some(bundle) = bundle else {
        return AppStatus {
            app: item.app.clone(),
            commit: item.commit.clone(),
            digest: item.digest.clone(),
            sync: SyncStatus::Unknown,
            health: Health::Unknown,
            resources: Vec::new(),
            last_error: None,
            observed_at,
        };
    };
    let resources = bundle
        .objects
        .iter()
        .map(|o| ResourceStatus {
            group: o["apiVersion"]
                .as_str()
                .and_then(|v| v.split_once('/'))
                .map(|(g, _)| g.to_owned())
                .unwrap_or_default(),
            kind: o["kind"].as_str().unwrap_or_default().to_owned(),
            namespace: o["metadata"]["namespace"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| item.namespace.clone()),
            name: o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            sync: SyncStatus::Planned,
            health: Health::Unknown,
            message: Some("dry-run: printed, not applied".into()),
        })
        .collect();
    AppStatus {
        app: item.app.clone(),
        commit: item.commit.clone(),
        digest: item.digest.clone(),
        sync: SyncStatus::Planned,
        health: Health::Unknown,
        resources,
        last_error: None,
        observed_at,
    }
}

async fn report(
    conn: &quinn::Connection,
    options: &RunOptions,
    progress: &Progress,
) -> Result<(), LinkError> {
    let answer = hub_link::request(
        conn,
        &Message::ReportStatus(StatusReport {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            kubernetes_version: options.kubernetes_version.clone(),
            apps: app_statuses(options, progress),
        }),
    )
    .await?;
    match answer {
        Message::StatusAccepted(_) => Ok(()),
        other => Err(LinkError::Unexpected {
            expected: "StatusAccepted",
            got: other.kind(),
        }),
    }
}

/// Ask the hub for a new certificate for the same key and store it.
async fn renew(conn: &quinn::Connection, state: &StateDir) -> Result<(u64, u64), LinkError> {
    let identity = state
        .load()
        .map_err(|e| LinkError::Identity(error_chain(&e)))?;
    let csr_pem = identity
        .key
        .csr_pem(&identity.enrollment.cluster)
        .map_err(|e| LinkError::Identity(format!("cannot create a CSR: {e}")))?;
    let answer = hub_link::request(
        conn,
        &Message::RenewCertificate(RenewCertificate { csr_pem }),
    )
    .await?;
    let Message::CertificateRenewed(renewed) = answer else {
        return Err(LinkError::Unexpected {
            expected: "CertificateRenewed",
            got: answer.kind(),
        });
    };
    let times = store_renewed(state, identity, &renewed.cert_pem)
        .map_err(|e| LinkError::Identity(format!("cannot store the renewed certificate: {e:#}")))?;
    info!(not_after = times.1, "certificate renewed");
    Ok(times)
}

fn store_renewed(
    state: &StateDir,
    identity: Identity,
    cert_pem: &str,
) -> anyhow::Result<(u64, u64)> {
    let der = rustls_pemfile_first_cert(cert_pem)?;
    let peer = switchyard_certs::peer_identity(&der).context("reading the renewed certificate")?;
    // Proves the certificate fits our key before it replaces the old one.
    switchyard_certs::agent_client_config(&identity.ca_pem, cert_pem, &identity.key)
        .context("the renewed certificate does not fit the agent's key")?;
    let mut enrollment = identity.enrollment;
    enrollment.cert_received_at = unix_now();
    enrollment.cert_not_after = peer
        .not_after
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    state.save_renewed(cert_pem, &enrollment)?;
    Ok((enrollment.cert_received_at, enrollment.cert_not_after))
}

#[cfg(test)]
mod tests {
    use super::renew_at;

    #[test]
    fn a_dry_run_reports_its_objects_planned() {
        use super::planned_status;
        use switchyard_common::bundle::Bundle;
        use switchyard_common::proto::{AssignmentItem, Health, Ownership, SyncStatus};
        let item = AssignmentItem {
            app: "web".into(),
            commit: "c1".into(),
            digest: "sha256:00".into(),
            namespace: Some("demo".into()),
            prune: false,
            self_heal: false,
            ownership: Ownership::default(),
            ignore_differences: Vec::new(),
            prune_confirmed: None,
            create_namespace: true,
            prune_last: false,
            sync_requested: 0,
        };
        let bundle = Bundle::new(vec![
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "other"}}),
        ]);
        let status = planned_status(&item, Some(bundle), 7);
        assert_eq!(status.sync, SyncStatus::Planned);
        assert_eq!(status.health, Health::Unknown);
        assert_eq!(status.resources.len(), 2);
        assert!(
            status
                .resources
                .iter()
                .all(|r| r.sync == SyncStatus::Planned)
        );
        assert_eq!(status.resources[0].group, "apps");
        assert_eq!(status.resources[0].namespace.as_deref(), Some("demo"));
        assert_eq!(status.resources[1].namespace.as_deref(), Some("other"));
        // Without the bundle nothing was planned.
        assert_eq!(planned_status(&item, None, 7).sync, SyncStatus::Unknown);
    }

    #[test]
    fn renews_two_thirds_into_the_lifetime() {
        assert_eq!(renew_at(1000, 1300), 1200);
        assert_eq!(renew_at(1000, 1000), 1000);
        // A certificate that claims to end before it was received renews at once.
        assert_eq!(renew_at(1000, 900), 1000);
    }
}
