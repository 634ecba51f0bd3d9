//! One simulated agent: the real agent's session (agent/src/session.rs)
//! without a cluster: Hello, assignment and bundle fetch with the digest
//! check, status reports on a heartbeat, notifications, and jittered
//! reconnects. Bundles are verified and then dropped; only digests are kept,
//! so thousands of agents fit in one process.

use crate::link::{Identity, request};
use crate::stats::Stats;
use anyhow::{Context, bail};
use rand::RngExt;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchyard_common::bundle::Bundle;
use switchyard_common::proto::{
    AppStatus, GetAssignment, GetBundle, Health, Hello, Message, Notification, StatusReport,
    SyncStatus, read_message,
};

/// Largest bundle accepted once decompressed (as the agent's cache).
const MAX_BUNDLE_BYTES: usize = 256 * 1024 * 1024;
/// Reconnect backoff: the agent's (agent/src/backoff.rs): the first retry
/// after a working connection anywhere in 0–3 s, then 500 ms doubling with
/// equal jitter.
const RECONNECT_SPREAD: Duration = Duration::from_secs(3);
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What every simulated agent shares.
pub(crate) struct Settings {
    pub(crate) hub_addr: SocketAddr,
    pub(crate) server_name: String,
    pub(crate) report_interval: Option<Duration>,
}

/// What one agent holds between connections.
#[derive(Default)]
struct Held {
    generation: u64,
    items: Vec<switchyard_common::proto::AssignmentItem>,
    digests: HashSet<String>,
}

