//! The object store: writes with server-side metadata, field ownership and the event log.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::discovery::{ResourceType, crd_established};
use super::error::{ApiError, qualified};
use super::fields::{
    FieldSet, changed_paths, dotted, from_fields_v1, get_path, leaf_paths, merge_apply, overlaps,
    remove_path, to_fields_v1, tracked,
};
use super::selector::{FieldSelector, LabelSelector};

/// Where an object lives; `namespace` is empty for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub(crate) fn new(t: &ResourceType, ns: &str, name: &str) -> Self {
        Key {
            group: t.group.clone(),
            plural: t.plural.clone(),
            namespace: if t.namespaced { ns } else { "" }.to_string(),
            name: name.to_string(),
        }
    }
}

/// One entry of the event log that watches replay and follow.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: &'static str,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Value,
}

/// How a write is attributed and whether it is kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub force: bool,
    /// Writes through `/status`: only `.status` changes.
    pub status_only: bool,
}

/// The result of a delete: gone now, or waiting for finalizers.
pub(crate) enum Deleted {
    Gone(Value),
    Pending(Value),
}

/// One `managedFields` entry, decoded.
#[derive(Debug, Clone)]
struct Owner {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    fields: FieldSet,
}

pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<Event>,
    compacted: u64,
    pub events: broadcast::Sender<Event>,
    uids: u64,
}

pub(crate) fn now() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default()
}

fn meta<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("just made an object");
    let m = map.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("just made an object")
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_view(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    v
}

/// The object as compared for no-op detection: no resourceVersion, no ownership times.
fn normalized(obj: &Value) -> Value {
    let mut v = obj.clone();
    let m = meta_mut(&mut v);
    m.remove("resourceVersion");
    if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
        for e in entries {
            if let Some(e) = e.as_object_mut() {
                e.remove("time");
            }
        }
    }
    v
}

fn owners(obj: &Value) -> Vec<Owner> {
    let entries = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
    entries
        .iter()
        .map(|e| Owner {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            time: s(e, "time"),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn set_owners(obj: &mut Value, owners: Vec<Owner>) {
    let entries: Vec<Value> = owners
        .into_iter()
        .filter(|o| !o.fields.is_empty())
        .map(|o| {
            json!({
                "manager": o.manager, "operation": o.operation, "apiVersion": o.api_version,
                "time": o.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&o.fields),
            })
        })
        .collect();
    let m = meta_mut(obj);
    if entries.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), Value::Array(entries));
    }
}

/// Gives `manager` (with `operation`) the `fields`, taking them from every other owner.
fn take_ownership(
    owners: &mut Vec<Owner>,
    manager: &str,
    operation: &str,
    api_version: &str,
    fields: &FieldSet,
) {
    if fields.is_empty() {
        return;
    }
    for o in owners.iter_mut() {
        if o.manager != manager || o.operation != operation {
            o.fields.retain(|q| !fields.iter().any(|p| overlaps(p, q)));
        }
    }
    match owners
        .iter_mut()
        .find(|o| o.manager == manager && o.operation == operation)
    {
        Some(o) => {
            o.fields.extend(fields.iter().cloned());
            o.time = now();
            o.api_version = api_version.to_string();
        }
        None => owners.push(Owner {
            manager: manager.to_string(),
            operation: operation.to_string(),
            api_version: api_version.to_string(),
            time: now(),
            fields: fields.clone(),
        }),
    }
}

fn valid_name(name: &str, label_only: bool) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if label_only {
        label(name)
    } else {
        name.len() <= 253 && name.split('.').all(label)
    }
}

fn precondition_rv(body: &Value, old: &Value, key: &Key) -> Result<(), ApiError> {
    match meta(body, "resourceVersion") {
        Some(rv) if !rv.is_empty() && Some(rv) != meta(old, "resourceVersion") => Err(
            ApiError::conflict_modified(&key.group, &key.plural, &key.name),
        ),
        _ => Ok(()),
    }
}

