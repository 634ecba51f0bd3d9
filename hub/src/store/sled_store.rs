//! The embedded store: sled trees holding JSON records.

use super::{
    ApiTokenRecord, AppRecord, AuditRecord, ClusterRecord, Error, GroupRecord, RepoRecord, Result,
    RevisionRecord, RevokedRecord, Snapshot, StatusRecord, Store, TokenRecord,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use switchyard_common::ClusterName;

const CLUSTERS: &str = "clusters";
const TOKENS: &str = "tokens";
const REVOKED: &str = "revoked";
const REPOS: &str = "repos";
const APPS: &str = "apps";
const GROUPS: &str = "groups";
const REVISIONS: &str = "revisions";
const BUNDLES: &str = "bundles";
const STATUS: &str = "status";
const API_TOKENS: &str = "api_tokens";
const API_TOKEN_HASHES: &str = "api_token_hashes";
const AUDIT: &str = "audit";

/// Every table, in the order a snapshot lists them.
const TABLES: [&str; 12] = [
    CLUSTERS,
    TOKENS,
    REVOKED,
    REPOS,
    APPS,
    GROUPS,
    REVISIONS,
    BUNDLES,
    STATUS,
    API_TOKENS,
    API_TOKEN_HASHES,
    AUDIT,
];

/// A sled tree of JSON records of one type, keyed by name.
struct Table<T> {
    tree: sled::Tree,
    _record: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    fn open(db: &sled::Db, name: &str) -> Result<Self> {
        Ok(Self {
            tree: db.open_tree(name).map_err(backend)?,
            _record: PhantomData,
        })
    }

    fn get(&self, key: &str) -> Result<Option<T>> {
        match self.tree.get(key.as_bytes()).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    fn list(&self) -> Result<Vec<T>> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                decode(&key, &value)
            })
            .collect()
    }

    /// Insert unless the key exists; `false` if it did.
    fn insert_new(&self, key: &str, value: &T) -> Result<bool> {
        let swapped = self
            .tree
            .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(encode(value)))
            .map_err(backend)?;
        Ok(swapped.is_ok())
    }

    /// Compare-and-swap loop: a concurrent removal wins and is never undone.
    fn update(&self, key: &str, change: &mut dyn FnMut(&mut T)) -> Result<Option<T>> {
        loop {
            let Some(old) = self.tree.get(key.as_bytes()).map_err(backend)? else {
                return Ok(None);
            };
            let mut record: T = decode(key.as_bytes(), &old)?;
            change(&mut record);
            let new = encode(&record);
            if self
                .tree
                .compare_and_swap(key.as_bytes(), Some(&old), Some(new))
                .map_err(backend)?
                .is_ok()
            {
                return Ok(Some(record));
            }
        }
    }

    fn remove(&self, key: &str) -> Result<Option<T>> {
        match self.tree.remove(key.as_bytes()).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }
}

/// sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    clusters: sled::Tree,
    tokens: sled::Tree,
    revoked: sled::Tree,
    cluster_table: Table<ClusterRecord>,
    repos: Table<RepoRecord>,
    apps: Table<AppRecord>,
    groups: Table<GroupRecord>,
    /// Key: app name, NUL, big-endian sequence number; so a prefix scan
    /// returns one app's history in order.
    revisions: sled::Tree,
    bundles: sled::Tree,
    /// Key: cluster, NUL, app.
    status: sled::Tree,
    /// Key: token name.
    api_tokens: sled::Tree,
    api_token_table: Table<ApiTokenRecord>,
    /// Key: hex SHA-256 of a token's secret; value: the token's name.
    api_token_hashes: sled::Tree,
    /// Key: big-endian unix seconds, then a big-endian sequence number, so
    /// entries sort by time and a range scan starts at any moment.
    audit: sled::Tree,
    /// Writers share it, a snapshot takes it alone: sled has no snapshot of
    /// its own, and a backup must not catch a change half-written across
    /// tables (a cluster removed but its certificates not yet revoked).
    gate: RwLock<()>,
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Backend(Box::new(e))
}

