//! Registering the simulated clusters through the hub's admin API, then
//! enrolling each over QUIC with its single-use token and a fresh key, as
//! `switchyard-agent join` does: the certificates are real hub-signed ones.

use crate::link::{self, Identity};
use crate::stats::emit;
use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Instant;
use switchyard_certs::AgentKey;
use switchyard_common::proto::{Enroll, Message, close_code};

/// Where the hub is and how to talk to it, from its data dir.
pub(crate) struct HubInfo {
    pub(crate) agent_addr: SocketAddr,
    pub(crate) server_name: String,
    ca_sha256: String,
    admin_url: String,
    admin_token: String,
    http: reqwest::Client,
}

impl HubInfo {
    /// Read `hub.json` and `admin-token` from the hub's data dir.
    pub(crate) fn discover(dir: &Path) -> anyhow::Result<HubInfo> {
        let file = dir.join("hub.json");
        let endpoints: Value = serde_json::from_slice(
            &std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?,
        )
        .with_context(|| format!("parsing {}", file.display()))?;
        let field = |name: &str| {
            endpoints[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{} has no {name}", file.display()))
        };
        let agent_address = field("agent_address")?;
        let (host, _) = agent_address
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("agent address {agent_address:?} is not HOST:PORT"))?;
        let agent_addr = agent_address
            .to_socket_addrs()
            .with_context(|| format!("resolving {agent_address}"))?
            .next()
            .ok_or_else(|| anyhow!("{agent_address} resolves to nothing"))?;
        let token_file = dir.join("admin-token");
        let admin_token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading {}", token_file.display()))?
            .trim()
            .to_owned();
        let admin_url = field("admin_url")?;
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        // An admin API over TLS is served with a certificate of the hub's CA.
        let ca_file = dir.join("ca").join("ca.pem");
        if admin_url.starts_with("https:")
            && let Ok(pem) = std::fs::read(&ca_file)
        {
            let ca = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("reading {}", ca_file.display()))?;
            http = http.add_root_certificate(ca);
        }
        Ok(HubInfo {
            agent_addr,
            server_name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            ca_sha256: field("ca_sha256")?,
            admin_url,
            admin_token,
            http: http.build().context("building the HTTP client")?,
        })
    }

    /// `switchyard cluster add NAME --label …` through the admin API; returns the bootstrap token.
    async fn add_cluster_named(
        &self,
        prefix: &str,
        index: usize,
        labels: &[(String, String)],
    ) -> anyhow::Result<String> {
        let name = cluster_name(prefix, index);
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let response = self
            .http
            .post(format!("{}/api/v1/clusters", self.admin_url))
            .bearer_auth(&self.admin_token)
            .json(&json!({"name": name, "labels": labels, "token_ttl_secs": 86_400}))
            .send()
            .await
            .with_context(|| format!("adding cluster {name}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("adding cluster {name}: HTTP {status}: {body}");
        }
        body["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("adding cluster {name}: no token in {body}"))
    }

    /// Enroll one cluster over QUIC with its token and a new key.
    async fn enroll(&self, endpoint: &quinn::Endpoint, token: String) -> anyhow::Result<Identity> {
        let (tls, _probe) = switchyard_certs::bootstrap_client_config(&self.ca_sha256)?;
        let conn = endpoint
            .connect_with(link::quic_config(tls)?, self.agent_addr, &self.server_name)?
            .await
            .context("bootstrap handshake")?;
        let key = AgentKey::generate()?;
        let answer = link::request(
            &conn,
            &Message::Enroll(Enroll {
                token,
                csr_pem: key.csr_pem("switchyard-loadgen")?,
                agent_version: concat!("loadgen/", env!("CARGO_PKG_VERSION")).to_owned(),
            }),
        )
        .await;
        conn.close(close_code::NORMAL.into(), b"enrolled");
        let Message::Enrolled(enrolled) = answer? else {
            bail!("the hub did not answer Enroll with Enrolled");
        };
        let mut tls =
            switchyard_certs::agent_client_config(&enrolled.ca_pem, &enrolled.cert_pem, &key)?;
        // The agent builds a new TLS config per connection, so every
        // reconnect is a full handshake; the simulation must not resume.
        tls.resumption = rustls::client::Resumption::disabled();
        Ok(Identity {
            cluster: enrolled.cluster.to_string(),
            tls: link::quic_config(tls)?,
        })
    }
}

/// Register and enroll `count` clusters, `concurrency` at a time per phase.
/// Each phase's rate goes to stdout as an event.
pub(crate) async fn enroll_all(
    hub: &HubInfo,
    endpoints: &[quinn::Endpoint],
    prefix: &str,
    labels: &[(String, String)],
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Identity>> {
    let concurrency = concurrency.max(1);
    let started = Instant::now();
    let tokens: Vec<String> = stream::iter(0..count)
        .map(|i| hub.add_cluster_named(prefix, i, labels))
        .buffered(concurrency)
        .try_collect()
        .await?;
    emit_rate("registered", count, started);

    let started = Instant::now();
    let identities: Vec<Identity> = stream::iter(tokens.into_iter().enumerate())
        .map(|(i, token)| async move {
            hub.enroll(&endpoints[i % endpoints.len()], token)
                .await
                .with_context(|| format!("enrolling {}", cluster_name(prefix, i)))
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    emit_rate("enrolled", count, started);
    Ok(identities)
}

fn cluster_name(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index:05}")
}

fn emit_rate(event: &str, count: usize, started: Instant) {
    let elapsed = started.elapsed();
    emit(&json!({
        "event": event,
        "agents": count,
        "elapsed_ms": elapsed.as_millis() as u64,
        "per_sec": count as f64 / elapsed.as_secs_f64(),
    }));
}
