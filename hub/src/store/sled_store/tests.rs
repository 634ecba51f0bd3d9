//! The sled store's unit tests: tokens, removal, reopening, snapshots and history order.

use super::*;
use crate::store::ClusterSummary;
use std::collections::BTreeMap;

/// A deployed `sync` of `commit`, for tests of history.
pub(crate) fn revision(commit: &str) -> RevisionRecord {
    RevisionRecord {
        commit: commit.to_owned(),
        at: 1,
        event: "sync".into(),
        trigger: "admin".into(),
        author: String::new(),
        summary: String::new(),
        committed_at: 1,
        deployed: true,
    }
}

fn name(s: &str) -> ClusterName {
    ClusterName::new(s).unwrap()
}

fn store_with_pending(dir: &Path) -> SledStore {
    let store = SledStore::open(dir).unwrap();
    let cluster = ClusterRecord::new(name("edge-1"), BTreeMap::new(), 100);
    let token = TokenRecord {
        cluster: name("edge-1"),
        expires_at: 200,
        used_at: None,
    };
    store.create_cluster(&cluster, "hash-1", &token).unwrap();
    store
}

#[test]
fn a_token_is_spent_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_pending(dir.path());
    let cluster = store.redeem_token("hash-1", 150, "0a", 999).unwrap();
    assert_eq!(cluster.serials, vec!["0a".to_string()]);
    assert_eq!(cluster.enrolled_at, Some(150));
    assert!(matches!(
        store.redeem_token("hash-1", 151, "0b", 999),
        Err(Error::TokenUsed { used_at: 150 })
    ));
    assert!(matches!(
        store.redeem_token("nope", 151, "0b", 999),
        Err(Error::TokenUnknown)
    ));
    // The failed attempts changed nothing.
    assert_eq!(
        store.cluster(&name("edge-1")).unwrap().unwrap().serials,
        vec!["0a".to_string()]
    );
}

#[test]
fn re_enrollment_revokes_every_serial_the_cluster_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_pending(dir.path());
    store.redeem_token("hash-1", 150, "0a", 999).unwrap();
    store
        .update_cluster(&name("edge-1"), true, &mut |c| {
            c.serials.insert(0, "0b".into());
        })
        .unwrap();
    let token = TokenRecord {
        cluster: name("edge-1"),
        expires_at: 300,
        used_at: None,
    };
    store.create_token("hash-2", &token).unwrap();
    let cluster = store.redeem_token("hash-2", 160, "0c", 999).unwrap();
    assert_eq!(cluster.serials, ["0c"]);
    assert!(store.is_revoked("0a").unwrap());
    assert!(store.is_revoked("0b").unwrap());
    assert!(!store.is_revoked("0c").unwrap());
}

#[test]
fn an_expired_token_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_pending(dir.path());
    assert!(matches!(
        store.redeem_token("hash-1", 200, "0a", 999),
        Err(Error::TokenExpired { expired_at: 200 })
    ));
    let cluster = store.cluster(&name("edge-1")).unwrap().unwrap();
    assert!(cluster.serials.is_empty());
    assert_eq!(store.token("hash-1").unwrap().unwrap().used_at, None);
}

#[test]
fn removal_revokes_and_drops_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_pending(dir.path());
    store.redeem_token("hash-1", 150, "0a", 999).unwrap();
    assert!(!store.is_revoked("0a").unwrap());
    assert!(
        store
            .remove_cluster(&name("edge-1"), 160)
            .unwrap()
            .is_some()
    );
    assert!(store.is_revoked("0a").unwrap());
    assert!(store.token("hash-1").unwrap().is_none());
    assert!(store.cluster(&name("edge-1")).unwrap().is_none());
    assert!(
        store
            .remove_cluster(&name("edge-1"), 161)
            .unwrap()
            .is_none()
    );
}

#[test]
fn duplicate_cluster_is_refused_and_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = store_with_pending(dir.path());
        let again = ClusterRecord::new(name("edge-1"), BTreeMap::new(), 101);
        let token = TokenRecord {
            cluster: name("edge-1"),
            expires_at: 300,
            used_at: None,
        };
        assert!(matches!(
            store.create_cluster(&again, "hash-2", &token),
            Err(Error::ClusterExists(_))
        ));
        assert!(store.token("hash-2").unwrap().is_none());
        store
            .update_cluster(&name("edge-1"), true, &mut |c| {
                c.labels.insert("env".into(), "prod".into());
            })
            .unwrap();
    }
    let store = reopen(dir.path());
    let cluster = store.cluster(&name("edge-1")).unwrap().unwrap();
    assert_eq!(cluster.labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(store.clusters().unwrap().len(), 1);
}