/// `name` and a NUL: the prefix of every key under one app or cluster.
fn revision_prefix(app: &str) -> Vec<u8> {
    let mut prefix = app.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records always serialize")
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

/// Turn a transaction's outcome into the store's error.
fn settle<T>(result: Result<T, TransactionError<Error>>) -> Result<T> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new().path(path).open().map_err(backend)?;
        Ok(Self {
            clusters: db.open_tree(CLUSTERS).map_err(backend)?,
            tokens: db.open_tree(TOKENS).map_err(backend)?,
            revoked: db.open_tree(REVOKED).map_err(backend)?,
            cluster_table: Table::open(&db, CLUSTERS)?,
            repos: Table::open(&db, REPOS)?,
            apps: Table::open(&db, APPS)?,
            groups: Table::open(&db, GROUPS)?,
            revisions: db.open_tree(REVISIONS).map_err(backend)?,
            bundles: db.open_tree(BUNDLES).map_err(backend)?,
            status: db.open_tree(STATUS).map_err(backend)?,
            api_tokens: db.open_tree(API_TOKENS).map_err(backend)?,
            api_token_table: Table::open(&db, API_TOKENS)?,
            api_token_hashes: db.open_tree(API_TOKEN_HASHES).map_err(backend)?,
            audit: db.open_tree(AUDIT).map_err(backend)?,
            gate: RwLock::new(()),
            db,
        })
    }

    /// Held by every write for its whole length; see `gate`.
    fn writing(&self) -> RwLockReadGuard<'_, ()> {
        // The guarded data is `()`: a panicking writer leaves nothing torn.
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn flush_all(&self) -> Result<()> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}

impl Store for SledStore {
    fn create_cluster(
        &self,
        cluster: &ClusterRecord,
        token_hash: &str,
        token: &TokenRecord,
    ) -> Result<()> {
        let _writing = self.writing();
        let result = (&self.clusters, &self.tokens).transaction(|(clusters, tokens)| {
            let key = cluster.name.as_str().as_bytes();
            if clusters.get(key)?.is_some() {
                return Err(ConflictableTransactionError::Abort(Error::ClusterExists(
                    cluster.name.clone(),
                )));
            }
            clusters.insert(key, encode(cluster))?;
            tokens.insert(token_hash.as_bytes(), encode(token))?;
            Ok(())
        });
        settle(result)?;
        self.flush_all()
    }

    fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterRecord>> {
        self.cluster_table.get(name.as_str())
    }

    fn clusters(&self) -> Result<Vec<ClusterRecord>> {
        self.cluster_table.list()
    }

    fn flush(&self) -> Result<()> {
        self.flush_all()
    }

    fn update_cluster(
        &self,
        name: &ClusterName,
        durable: bool,
        change: &mut dyn FnMut(&mut ClusterRecord),
    ) -> Result<Option<ClusterRecord>> {
        let _writing = self.writing();
        let updated = self.cluster_table.update(name.as_str(), change)?;
        if durable && updated.is_some() {
            self.flush_all()?;
        }
        Ok(updated)
    }

    fn remove_cluster(&self, name: &ClusterName, now: u64) -> Result<Option<ClusterRecord>> {
        let _writing = self.writing();
        // Tokens are few (one per pending enrollment), so a scan is fine.
        let token_keys: Vec<sled::IVec> = self
            .tokens
            .iter()
            .filter_map(|entry| {
                let (key, value) = entry.ok()?;
                let token: TokenRecord = serde_json::from_slice(&value).ok()?;
                (token.cluster == *name).then_some(key)
            })
            .collect();
        let result = (&self.clusters, &self.tokens, &self.revoked).transaction(
            |(clusters, tokens, revoked)| {
                let key = name.as_str().as_bytes();
                let Some(old) = clusters.remove(key)? else {
                    return Ok(None);
                };
                let record: ClusterRecord =
                    decode(key, &old).map_err(ConflictableTransactionError::Abort)?;
                let revocation = encode(&RevokedRecord {
                    cluster: name.clone(),
                    revoked_at: now,
                });
                for serial in &record.serials {
                    revoked.insert(serial.as_bytes(), revocation.clone())?;
                }
                for token_key in &token_keys {
                    tokens.remove(token_key)?;
                }
                Ok(Some(record))
            },
        );
        let removed = settle(result)?;
        self.flush_all()?;
        Ok(removed)
    }

