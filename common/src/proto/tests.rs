//! Round trips, hand-picked hostile frames and property tests over random bytes.

use super::*;
use crate::ClusterName;
use proptest::prelude::*;

fn samples() -> Vec<Message> {
    let cluster = ClusterName::new("edge-1").unwrap();
    vec![
        Message::Hello(Hello {
            agent_version: "0.1.0".into(),
            kubernetes_version: Some("v1.30.2".into()),
            generation: 7,
        }),
        Message::Welcome(Welcome {
            cluster: cluster.clone(),
            hub_version: "0.1.0".into(),
            generation: 9,
            heartbeat_secs: 30,
        }),
        Message::Enroll(Enroll {
            token: "tok".into(),
            csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
            agent_version: "0.1.0".into(),
        }),
        Message::Enrolled(Enrolled {
            cluster,
            cert_pem: "c".into(),
            ca_pem: "ca".into(),
        }),
        Message::Notify(Notification::AssignmentChanged { generation: 3 }),
        Message::Notify(Notification::RenewCertificate),
        Message::GetAssignment(GetAssignment {
            known_generation: 2,
        }),
        Message::Assignment(Assignment {
            generation: 3,
            items: vec![AssignmentItem {
                app: "web".into(),
                commit: "abc".into(),
                digest: "sha256:00".into(),
                namespace: None,
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
        Message::GetBundle(GetBundle {
            digest: "sha256:00".into(),
        }),
        Message::Bundle(Bundle {
            digest: "sha256:00".into(),
            compressed: vec![1, 2, 3],
        }),
        Message::ReportStatus(StatusReport {
            agent_version: "0.1.0".into(),
            kubernetes_version: None,
            apps: vec![AppStatus {
                app: "web".into(),
                commit: "abc".into(),
                digest: "sha256:00".into(),
                sync: SyncStatus::Synced,
                health: Health::Progressing,
                resources: vec![ResourceStatus {
                    group: "apps".into(),
                    kind: "Deployment".into(),
                    namespace: Some("default".into()),
                    name: "web".into(),
                    sync: SyncStatus::Synced,
                    health: Health::Progressing,
                    message: Some("1/2 replicas".into()),
                }],
                last_error: None,
                observed_at: 1,
            }],
        }),
        Message::StatusAccepted(StatusAccepted {}),
        Message::RenewCertificate(RenewCertificate {
            csr_pem: "csr".into(),
        }),
        Message::CertificateRenewed(CertificateRenewed {
            cert_pem: "c".into(),
        }),
        Message::error(ErrorCode::TokenUsed, "bootstrap token already used"),
        Message::Notify(Notification::DiffRequested {
            request_id: 42,
            app: "web".into(),
        }),
        Message::ReportDiff(ReportDiff {
            request_id: 42,
            app: "web".into(),
            objects: vec![ObjectDiff {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("web".into()),
                name: "web".into(),
                change: Change::Update,
                diff: "--- live\n+++ desired\n-  replicas: 3\n+  replicas: 2\n".into(),
            }],
            truncated: true,
            error: Some("partly".into()),
        }),
    ]
}

#[test]
fn every_kind_round_trips() {
    let samples = samples();
    for kind in Kind::ALL {
        assert!(
            samples.iter().any(|m| m.kind() == kind),
            "no sample for {kind:?}"
        );
    }
    for message in samples {
        let frame = encode_frame(&message).unwrap();
        match decode_frame(&frame).unwrap() {
            Decoded::Message(decoded, used) => {
                assert_eq!(decoded, message);
                assert_eq!(used, frame.len());
            }
            Decoded::Incomplete(n) => panic!("complete frame reported incomplete by {n}"),
        }
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    for message in samples() {
        let frame = encode_frame(&message).unwrap();
        for cut in 0..frame.len() {
            match decode_frame(&frame[..cut]).unwrap() {
                Decoded::Incomplete(n) => assert!(n > 0 && cut + n <= frame.len()),
                Decoded::Message(..) => panic!("prefix of {cut} bytes decoded"),
            }
        }
    }
}

#[test]
fn other_version_is_named_in_the_error() {
    let mut frame = encode_frame(&samples()[0]).unwrap();
    // The previous version (v1: before `AssignmentItem::ownership`) and the next.
    for other in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
        frame[4..6].copy_from_slice(&other.to_be_bytes());
        let err = decode_frame(&frame).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnsupportedVersion { got, supported: PROTOCOL_VERSION } if got == other
        ));
        assert!(
            err.to_string().contains(&format!("version {other}")),
            "{err}"
        );
    }
}

#[test]
fn oversized_length_is_refused_from_the_header_alone() {
    for kind in Kind::ALL {
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&(kind.limit() + 1).to_be_bytes());
        header[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        header[6] = kind as u8;
        // Only the header is present: the refusal must not wait for the body.
        assert!(matches!(
            decode_frame(&header),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}

#[test]
fn unknown_kind_and_trailing_bytes_are_errors() {
    let mut frame = encode_frame(&samples()[0]).unwrap();
    frame[6] = 200;
    assert!(matches!(
        decode_frame(&frame),
        Err(DecodeError::UnknownKind(200))
    ));

    let mut frame = encode_frame(&Message::StatusAccepted(StatusAccepted {})).unwrap();
    frame.push(0);
    let len = (frame.len() - HEADER_LEN) as u32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        decode_frame(&frame),
        Err(DecodeError::TrailingBytes { extra: 1, .. })
    ));
}

#[test]
fn a_hostile_inner_length_is_an_error() {
    // A Hello whose first string claims to be 4 GiB long inside a 16-byte body.
    let mut body = vec![253u8];
    body.extend_from_slice(&(u64::from(u32::MAX)).to_be_bytes());
    body.extend_from_slice(&[b'a'; 7]);
    let mut frame = Vec::new();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    frame.push(Kind::Hello as u8);
    frame.extend_from_slice(&body);
    assert!(matches!(
        decode_frame(&frame),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn encoding_beyond_the_limit_is_refused() {
    let message = Message::Hello(Hello {
        agent_version: "x".repeat(Kind::Hello.limit() as usize),
        kubernetes_version: None,
        generation: 0,
    });
    assert!(matches!(
        encode_frame(&message),
        Err(EncodeError::TooLarge { .. })
    ));
}

#[test]
fn a_diff_report_has_its_own_limit_that_a_full_report_fits() {
    assert_eq!(Kind::ReportDiff.limit(), MIB);
    // The most diff text an agent sends, spread over the most objects,
    // still encodes.
    let per_object = DIFF_MAX_BYTES / DIFF_MAX_OBJECTS;
    let object = ObjectDiff {
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        namespace: Some("n".repeat(63)),
        name: "x".repeat(253),
        change: Change::Update,
        diff: "d".repeat(per_object),
    };
    let full = Message::ReportDiff(ReportDiff {
        request_id: u64::MAX,
        app: "a".repeat(63),
        objects: vec![object; DIFF_MAX_OBJECTS],
        truncated: true,
        error: None,
    });
    assert!(encode_frame(&full).is_ok());
    // One bigger than the kind allows is refused on both sides.
    let too_big = Message::ReportDiff(ReportDiff {
        request_id: 1,
        app: "web".into(),
        objects: Vec::new(),
        truncated: false,
        error: Some("e".repeat(MIB as usize)),
    });
    assert!(matches!(
        encode_frame(&too_big),
        Err(EncodeError::TooLarge {
            kind: Kind::ReportDiff,
            ..
        })
    ));
}

fn arb_header() -> impl Strategy<Value = Vec<u8>> {
    // Mostly plausible headers (right version, real kinds, small lengths), so
    // random bodies reach the bincode decoder instead of dying on the header.
    (
        0u32..4096,
        prop_oneof![9 => Just(PROTOCOL_VERSION), 1 => any::<u16>()],
        prop_oneof![9 => 1u8..=15, 1 => any::<u8>()],
    )
        .prop_map(|(len, version, kind)| {
            let mut h = Vec::with_capacity(HEADER_LEN);
            h.extend_from_slice(&len.to_be_bytes());
            h.extend_from_slice(&version.to_be_bytes());
            h.push(kind);
            h
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode_frame(&bytes);
    }

    #[test]
    fn random_bodies_never_panic(header in arb_header(), body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut frame = header;
        frame.extend_from_slice(&body);
        match decode_frame(&frame) {
            Ok(Decoded::Message(_, used)) => prop_assert!(used <= frame.len()),
            Ok(Decoded::Incomplete(n)) => prop_assert!(n > 0),
            Err(_) => {}
        }
    }

    #[test]
    fn mutated_valid_frames_never_panic(index in 0usize..17, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let messages = samples();
        let mut frame = encode_frame(&messages[index % messages.len()]).unwrap();
        for (at, byte) in flips {
            let at = at % frame.len();
            frame[at] = byte;
        }
        let _ = decode_frame(&frame);
    }
}
