//! A consistent copy of every tree (writers are held off while it is
//! taken), and restoring one into an empty store.

use super::super::{Error, Result, Snapshot};
use super::records::backend;
use super::{SledStore, TABLES};
use std::collections::BTreeMap;
use std::sync::PoisonError;

impl SledStore {
    pub(super) fn snapshot_tables(&self) -> Result<Snapshot> {
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

    pub(super) fn restore_tables(&self, snapshot: &Snapshot) -> Result<()> {
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
        self.reindex()?;
        self.flush_all()
    }
}