    fn create_token(&self, token_hash: &str, token: &TokenRecord) -> Result<()> {
        let _writing = self.writing();
        let result = (&self.clusters, &self.tokens).transaction(|(clusters, tokens)| {
            if clusters.get(token.cluster.as_str().as_bytes())?.is_none() {
                return Err(ConflictableTransactionError::Abort(Error::ClusterNotFound(
                    token.cluster.clone(),
                )));
            }
            tokens.insert(token_hash.as_bytes(), encode(token))?;
            Ok(())
        });
        settle(result)?;
        self.flush_all()
    }

    fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let key = token_hash.as_bytes();
        match self.tokens.get(key).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }

    fn redeem_token(
        &self,
        token_hash: &str,
        now: u64,
        serial: &str,
        cert_not_after: u64,
    ) -> Result<ClusterRecord> {
        let _writing = self.writing();
        let result = (&self.clusters, &self.tokens, &self.revoked).transaction(
            |(clusters, tokens, revoked)| {
                let abort = ConflictableTransactionError::Abort;
                let key = token_hash.as_bytes();
                let Some(bytes) = tokens.get(key)? else {
                    return Err(abort(Error::TokenUnknown));
                };
                let mut token: TokenRecord = decode(key, &bytes).map_err(abort)?;
                if let Some(used_at) = token.used_at {
                    return Err(abort(Error::TokenUsed { used_at }));
                }
                if token.expires_at <= now {
                    return Err(abort(Error::TokenExpired {
                        expired_at: token.expires_at,
                    }));
                }
                let cluster_key = token.cluster.as_str().as_bytes();
                let Some(bytes) = clusters.get(cluster_key)? else {
                    return Err(abort(Error::TokenUnknown));
                };
                let mut cluster: ClusterRecord = decode(cluster_key, &bytes).map_err(abort)?;
                // Re-enrollment replaces the identity: whoever holds the old
                // certificates (a lost machine, a thief) must not keep them.
                let revocation = encode(&RevokedRecord {
                    cluster: token.cluster.clone(),
                    revoked_at: now,
                });
                for old in &cluster.serials {
                    revoked.insert(old.as_bytes(), revocation.clone())?;
                }
                token.used_at = Some(now);
                cluster.enrolled_at = Some(now);
                cluster.serials = vec![serial.to_owned()];
                cluster.cert_not_after = Some(cert_not_after);
                cluster.restored_from = None;
                tokens.insert(key, encode(&token))?;
                clusters.insert(cluster_key, encode(&cluster))?;
                Ok(cluster)
            },
        );
        let cluster = settle(result)?;
        self.flush_all()?;
        Ok(cluster)
    }

    fn is_revoked(&self, serial: &str) -> Result<bool> {
        self.revoked
            .contains_key(serial.as_bytes())
            .map_err(backend)
    }

    fn create_repo(&self, repo: &RepoRecord) -> Result<()> {
        let _writing = self.writing();
        if !self.repos.insert_new(&repo.name, repo)? {
            return Err(Error::RepoExists(repo.name.clone()));
        }
        self.flush_all()
    }

    fn repo(&self, name: &str) -> Result<Option<RepoRecord>> {
        self.repos.get(name)
    }

    fn repos(&self) -> Result<Vec<RepoRecord>> {
        self.repos.list()
    }

    fn update_repo(
        &self,
        name: &str,
        durable: bool,
        change: &mut dyn FnMut(&mut RepoRecord),
    ) -> Result<Option<RepoRecord>> {
        let _writing = self.writing();
        let updated = self.repos.update(name, change)?;
        if durable && updated.is_some() {
            self.flush_all()?;
        }
        Ok(updated)
    }

    fn remove_repo(&self, name: &str) -> Result<Option<RepoRecord>> {
        let _writing = self.writing();
        let removed = self.repos.remove(name)?;
        self.flush_all()?;
        Ok(removed)
    }

    fn create_app(&self, app: &AppRecord) -> Result<()> {
        let _writing = self.writing();
        if !self.apps.insert_new(&app.name, app)? {
            return Err(Error::AppExists(app.name.clone()));
        }
        self.flush_all()
    }

    fn app(&self, name: &str) -> Result<Option<AppRecord>> {
        self.apps.get(name)
    }

    fn apps(&self) -> Result<Vec<AppRecord>> {
        self.apps.list()
    }

    fn update_app(
        &self,
        name: &str,
        durable: bool,
        change: &mut dyn FnMut(&mut AppRecord),
    ) -> Result<Option<AppRecord>> {
        let _writing = self.writing();
        let updated = self.apps.update(name, change)?;
        if durable && updated.is_some() {
            self.flush_all()?;
        }
        Ok(updated)
    }

    fn remove_app(&self, name: &str) -> Result<Option<AppRecord>> {
        let _writing = self.writing();
        let removed = self.apps.remove(name)?;
        for entry in self.revisions.scan_prefix(revision_prefix(name)) {
            let (key, _) = entry.map_err(backend)?;
            self.revisions.remove(key).map_err(backend)?;
        }
        self.flush_all()?;
        Ok(removed)
    }

    fn create_group(&self, group: &GroupRecord) -> Result<()> {
        let _writing = self.writing();
        if !self.groups.insert_new(&group.name, group)? {
            return Err(Error::GroupExists(group.name.clone()));
        }
        self.flush_all()
    }

    fn group(&self, name: &str) -> Result<Option<GroupRecord>> {
        self.groups.get(name)
    }

    fn groups(&self) -> Result<Vec<GroupRecord>> {
        self.groups.list()
    }

    fn update_group(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut GroupRecord),
    ) -> Result<Option<GroupRecord>> {
        let _writing = self.writing();
        let updated = self.groups.update(name, change)?;
        if updated.is_some() {
            self.flush_all()?;
        }
        Ok(updated)
    }

    fn remove_group(&self, name: &str) -> Result<Option<GroupRecord>> {
        let _writing = self.writing();
        let removed = self.groups.remove(name)?;
        self.flush_all()?;
        Ok(removed)
    }

    fn append_revision(&self, app: &str, revision: &RevisionRecord) -> Result<()> {
        let _writing = self.writing();
        append_sequenced(&self.revisions, &revision_prefix(app), &encode(revision))?;
        self.flush_all()
    }

    fn revisions(&self, app: &str) -> Result<Vec<RevisionRecord>> {
        self.revisions
            .scan_prefix(revision_prefix(app))
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                decode(&key, &value)
            })
            .collect()
    }

    fn put_statuses(&self, cluster: &str, statuses: &[StatusRecord]) -> Result<()> {
        let _writing = self.writing();
        let prefix = revision_prefix(cluster);
        let mut batch = sled::Batch::default();
        for entry in self.status.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(backend)?;
            batch.remove(key);
        }
        for record in statuses {
            let mut key = prefix.clone();
            key.extend_from_slice(record.status.app.as_bytes());
            batch.insert(key, encode(record));
        }
        self.status.apply_batch(batch).map_err(backend)
    }

    fn statuses(&self) -> Result<Vec<StatusRecord>> {
        self.status
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                decode(&key, &value)
            })
            .collect()
    }

    fn put_bundle(&self, digest: &str, compressed: &[u8]) -> Result<()> {
        let _writing = self.writing();
        if self.has_bundle(digest)? {
            return Ok(());
        }
        self.bundles
            .insert(digest.as_bytes(), compressed)
            .map_err(backend)?;
        self.flush_all()
    }

    fn bundle(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .bundles
            .get(digest.as_bytes())
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn has_bundle(&self, digest: &str) -> Result<bool> {
        self.bundles
            .contains_key(digest.as_bytes())
            .map_err(backend)
    }

    fn create_api_token(&self, token: &ApiTokenRecord, now: u64) -> Result<()> {
        let _writing = self.writing();
        let result = (&self.api_tokens, &self.api_token_hashes).transaction(|(tokens, hashes)| {
            let abort = ConflictableTransactionError::Abort;
            let key = token.name.as_bytes();
            if let Some(bytes) = tokens.get(key)? {
                let old: ApiTokenRecord = decode(key, &bytes).map_err(abort)?;
                if old.is_active(now) {
                    return Err(abort(Error::ApiTokenExists(token.name.clone())));
                }
                hashes.remove(old.hash.as_bytes())?;
            }
            tokens.insert(key, encode(token))?;
            hashes.insert(token.hash.as_bytes(), key)?;
            Ok(())
        });
        settle(result)?;
        self.flush_all()
    }

    fn api_token(&self, name: &str) -> Result<Option<ApiTokenRecord>> {
        self.api_token_table.get(name)
    }

    fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRecord>> {
        let Some(name) = self
            .api_token_hashes
            .get(hash.as_bytes())
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let token = self.api_token(&String::from_utf8_lossy(&name))?;
        // The index and the record are written together, but check anyway:
        // a secret must never authenticate as a token it does not belong to.
        Ok(token.filter(|t| t.hash == hash))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        self.api_token_table.list()
    }

    fn revoke_api_token(&self, name: &str, now: u64) -> Result<Option<ApiTokenRecord>> {
        let _writing = self.writing();
        let revoked = self.api_token_table.update(name, &mut |t| {
            t.revoked_at.get_or_insert(now);
        })?;
        if revoked.is_some() {
            self.flush_all()?;
        }
        Ok(revoked)
    }

    fn touch_api_token(&self, name: &str, now: u64) -> Result<()> {
        let _writing = self.writing();
        self.api_token_table
            .update(name, &mut |t| t.last_used = Some(now))?;
        Ok(())
    }

    fn append_audit(&self, entry: &AuditRecord) -> Result<()> {
        let _writing = self.writing();
        append_sequenced(&self.audit, &entry.at.to_be_bytes(), &encode(entry))?;
        self.flush_all()
    }

    fn audit(&self, since: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let mut newest_first = self
            .audit
            .range(since.to_be_bytes().to_vec()..)
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                decode(&key, &value)
            })
            .collect::<Result<Vec<AuditRecord>>>()?;
        newest_first.reverse();
        Ok(newest_first)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_tables()
    }

    fn restore(&self, snapshot: &Snapshot) -> Result<()> {
        self.restore_tables(snapshot)
    }
}