impl Store {
    pub(crate) fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut store = Store {
            objects: BTreeMap::new(),
            rv: 1,
            history: Vec::new(),
            compacted: 0,
            events,
            uids: 0,
        };
        let ns_type = super::discovery::builtins()
            .into_iter()
            .find(|t| t.plural == "namespaces")
            .expect("namespaces is a builtin");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"metadata": {"name": ns}});
            let opts = WriteOpts {
                manager: "kube-apiserver".into(),
                ..WriteOpts::default()
            };
            // Seeding fixed, valid names cannot fail.
            let _ = store.create(&ns_type, "", obj, &opts);
        }
        store
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Forgets the event log, so watches from older versions get `410 Expired`.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    pub(crate) fn history_since(&self, rv: u64) -> Vec<Event> {
        self.history.iter().filter(|e| e.rv > rv).cloned().collect()
    }

    pub(crate) fn namespace_exists(&self, ns: &str) -> bool {
        self.objects.contains_key(&Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.into(),
        })
    }

    /// All stored objects of one group/resource (used for CRD-derived discovery).
    pub(crate) fn all(&self, group: &str, plural: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == group && k.plural == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn get(&self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Key::new(t, ns, name))
            .map(|o| present(t, o))
            .ok_or_else(|| ApiError::not_found(&t.group, &t.plural, name))
    }

    pub(crate) fn list(
        &self,
        t: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == t.group && k.plural == t.plural)
            .filter(|(k, _)| ns.is_none_or(|ns| k.namespace == ns))
            .filter(|(_, o)| labels.matches(o) && fields.matches(o))
            .map(|(_, o)| present(t, o))
            .collect()
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("fa4e0000-0000-4000-8000-{:012x}", self.uids)
    }

    /// Stores (or removes) an object under a fresh resourceVersion and logs the event.
    fn commit(&mut self, key: Key, obj: Option<Value>, kind: &'static str, old: &Value) -> Value {
        self.rv += 1;
        let mut out = obj.unwrap_or_else(|| old.clone());
        meta_mut(&mut out).insert("resourceVersion".into(), json!(self.rv.to_string()));
        if kind == "DELETED" {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key.clone(), out.clone());
        }
        let event = Event {
            rv: self.rv,
            kind,
            group: key.group,
            plural: key.plural,
            namespace: key.namespace,
            object: out.clone(),
        };
        self.history.push(event.clone());
        // Nobody watching is fine.
        let _ = self.events.send(event);
        out
    }

    /// Checks a request body against the URL: type, name and namespace must agree.
    fn check_body(
        t: &ResourceType,
        ns: &str,
        name: Option<&str>,
        body: &Value,
        require_type: bool,
    ) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request was in an unknown format".into(),
            ));
        }
        let api_version = body["apiVersion"].as_str();
        let kind = body["kind"].as_str();
        if require_type && (api_version.is_none() || kind.is_none()) {
            return Err(ApiError::BadRequest(format!(
                "invalid object type: {}, Kind={}",
                api_version.unwrap_or_default(),
                kind.unwrap_or_default()
            )));
        }
        let group = api_version.map(|av| av.rsplit_once('/').map_or("", |(g, _)| g));
        if group.is_some_and(|g| g != t.group) || kind.is_some_and(|k| k != t.kind) {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                api_version.unwrap_or_default(),
                t.api_version()
            )));
        }
        if let (Some(url), Some(body_name)) = (name, meta(body, "name"))
            && url != body_name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url})"
            )));
        }
        if let Some(body_ns) = meta(body, "namespace")
            && t.namespaced
            && body_ns != ns
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_namespace(&self, t: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if t.namespaced && !self.namespace_exists(ns) {
            return Err(ApiError::not_found("", "namespaces", ns));
        }
        Ok(())
    }

    /// Server-side finishing of every write: metadata, generation, validation, no-op
    /// detection, finalizer completion, then commit (unless dry run).
    fn finish(
        &mut self,
        t: &ResourceType,
        key: Key,
        old: Option<&Value>,
        mut new: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let label_only = t.plural == "namespaces";
        if !valid_name(&key.name, label_only) {
            return Err(ApiError::invalid(
                &t.group,
                &t.kind,
                &key.name,
                &format!(
                    "metadata.name: Invalid value: \"{}\": a lowercase RFC 1123 {} must consist \
                     of lower case alphanumeric characters, '-' or '.', and must start and end \
                     with an alphanumeric character",
                    key.name,
                    if label_only { "label" } else { "subdomain" }
                ),
            ));
        }
        if t.plural == "customresourcedefinitions" {
            validate_crd(&key.name, &new)?;
        }
        if let Some(map) = new.as_object_mut() {
            map.insert("apiVersion".into(), json!(t.api_version()));
            map.insert("kind".into(), json!(t.kind));
        }
        // Ownership only covers fields that still exist.
        let view = tracked(&new);
        let mut os = owners(&new);
        for o in &mut os {
            o.fields.retain(|p| get_path(&view, p).is_some());
        }
        set_owners(&mut new, os);
        let m = meta_mut(&mut new);
        m.insert("name".into(), json!(key.name));
        if t.namespaced {
            m.insert("namespace".into(), json!(key.namespace));
        } else {
            m.remove("namespace");
        }
        for k in ["selfLink", "deletionGracePeriodSeconds"] {
            m.remove(k);
        }
        match old {
            Some(old) => {
                for k in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "generation",
                ] {
                    match old["metadata"].get(k) {
                        Some(v) => m.insert(k.into(), v.clone()),
                        None => m.remove(k),
                    };
                }
                if spec_view(old) != spec_view(&new) {
                    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                    meta_mut(&mut new).insert("generation".into(), json!(generation));
                }
                if normalized(old) == normalized(&new) {
                    return Ok(present(t, old));
                }
            }
            None => {
                m.remove("deletionTimestamp");
                m.insert("generation".into(), json!(1));
                m.insert("creationTimestamp".into(), json!(now()));
                let uid = self.next_uid();
                meta_mut(&mut new).insert("uid".into(), json!(uid));
            }
        }
        if dry_run {
            return Ok(present(t, &new));
        }
        let finalizers_done = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        let out = if meta(&new, "deletionTimestamp").is_some() && finalizers_done {
            let out = self.commit(key.clone(), Some(new), "DELETED", &Value::Null);
            self.cascade(&key, &out, false);
            out
        } else {
            let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
            self.commit(key, Some(new), kind, &Value::Null)
        };
        Ok(present(t, &out))
    }

    pub(crate) fn create(
        &mut self,
        t: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        Self::check_body(t, ns, None, &obj, false)?;
        let name = match (meta(&obj, "name"), meta(&obj, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(prefix)) if !prefix.is_empty() => {
                // Like the API server: five random characters from an
                // alphabet without vowels and look-alike digits.
                const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
                let suffix: String = (0..5)
                    .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
                    .collect();
                format!("{prefix}{suffix}")
            }
            _ => {
                return Err(ApiError::invalid(
                    &t.group,
                    &t.kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        let key = Key::new(t, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&t.group, &t.plural, &name));
        }
        self.check_namespace(t, ns)?;
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
        for k in ["managedFields", "resourceVersion", "uid"] {
            meta_mut(&mut obj).remove(k);
        }
        if t.plural == "namespaces" {
            namespace_defaults(&mut obj, &name);
        }
        let mut os = Vec::new();
        let fields = leaf_paths(&tracked(&obj));
        take_ownership(&mut os, &opts.manager, "Update", &t.api_version(), &fields);
        set_owners(&mut obj, os);
        self.finish(t, key, None, obj, opts.dry_run)
    }

    /// Server-side apply. Returns the object and whether it was created.
    pub(crate) fn apply(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        applied: Value,
        opts: &WriteOpts,
    ) -> Result<(Value, bool), ApiError> {
        Self::check_body(t, ns, Some(name), &applied, true)?;
        let key = Key::new(t, ns, name);
        let config = if opts.status_only {
            json!({"status": applied.get("status").cloned().unwrap_or(json!({}))})
        } else {
            tracked(&applied)
        };
        let new_fields = leaf_paths(&config);
        let api_version = t.api_version();
        let Some(old) = self.objects.get(&key).cloned() else {
            if opts.status_only {
                return Err(ApiError::not_found(&t.group, &t.plural, name));
            }
            self.check_namespace(t, ns)?;
            let mut obj = config;
            if t.plural == "namespaces" {
                namespace_defaults(&mut obj, name);
            }
            let mut os = Vec::new();
            take_ownership(&mut os, &opts.manager, "Apply", &api_version, &new_fields);
            set_owners(&mut obj, os);
            return Ok((self.finish(t, key, None, obj, opts.dry_run)?, true));
        };
        precondition_rv(&applied, &old, &key)?;
        if opts.status_only {
            let mut new = old.clone();
            merge_apply(&mut new, &config);
            return Ok((self.finish(t, key, Some(&old), new, opts.dry_run)?, false));
        }
        let live = tracked(&old);
        let mut os = owners(&old);
        let mut conflicts: Vec<(String, String)> = Vec::new();
        for p in &new_fields {
            for o in os.iter().filter(|o| o.manager != opts.manager) {
                let differs = o
                    .fields
                    .iter()
                    .filter(|q| overlaps(p, q))
                    .any(|q| get_path(&live, q) != get_path(&config, q));
                if differs {
                    conflicts.push((o.manager.clone(), dotted(p)));
                }
            }
        }
        if !conflicts.is_empty() && !opts.force {
            return Err(ApiError::ApplyConflict {
                api_version: api_version.clone(),
                conflicts,
            });
        }
        let mut new = old.clone();
        // Fields this manager applied before but no longer does are removed, unless
        // another manager also owns them.
        let previous = os
            .iter()
            .find(|o| o.manager == opts.manager && o.operation == "Apply")
            .map(|o| o.fields.clone())
            .unwrap_or_default();
        for q in previous.difference(&new_fields) {
            let shared = os
                .iter()
                .filter(|o| !(o.manager == opts.manager && o.operation == "Apply"))
                .any(|o| o.fields.iter().any(|r| overlaps(q, r)));
            if !shared {
                remove_path(&mut new, q);
                prune_empty_parents(&mut new, q);
            }
        }
        merge_apply(&mut new, &config);
        // The applier owns exactly what it applied; taking those fields from others is
        // what `force` allows.
        if let Some(o) = os
            .iter_mut()
            .find(|o| o.manager == opts.manager && o.operation == "Apply")
        {
            o.fields.clear();
        }
        take_ownership(&mut os, &opts.manager, "Apply", &api_version, &new_fields);
        set_owners(&mut new, os);
        Ok((self.finish(t, key, Some(&old), new, opts.dry_run)?, false))
    }

    /// Merge patch (or any other whole-object edit) attributed as an `Update`.
    pub(crate) fn patch(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        edit: impl FnOnce(&mut Value) -> Result<(), ApiError>,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        let key = Key::new(t, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.group, &t.plural, name))?;
        let mut candidate = old.clone();
        edit(&mut candidate)?;
        precondition_rv(&candidate, &old, &key)?;
        self.update_from(t, key, old, candidate, opts)
    }

    /// PUT: the body replaces the object (status kept unless through `/status`).
    pub(crate) fn replace(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        Self::check_body(t, ns, Some(name), &body, false)?;
        let key = Key::new(t, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.group, &t.plural, name))?;
        precondition_rv(&body, &old, &key)?;
        self.update_from(t, key, old, body, opts)
    }

    fn update_from(
        &mut self,
        t: &ResourceType,
        key: Key,
        old: Value,
        candidate: Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        let mut new = if opts.status_only {
            let mut new = old.clone();
            new["status"] = candidate.get("status").cloned().unwrap_or(Value::Null);
            new
        } else {
            let mut new = candidate;
            if let Some(m) = new.as_object_mut() {
                m.remove("status");
                if let Some(status) = old.get("status") {
                    m.insert("status".into(), status.clone());
                }
            }
            new
        };
        if let Some(m) = new.as_object_mut()
            && m.get("status").is_some_and(Value::is_null)
        {
            m.remove("status");
        }
        let mut os = owners(&old);
        let changed = changed_paths(&tracked(&old), &tracked(&new));
        take_ownership(&mut os, &opts.manager, "Update", &t.api_version(), &changed);
        set_owners(&mut new, os);
        self.finish(t, key, Some(&old), new, opts.dry_run)
    }

    pub(crate) fn delete(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Deleted, ApiError> {
        let key = Key::new(t, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.group, &t.plural, name))?;
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(want) = options["preconditions"][field].as_str()
                && Some(want) != meta(&old, field)
            {
                return Err(ApiError::Conflict(format!(
                    "Precondition failed: {label} in precondition: {want}, {label} in object meta: {}",
                    meta(&old, field).unwrap_or_default()
                )));
            }
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if dry_run {
            return Ok(Deleted::Gone(present(t, &old)));
        }
        if has_finalizers {
            if meta(&old, "deletionTimestamp").is_some() {
                return Ok(Deleted::Pending(present(t, &old)));
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), json!(now()));
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            let out = self.commit(key, Some(new), "MODIFIED", &Value::Null);
            return Ok(Deleted::Pending(present(t, &out)));
        }
        let out = self.commit(key.clone(), None, "DELETED", &old);
        let orphan = options["propagationPolicy"] == "Orphan";
        self.cascade(&key, &out, orphan);
        Ok(Deleted::Gone(present(t, &out)))
    }

    /// What the real server's controllers remove after a delete: namespace contents,
    /// a CRD's custom resources, and (unless orphaning) owner-referenced dependents.
    fn cascade(&mut self, key: &Key, deleted: &Value, orphan: bool) {
        let uid = meta(deleted, "uid").unwrap_or_default().to_string();
        let crd_target = (key.plural == "customresourcedefinitions")
            .then(|| {
                let spec = &deleted["spec"];
                Some((
                    spec["group"].as_str()?.to_string(),
                    spec["names"]["plural"].as_str()?.to_string(),
                ))
            })
            .flatten();
        let doomed: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(k, o)| {
                (key.plural == "namespaces" && key.group.is_empty() && k.namespace == key.name)
                    || crd_target
                        .as_ref()
                        .is_some_and(|(g, p)| k.group == *g && k.plural == *p)
                    || (!orphan
                        && !uid.is_empty()
                        && o.pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str())))
            })
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (k, o) in doomed {
            if self.objects.contains_key(&k) {
                let out = self.commit(k.clone(), None, "DELETED", &o);
                self.cascade(&k, &out, false);
            }
        }
    }

    /// Marks a CRD `NamesAccepted` and `Established`, as the apiextensions controller does.
    pub(crate) fn establish_crd(&mut self, crd_type: &ResourceType, name: &str) -> bool {
        let key = Key::new(crd_type, "", name);
        let Some(old) = self.objects.get(&key).cloned() else {
            return false;
        };
        if crd_established(&old) {
            return false;
        }
        let now = now();
        let cond = |ty: &str, reason: &str| json!({"type": ty, "status": "True", "reason": reason, "message": "", "lastTransitionTime": now});
        let mut new = old.clone();
        new["status"] = json!({
            "conditions": [cond("NamesAccepted", "NoConflicts"), cond("Established", "InitialNamesAccepted")],
            "acceptedNames": old["spec"]["names"],
            "storedVersions": old["spec"]["versions"].as_array().map(|vs| vs.iter()
                .filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()),
        });
        self.finish(crd_type, key, Some(&old), new, false).is_ok()
    }
}

/// Output form: the requested version's apiVersion and the kind always set.
pub(crate) fn present(t: &ResourceType, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!(t.api_version()));
        m.insert("kind".into(), json!(t.kind));
    }
    out
}

fn prune_empty_parents(obj: &mut Value, path: &[String]) {
    for len in (1..path.len()).rev() {
        let parent = &path[..len];
        if get_path(obj, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) {
            remove_path(obj, parent);
        } else {
            break;
        }
    }
}

fn namespace_defaults(obj: &mut Value, name: &str) {
    let m = meta_mut(obj);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    obj["spec"] = json!({"finalizers": ["kubernetes"]});
    obj["status"] = json!({"phase": "Active"});
}

fn validate_crd(name: &str, crd: &Value) -> Result<(), ApiError> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let invalid = |why: &str| {
        ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            why,
        )
    };
    if group.is_empty() || plural.is_empty() || spec["names"]["kind"].as_str().is_none() {
        return Err(invalid(
            "spec.group, spec.names.plural and spec.names.kind: Required value",
        ));
    }
    if name != qualified(group, plural) {
        return Err(invalid(&format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        )));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        return Err(invalid(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        ));
    }
    Ok(())
}