/// Run one agent until the task is aborted.
pub(crate) async fn run_agent(
    index: usize,
    identity: Identity,
    endpoint: quinn::Endpoint,
    settings: Arc<Settings>,
    stats: Arc<Stats>,
) {
    let mut held = Held::default();
    let mut attempt = 0u32;
    loop {
        let outcome = session(
            index,
            &identity,
            &endpoint,
            &settings,
            &stats,
            &mut held,
            &mut attempt,
        )
        .await;
        stats.set_connected(index, false);
        if let Err(error) = outcome {
            stats.error();
            tracing::debug!(cluster = %identity.cluster, error = %format!("{error:#}"), "session ended");
        }
        let unit = rand::rng().random::<f64>();
        let delay = if attempt == 0 {
            RECONNECT_SPREAD.mul_f64(unit)
        } else {
            let step = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                .min(BACKOFF_MAX);
            step / 2 + (step / 2).mul_f64(unit)
        };
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

async fn session(
    index: usize,
    identity: &Identity,
    endpoint: &quinn::Endpoint,
    settings: &Settings,
    stats: &Stats,
    held: &mut Held,
    attempt: &mut u32,
) -> anyhow::Result<()> {
    let conn = endpoint
        .connect_with(
            identity.tls.clone(),
            settings.hub_addr,
            &settings.server_name,
        )?
        .await
        .context("handshake")?;
    let welcome = match request(
        &conn,
        &Message::Hello(Hello {
            agent_version: concat!("loadgen/", env!("CARGO_PKG_VERSION")).to_owned(),
            kubernetes_version: None,
            generation: held.generation,
        }),
    )
    .await?
    {
        Message::Welcome(welcome) => welcome,
        other => bail!("Hello answered with {:?}", other.kind()),
    };
    *attempt = 0;
    stats.set_connected(index, true);
    if welcome.generation != held.generation {
        fetch(index, &conn, stats, held).await?;
    }
    report(index, &conn, stats, held).await?;
    let interval = settings
        .report_interval
        .unwrap_or(Duration::from_secs(u64::from(
            welcome.heartbeat_secs.max(1),
        )));
    // Agents started together must not report together for ever.
    let first = interval.mul_f64(rand::rng().random::<f64>());
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    loop {
        tokio::select! {
            stream = conn.accept_uni() => {
                let mut recv = stream?;
                let before = conn.stats();
                let message = tokio::time::timeout(Duration::from_secs(10), read_message(&mut recv))
                    .await
                    .context("notification stream stalled")??;
                match message {
                    Some(Message::Notify(Notification::AssignmentChanged { generation }))
                        if generation <= held.generation => {}
                    Some(Message::Notify(Notification::AssignmentChanged { .. } | Notification::Resync)) => {
                        let fetched = fetch(index, &conn, stats, held).await?;
                        report(index, &conn, stats, held).await?;
                        if fetched > 0 {
                            let after = conn.stats();
                            stats.update_bytes(wire_bytes(&after) - wire_bytes(&before));
                        }
                    }
                    Some(Message::Notify(Notification::RenewCertificate)) => {
                        // Certificates outlive any benchmark; nothing to do.
                    }
                    Some(other) => bail!("unexpected {:?} on a notification stream", other.kind()),
                    None => {}
                }
            }
            _ = heartbeat.tick() => report(index, &conn, stats, held).await?,
        }
    }
}

/// UDP payload bytes both ways on the connection so far.
fn wire_bytes(stats: &quinn::ConnectionStats) -> u64 {
    stats.udp_tx.bytes + stats.udp_rx.bytes
}

/// Fetch the assignment and the bundles not yet held, checking each
/// against its digest; returns how many bundles were fetched.
async fn fetch(
    index: usize,
    conn: &quinn::Connection,
    stats: &Stats,
    held: &mut Held,
) -> anyhow::Result<usize> {
    let answer = request(
        conn,
        &Message::GetAssignment(GetAssignment {
            known_generation: held.generation,
        }),
    )
    .await?;
    let Message::Assignment(assignment) = answer else {
        bail!("GetAssignment answered with {:?}", answer.kind());
    };
    let mut fetched = 0;
    for item in &assignment.items {
        if held.digests.contains(&item.digest) {
            continue;
        }
        let answer = request(
            conn,
            &Message::GetBundle(GetBundle {
                digest: item.digest.clone(),
            }),
        )
        .await?;
        let Message::Bundle(bundle) = answer else {
            bail!("GetBundle answered with {:?}", answer.kind());
        };
        if bundle.digest != item.digest {
            bail!("asked for bundle {} and got {}", item.digest, bundle.digest);
        }
        Bundle::decode(&bundle.compressed, &item.digest, MAX_BUNDLE_BYTES)
            .with_context(|| format!("bundle {} fails verification", item.digest))?;
        held.digests.insert(item.digest.clone());
        stats.bundle_verified(index, &item.digest);
        fetched += 1;
    }
    // Forget bundles no longer assigned, as the agent's cache does.
    held.digests
        .retain(|d| assignment.items.iter().any(|i| &i.digest == d));
    held.generation = assignment.generation;
    held.items = assignment.items;
    Ok(fetched)
}

/// Report every held app as synced and healthy at its assigned digest.
async fn report(
    index: usize,
    conn: &quinn::Connection,
    stats: &Stats,
    held: &Held,
) -> anyhow::Result<()> {
    let observed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let apps = held
        .items
        .iter()
        .map(|item| AppStatus {
            app: item.app.clone(),
            commit: item.commit.clone(),
            digest: item.digest.clone(),
            sync: SyncStatus::Synced,
            health: Health::Healthy,
            resources: Vec::new(),
            last_error: None,
            observed_at,
        })
        .collect();
    let answer = request(
        conn,
        &Message::ReportStatus(StatusReport {
            agent_version: concat!("loadgen/", env!("CARGO_PKG_VERSION")).to_owned(),
            kubernetes_version: None,
            apps,
        }),
    )
    .await?;
    match answer {
        Message::StatusAccepted(_) => {
            stats.report_accepted();
            stats.set_synced(index, !held.items.is_empty());
            Ok(())
        }
        other => bail!("ReportStatus answered with {:?}", other.kind()),
    }
}