impl SledStore {
    fn snapshot_tables(&self) -> Result<Snapshot> {
        let _alone = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let mut tables = BTreeMap::new();
        for name in TABLES {
            let tree = self.db.open_tree(name).map_err(backend)?;
            let rows = tree
                .iter()
                .map(|entry| {
                    let (key, value) = entry.map_err(backend)?;
                    Ok((key.to_vec(), value.to_vec()))
                })
                .collect::<Result<Vec<_>>>()?;
            tables.insert(name.to_owned(), rows);
        }
        Ok(Snapshot { tables })
    }

    fn restore_tables(&self, snapshot: &Snapshot) -> Result<()> {
        let _alone = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(unknown) = snapshot
            .tables
            .keys()
            .find(|t| !TABLES.contains(&t.as_str()))
        {
            return Err(Error::Backend(
                format!("the snapshot has a table this hub does not know: {unknown}").into(),
            ));
        }
        for name in TABLES {
            let tree = self.db.open_tree(name).map_err(backend)?;
            if !tree.is_empty() {
                return Err(Error::NotEmpty(name.to_owned()));
            }
        }
        for (name, rows) in &snapshot.tables {
            let tree = self.db.open_tree(name).map_err(backend)?;
            let mut batch = sled::Batch::default();
            for (key, value) in rows {
                batch.insert(key.as_slice(), value.as_slice());
            }
            tree.apply_batch(batch).map_err(backend)?;
        }
        self.flush_all()
    }
}

