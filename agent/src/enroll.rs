//! `switchyard-agent join`: enroll this cluster with the hub.
//!
//! The agent trusts the hub only through the CA fingerprint printed by
//! `switchyard cluster add`: the TLS handshake must present that CA before the
//! bootstrap token is sent, so a wrong hub never sees the token. The private
//! key is generated here and never leaves the state directory.

use crate::clock::unix_now;
use crate::hub_link::{self, Error as LinkError};
use crate::state::{Enrollment, Identity, StateDir};
use anyhow::{Context, anyhow, bail};
use std::time::UNIX_EPOCH;
use switchyard_certs::{AgentKey, bootstrap_client_config, peer_identity};
use switchyard_common::proto::{Enroll, ErrorCode, Message, close_code};
use tracing::info;

pub(crate) struct JoinRequest {
    pub(crate) hub: String,
    pub(crate) token: String,
    pub(crate) ca_sha256: String,
}

/// The bootstrap token from `--token` / `SWITCHYARD_JOIN_TOKEN` or from
/// `--token-file` (clap refuses both at once).
pub(crate) fn bootstrap_token(
    token: Option<String>,
    token_file: Option<&std::path::Path>,
) -> anyhow::Result<String> {
    let token = match (token, token_file) {
        (Some(token), _) => token,
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the bootstrap token from {}", file.display()))?,
        (None, None) => bail!(
            "no bootstrap token: pass --token-file FILE or set SWITCHYARD_JOIN_TOKEN \
             (the command `switchyard cluster add` printed)"
        ),
    };
    let token = token.trim();
    if token.is_empty() {
        bail!("the bootstrap token is empty");
    }
    Ok(token.to_owned())
}