/// A snapshot never sees a change half-applied across tables: a cluster
/// is either present with its certificate valid, or gone with it revoked.
#[test]
fn snapshots_taken_during_writes_are_consistent_across_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..150 {
                let cluster = name(&format!("edge-{i}"));
                let token = TokenRecord {
                    cluster: cluster.clone(),
                    expires_at: u64::MAX,
                    used_at: None,
                };
                let record = ClusterRecord::new(cluster.clone(), BTreeMap::new(), 1);
                store
                    .create_cluster(&record, &format!("hash-{i}"), &token)
                    .unwrap();
                store
                    .redeem_token(&format!("hash-{i}"), 2, &format!("serial-{i}"), 9)
                    .unwrap();
                store.remove_cluster(&cluster, 3).unwrap();
            }
        })
    };
    let mut snapshots = 0;
    while !writer.is_finished() && snapshots < 2_000 {
        let snapshot = store.snapshot().unwrap();
        let clusters: Vec<ClusterRecord> = snapshot.tables[CLUSTERS]
            .iter()
            .map(|(k, v)| decode(k, v).unwrap())
            .collect();
        let revoked: Vec<&[u8]> = snapshot.tables[REVOKED]
            .iter()
            .map(|(k, _)| k.as_slice())
            .collect();
        for cluster in &clusters {
            for serial in &cluster.serials {
                assert!(
                    !revoked.contains(&serial.as_bytes()),
                    "snapshot {snapshots} holds {} and also its revoked serial {serial}",
                    cluster.name
                );
            }
        }
        snapshots += 1;
    }
    writer.join().unwrap();
    assert!(snapshots > 0);
    assert_eq!(store.snapshot().unwrap().count(REVOKED), 150);
}

/// Open the store in `dir` again in this process. sled's background
/// threads let go of the directory's lock shortly after the previous
/// handle is dropped, not at once (a hub reopens only in a new process).
fn reopen(dir: &std::path::Path) -> SledStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledStore::open(dir) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("store still locked, retrying: {e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopening the store: {e}"),
        }
    }
}

/// History keeps the order of appends across reopenings, and concurrent
/// appends lose nothing.
#[test]
fn history_order_survives_reopening_and_concurrent_appends() {
    let dir = tempfile::tempdir().unwrap();
    for life in 0..3 {
        let store = reopen(dir.path());
        for i in 0..3 {
            store
                .append_revision("web", &revision(&format!("{life}-{i}")))
                .unwrap();
        }
    }
    let store = std::sync::Arc::new(reopen(dir.path()));
    let commits: Vec<String> = store
        .revisions("web")
        .unwrap()
        .into_iter()
        .map(|r| r.commit)
        .collect();
    let expected: Vec<String> = (0..3)
        .flat_map(|life| (0..3).map(move |i| format!("{life}-{i}")))
        .collect();
    assert_eq!(commits, expected);

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    store
                        .append_revision("api", &revision(&format!("{w}-{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(store.revisions("api").unwrap().len(), 100);
    assert_eq!(store.revisions("web").unwrap().len(), 9);
}

/// The summaries every store read of the fleet's lists would give.
fn summaries_from_records(store: &SledStore) -> Vec<ClusterSummary> {
    store
        .clusters()
        .unwrap()
        .iter()
        .map(ClusterSummary::from)
        .collect()
}

fn summaries(store: &SledStore) -> Vec<ClusterSummary> {
    store
        .cluster_summaries()
        .unwrap()
        .iter()
        .map(|s| (**s).clone())
        .collect()
}

/// The in-memory summaries follow every kind of write of the clusters
/// tree (create, update, enroll, remove, restore, reopen), and concurrent
/// updates of one cluster leave the summary of the last one.
#[test]
fn cluster_summaries_follow_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_pending(&dir.path().join("a"));
    let token = |cluster: &str| TokenRecord {
        cluster: name(cluster),
        expires_at: 200,
        used_at: None,
    };
    let two = ClusterRecord::new(
        name("edge-2"),
        BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
        100,
    );
    store
        .create_cluster(&two, "hash-2", &token("edge-2"))
        .unwrap();
    store.redeem_token("hash-1", 150, "0a", 999).unwrap();
    store
        .update_cluster(&name("edge-2"), false, &mut |c| {
            c.agent_version = Some("1.2.3".into());
            c.assignment = vec![switchyard_common::proto::AssignmentItem {
                app: "web".into(),
                commit: "c1".into(),
                digest: "sha256:1".into(),
                namespace: None,
                prune: false,
                self_heal: false,
                ownership: Default::default(),
                ignore_differences: Vec::new(),
                prune_confirmed: None,
                create_namespace: true,
                prune_last: false,
                sync_requested: 0,
            }];
        })
        .unwrap();
    assert_eq!(summaries(&store), summaries_from_records(&store));
    assert_eq!(summaries(&store)[0].enrolled_at, Some(150));
    assert_eq!(summaries(&store)[1].commit_of("web"), Some("c1"));

    // Concurrent updates: the index ends where the table ends.
    let store = std::sync::Arc::new(store);
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    store
                        .update_cluster(&name("edge-2"), false, &mut |c| {
                            c.last_seen = Some(w * 1_000 + i);
                            c.generation += 1;
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(summaries(&store), summaries_from_records(&store));
    assert_eq!(summaries(&store)[1].generation, 201);

    let snapshot = store.snapshot().unwrap();
    store.remove_cluster(&name("edge-1"), 300).unwrap();
    assert_eq!(summaries(&store), summaries_from_records(&store));
    assert_eq!(summaries(&store).len(), 1);

    let restored = SledStore::open(&dir.path().join("b")).unwrap();
    restored.restore(&snapshot).unwrap();
    assert_eq!(summaries(&restored).len(), 2);
    assert_eq!(summaries(&restored), summaries_from_records(&restored));
    drop(restored);
    let reopened = reopen(&dir.path().join("b"));
    assert_eq!(summaries(&reopened), summaries_from_records(&reopened));
    assert_eq!(
        summaries(&reopened)[1].agent_version.as_deref(),
        Some("1.2.3")
    );
}