/// Insert `value` under `prefix` followed by the next sequence number
/// after the last key with that prefix, so entries keep their order.
///
/// The number continues from what is stored rather than from sled's
/// `generate_id`, whose counter is persisted separately from the entries:
/// order then survives kills, restarts and restores by construction.
/// Concurrent appends under one prefix race on the same number; the loser
/// of the compare-and-swap takes the next one.
fn append_sequenced(tree: &sled::Tree, prefix: &[u8], value: &[u8]) -> Result<()> {
    loop {
        let next = match tree.scan_prefix(prefix).next_back() {
            None => 0,
            Some(entry) => {
                let (key, _) = entry.map_err(backend)?;
                let last = key
                    .len()
                    .checked_sub(8)
                    .filter(|&start| start == prefix.len())
                    .and_then(|start| <[u8; 8]>::try_from(&key[start..]).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| {
                        Error::Backend(
                            format!(
                                "key {:?} does not end in a sequence number",
                                String::from_utf8_lossy(&key)
                            )
                            .into(),
                        )
                    })?;
                last.checked_add(1).ok_or_else(|| {
                    Error::Backend("sequence numbers exhausted under one key".into())
                })?
            }
        };
        let mut key = prefix.to_vec();
        key.extend_from_slice(&next.to_be_bytes());
        let swapped = tree
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(backend)?;
        if swapped.is_ok() {
            return Ok(());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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
}
