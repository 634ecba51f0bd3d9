//! Writes the seed corpus of the wire-format fuzz targets (`fuzz/corpus/`): real frames and bundles as hub and agent send them.
//!
//! `cargo run -p switchyard-common --example fuzz_seeds -- fuzz/corpus`

use serde_json::json;
use std::path::{Path, PathBuf};
use switchyard_common::ClusterName;
use switchyard_common::bundle;
use switchyard_common::proto::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds CORPUS_DIR")?,
    );
    let objects = bundle::Bundle::new(vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "web"},
               "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "web"}, "data": {"k\"ey": "line\n\u{1}é"}}),
    ]);
    let encoded = objects.encode(3)?;
    write(&dir, "bundle", "three_objects.zst", &encoded.compressed)?;
    write(
        &dir,
        "bundle",
        "three_objects.json",
        &objects.canonical_bytes(),
    )?;
    write(&dir, "bundle", "empty.json", b"[]")?;

    let cluster = ClusterName::new("edge-1")?;
    let status = AppStatus {
        app: "web".into(),
        commit: "59b20b8d5c6ff8d09518454d4dd8b7a5c0e3d9b8".into(),
        digest: encoded.digest.clone(),
        sync: SyncStatus::Synced,
        health: Health::Progressing,
        resources: vec![ResourceStatus {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "web".into(),
            sync: SyncStatus::Synced,
            health: Health::Progressing,
            message: Some("1 of 2 replicas ready".into()),
        }],
        last_error: None,
        observed_at: 1_795_000_000,
    };
    let messages = [
        (
            "hello",
            Message::Hello(Hello {
                agent_version: "0.1.0".into(),
                kubernetes_version: Some("v1.33.1".into()),
                generation: 7,
            }),
        ),
        (
            "welcome",
            Message::Welcome(Welcome {
                cluster: cluster.clone(),
                hub_version: "0.1.0".into(),
                generation: 8,
                heartbeat_secs: 30,
            }),
        ),
        (
            "enroll",
            Message::Enroll(Enroll {
                token: "syb_0123456789abcdef0123456789abcdef0123456789abcdef".into(),
                csr_pem:
                    "-----BEGIN CERTIFICATE REQUEST-----\nMIHh\n-----END CERTIFICATE REQUEST-----\n"
                        .into(),
                agent_version: "0.1.0".into(),
            }),
        ),
        (
            "enrolled",
            Message::Enrolled(Enrolled {
                cluster: cluster.clone(),
                cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
                ca_pem: "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n".into(),
            }),
        ),
        (
            "notify",
            Message::Notify(Notification::AssignmentChanged { generation: 9 }),
        ),
        (
            "get_assignment",
            Message::GetAssignment(GetAssignment {
                known_generation: 8,
            }),
        ),
        (
            "assignment",
            Message::Assignment(Assignment {
                generation: 9,
                items: vec![AssignmentItem {
                    app: "web".into(),
                    commit: status.commit.clone(),
                    digest: encoded.digest.clone(),
                    namespace: Some("web".into()),
                    prune: true,
                    self_heal: false,
                    ownership: Default::default(),
                    ignore_differences: Vec::new(),
                    prune_confirmed: None,
                    create_namespace: true,
                    prune_last: false,
                    sync_requested: 0,
                }],
            }),
        ),
        (
            "get_bundle",
            Message::GetBundle(GetBundle {
                digest: encoded.digest.clone(),
            }),
        ),
        (
            "bundle",
            Message::Bundle(Bundle {
                digest: encoded.digest.clone(),
                compressed: encoded.compressed.clone(),
            }),
        ),
        (
            "report_status",
            Message::ReportStatus(StatusReport {
                agent_version: "0.1.0".into(),
                kubernetes_version: None,
                apps: vec![status],
            }),
        ),
        (
            "status_accepted",
            Message::StatusAccepted(StatusAccepted {}),
        ),
        (
            "renew",
            Message::RenewCertificate(RenewCertificate {
                csr_pem:
                    "-----BEGIN CERTIFICATE REQUEST-----\nMIHh\n-----END CERTIFICATE REQUEST-----\n"
                        .into(),
            }),
        ),
        (
            "renewed",
            Message::CertificateRenewed(CertificateRenewed {
                cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            }),
        ),
        (
            "error",
            Message::error(
                ErrorCode::Forbidden,
                "bundle sha256:00 is not assigned to cluster edge-1",
            ),
        ),
    ];
    let mut stream = Vec::new();
    for (name, message) in &messages {
        let frame = encode_frame(message)?;
        write(&dir, "proto_frame", name, &frame)?;
        // proto_message takes the kind byte, then the body.
        let mut body = vec![frame[6]];
        body.extend_from_slice(&frame[HEADER_LEN..]);
        write(&dir, "proto_message", name, &body)?;
        stream.extend_from_slice(&frame);
    }
    // Several frames back to back, the last one cut short.
    stream.truncate(stream.len() - 3);
    write(&dir, "proto_frame", "stream_cut", &stream)?;
    Ok(())
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}