/// How long `join` waits for the hub to answer the QUIC handshake.
const JOIN_DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Enroll and write the identity into `state`; returns the cluster name.
pub(crate) async fn join(request: JoinRequest, state: &StateDir) -> anyhow::Result<String> {
    state.ensure_not_enrolled()?;
    // Before the token is spent: a state dir that cannot be made private
    // would fail the enrollment after it.
    if state.root().exists() {
        state.make_private()?;
    }
    let (tls, probe) =
        bootstrap_client_config(&request.ca_sha256).context("invalid --ca-sha256")?;
    let (addr, server_name) = hub_link::resolve(&request.hub).await?;
    let endpoint = hub_link::client_endpoint(addr)?;
    let config = hub_link::quic_client_config(tls)?;
    // QUIC runs over UDP: a port with nothing listening does not refuse the
    // connection, it stays silent until the handshake gives up. Say what is
    // happening, and give up sooner than the 20 s idle timeout.
    info!(hub = %request.hub, %addr, "connecting to the hub (QUIC over UDP)");
    let dialed = tokio::time::timeout(
        JOIN_DIAL_TIMEOUT,
        hub_link::dial(&endpoint, config, addr, &server_name),
    )
    .await;
    let Ok(dialed) = dialed else {
        bail!(
            "no answer from the hub at {} ({addr}) within {}s: is `switchyard serve` running there, \
             and is its agent port (UDP, --quic-listen, default 7700) reachable from here? \
             The admin API's port (TCP) does not answer agents",
            request.hub,
            JOIN_DIAL_TIMEOUT.as_secs()
        );
    };
    let conn = match dialed {
        Ok(conn) => conn,
        Err(error) => {
            if probe.pin_matched() == Some(false) {
                bail!(
                    "the hub at {} presented CA fingerprint {}, not the --ca-sha256 {} of the join command; the token was NOT sent (wrong hub address, or someone in the middle)",
                    request.hub,
                    probe.presented_ca_fingerprints().join(", "),
                    request.ca_sha256
                );
            }
            return Err(anyhow!(error))
                .with_context(|| format!("cannot reach the hub at {}", request.hub));
        }
    };
    info!(hub = %request.hub, "hub's CA fingerprint verified; enrolling");

    let key = AgentKey::generate().context("generating the agent key")?;
    let csr_pem = key
        .csr_pem("switchyard-agent")
        .context("creating the certificate request")?;
    let answer = hub_link::request(
        &conn,
        &Message::Enroll(Enroll {
            token: request.token.clone(),
            csr_pem,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        }),
    )
    .await;
    conn.close(close_code::NORMAL.into(), b"enrolled");
    let enrolled = match answer {
        Ok(Message::Enrolled(enrolled)) => enrolled,
        Ok(other) => bail!("the hub answered {:?} to an enrollment", other.kind()),
        Err(LinkError::Refused(refusal)) => {
            let hint = match refusal.code {
                ErrorCode::TokenUsed | ErrorCode::TokenExpired | ErrorCode::TokenUnknown => {
                    "; ask the operator for a new join command (`switchyard cluster token NAME`)"
                }
                _ => "",
            };
            bail!("enrollment refused by the hub: {}{hint}", refusal.message);
        }
        Err(error) => return Err(anyhow!(error)).context("enrollment failed"),
    };

    // The certificate must be for our key, from the pinned CA, for the cluster the hub names.
    let cert_der = rustls_pemfile_first_cert(&enrolled.cert_pem)?;
    let peer = peer_identity(&cert_der).context("the hub sent an unreadable certificate")?;
    if peer.cluster != enrolled.cluster {
        bail!(
            "the hub's certificate names cluster {}, but it said {}",
            peer.cluster,
            enrolled.cluster
        );
    }
    let ca_der = rustls_pemfile_first_cert(&enrolled.ca_pem)?;
    let ca_fingerprint = switchyard_certs::fingerprint(&ca_der);
    if !ca_fingerprint.eq_ignore_ascii_case(&normalize_fingerprint(&request.ca_sha256)) {
        bail!("the hub sent a CA ({ca_fingerprint}) other than the pinned one");
    }
    // Building the mTLS config proves the certificate matches our key.
    switchyard_certs::agent_client_config(&enrolled.ca_pem, &enrolled.cert_pem, &key)
        .context("the hub's certificate does not fit the agent's key")?;

    let not_after = peer
        .not_after
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    state.save_new(&Identity {
        enrollment: Enrollment {
            hub: request.hub.clone(),
            cluster: enrolled.cluster.to_string(),
            ca_sha256: ca_fingerprint,
            cert_received_at: unix_now(),
            cert_not_after: not_after,
        },
        key,
        cert_pem: enrolled.cert_pem,
        ca_pem: enrolled.ca_pem,
    })?;
    endpoint.wait_idle().await;
    Ok(enrolled.cluster.to_string())
}

fn normalize_fingerprint(text: &str) -> String {
    text.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_lowercase()
}

/// DER of the first certificate in a PEM text.
pub(crate) fn rustls_pemfile_first_cert(pem: &str) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| anyhow!("no certificate in PEM"))?
        .context("malformed certificate PEM")?;
    Ok(cert.to_vec())
}

#[cfg(test)]
mod tests {
    use super::bootstrap_token;

    #[test]
    fn the_token_comes_from_the_flag_the_variable_or_a_file() {
        assert_eq!(
            bootstrap_token(Some("syb_1".into()), None).unwrap(),
            "syb_1"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "syb_2\n").unwrap();
        assert_eq!(bootstrap_token(None, Some(&file)).unwrap(), "syb_2");

        std::fs::write(&file, " \n").unwrap();
        let empty = bootstrap_token(None, Some(&file)).unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty:#}");
        let missing = bootstrap_token(None, Some(&dir.path().join("absent"))).unwrap_err();
        assert!(
            format!("{missing:#}").contains("reading the bootstrap token"),
            "{missing:#}"
        );
        let none = bootstrap_token(None, None).unwrap_err();
        assert!(none.to_string().contains("--token-file"), "{none:#}");
    }
}
