//! The embedded store: sled trees holding JSON records.
//!
//! This file holds the trees and the `Store` operations over them (each
//! with the transaction it needs); `records` the typed JSON tables and their
//! encoding, `sequence` the ordered keys of histories and the audit log,
//! `snapshot` consistent copies of every tree for backup and restore.

mod records;
mod sequence;
mod snapshot;
#[cfg(test)]
pub(crate) mod tests;

use super::cluster_index::{ClusterIndex, ClusterSummary};
use super::{
    ApiTokenRecord, AppRecord, AuditRecord, ClusterRecord, Error, GroupRecord, RepoRecord, Result,
    RevisionRecord, RevokedRecord, Snapshot, StatusRecord, Store, TokenRecord,
};
use records::{Table, backend, decode, encode, settle};
use sequence::{append_sequenced, revision_prefix};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
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
    /// The clusters' summaries (see `cluster_index`). Every write of the
    /// clusters tree holds it for writing from before the write until the
    /// summary is replaced, so two writes of one cluster cannot land in
    /// the index in the other order. Taken after `gate`, never before.
    index: RwLock<ClusterIndex>,
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new().path(path).open().map_err(backend)?;
        let cluster_table: Table<ClusterRecord> = Table::open(&db, CLUSTERS)?;
        let index = RwLock::new(index_of(&cluster_table)?);
        Ok(Self {
            clusters: db.open_tree(CLUSTERS).map_err(backend)?,
            tokens: db.open_tree(TOKENS).map_err(backend)?,
            revoked: db.open_tree(REVOKED).map_err(backend)?,
            cluster_table,
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
            index,
            db,
        })
    }

    /// Held by every write for its whole length; see `gate`.
    fn writing(&self) -> RwLockReadGuard<'_, ()> {
        // The guarded data is `()`: a panicking writer leaves nothing torn.
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cluster index, for a write of the clusters tree (see `index`).
    fn indexing(&self) -> RwLockWriteGuard<'_, ClusterIndex> {
        // A panic mid-update leaves at worst one stale summary; the next
        // write of that cluster replaces it.
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rebuild the cluster index from the tree (after a restore).
    fn reindex(&self) -> Result<()> {
        let rebuilt = index_of(&self.cluster_table)?;
        *self.indexing() = rebuilt;
        Ok(())
    }

    fn flush_all(&self) -> Result<()> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}

/// The index of every cluster record that decodes. A corrupt record is
/// left out (and logged) rather than keeping the hub from starting: reads
/// of that cluster still fail with the decode error, where they are
/// handled (an agent's authentication is retried, not revoked).
fn index_of(table: &Table<ClusterRecord>) -> Result<ClusterIndex> {
    let mut records = Vec::new();
    for entry in table.tree.iter() {
        let (key, value) = entry.map_err(backend)?;
        match decode::<ClusterRecord>(&key, &value) {
            Ok(record) => records.push(record),
            Err(error) => tracing::warn!(
                error = %switchyard_common::error_chain(&error),
                "a cluster record does not decode; it is left out of cluster lists"
            ),
        }
    }
    Ok(ClusterIndex::of(&records))
}

impl Store for SledStore {
    fn create_cluster(
        &self,
        cluster: &ClusterRecord,
        token_hash: &str,
        token: &TokenRecord,
    ) -> Result<()> {
        let _writing = self.writing();
        let mut index = self.indexing();
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
        index.put(cluster);
        drop(index);
        self.flush_all()
    }

    fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterRecord>> {
        self.cluster_table.get(name.as_str())
    }

    fn clusters(&self) -> Result<Vec<ClusterRecord>> {
        self.cluster_table.list()
    }

    fn cluster_summaries(&self) -> Result<Vec<Arc<ClusterSummary>>> {
        Ok(self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .list())
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
        let mut index = self.indexing();
        let updated = self.cluster_table.update(name.as_str(), change)?;
        if let Some(record) = &updated {
            index.put(record);
        }
        drop(index);
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
        let mut index = self.indexing();
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
        index.remove(name.as_str());
        drop(index);
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
        let mut index = self.indexing();
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
        index.put(&cluster);
        drop(index);
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
