//! HTTP routing: discovery documents, resource verbs, watch streams and fault injection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::discovery::{self, ResourceType};
use super::error::{ApiError, qualified};
use super::fields::merge_patch;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Deleted, Event, WriteOpts, present};
use super::{RecordedRequest, Shared};

type Params = HashMap<String, String>;

/// What a resource path names.
struct Target {
    t: ResourceType,
    /// `None` for cluster-scoped paths (and all-namespace lists).
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

impl Target {
    fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or("")
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The single entry point: every request is recorded, then maybe failed on purpose,
/// then routed by hand (Kubernetes paths do not fit a static route table well).
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let accept = header_str(&headers, header::ACCEPT).unwrap_or_default();
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        content_type: content_type.clone(),
        at: shared.started.elapsed(),
    };
    let (injected, latency, limit, retry_after) = shared.with(|s| {
        if recorded.is_write()
            && let Some(i) = s
                .created_before_write
                .iter()
                .position(|(path, _)| *path == recorded.path)
        {
            let (_, obj) = s.created_before_write.remove(i);
            if let Err(e) = s.create_out_of_band(obj) {
                tracing::warn!(path = %recorded.path, error = ?e, "fake kube: cannot create the racing object");
            }
        }
        s.requests.push(recorded.clone());
        let injected = if s.fail_next.is_empty() {
            None
        } else {
            Some(s.fail_next.remove(0))
        };
        (injected, s.latency, s.max_in_flight, s.retry_after_secs)
    });
    tracing::debug!(%method, %uri, "fake kube request");
    if let Some(code) = injected {
        return ApiError::Injected {
            code,
            message: format!("injected failure ({code})"),
        }
        .into_response();
    }
    let Some(_in_flight) = shared.load.admit(limit) else {
        shared.with(|s| s.throttled.push(recorded));
        return ApiError::TooManyRequests {
            retry_after_secs: retry_after,
        }
        .into_response();
    };
    // Spent holding no lock: requests overlap here as on a real server, and
    // the store lock is only taken for the state change itself.
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let params: Params = match Query::try_from_uri(&uri) {
        Ok(Query(q)) => q,
        Err(e) => return ApiError::BadRequest(e.to_string()).into_response(),
    };
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let req = Req {
        method,
        params,
        accept,
        content_type: content_type.unwrap_or_default(),
        body,
    };
    match route(&shared, &segs, &req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

struct Req {
    method: Method,
    params: Params,
    accept: String,
    content_type: String,
    body: Bytes,
}

async fn route(shared: &Arc<Shared>, segs: &[&str], req: &Req) -> Result<Response, ApiError> {
    let types = shared.with(|s| s.types());
    let get_only = |doc: Option<Value>| -> Result<Response, ApiError> {
        if req.method != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        doc.map(|d| json_response(StatusCode::OK, &d))
            .ok_or(ApiError::PageNotFound)
    };
    let aggregated = |core: bool| {
        let doc = discovery::aggregated_doc(&types, core);
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )],
            doc.to_string(),
        )
            .into_response()
    };
    let discovery_fault = match segs {
        ["api", v] => shared.with(|s| s.take_discovery_fault("", v)),
        ["apis", g, v] => shared.with(|s| s.take_discovery_fault(g, v)),
        _ => None,
    };
    if let Some(code) = discovery_fault {
        return Err(ApiError::Injected {
            code,
            message: format!("injected discovery failure ({code})"),
        });
    }
    match segs {
        ["version"] => get_only(Some(discovery::version_doc())),
        ["api"] if discovery::wants_aggregated(&req.accept) => Ok(aggregated(true)),
        ["api"] => get_only(Some(discovery::api_versions_doc())),
        ["apis"] if discovery::wants_aggregated(&req.accept) => Ok(aggregated(false)),
        ["apis"] => get_only(Some(discovery::api_group_list_doc(&types))),
        ["api", v] => get_only(discovery::resource_list_doc(&types, "", v)),
        ["apis", g] => get_only(discovery::api_group_doc(&types, g)),
        ["apis", g, v] => get_only(discovery::resource_list_doc(&types, g, v)),
        ["api", v, rest @ ..] => resource(shared, target(&types, "", v, rest)?, req).await,
        ["apis", g, v, rest @ ..] => resource(shared, target(&types, g, v, rest)?, req).await,
        _ => Err(ApiError::PageNotFound),
    }
}

fn target(
    types: &[ResourceType],
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    let served = types
        .iter()
        .filter(|t| t.group == group && t.version == version);
    if served.clone().next().is_none() {
        return Err(ApiError::PageNotFound);
    }
    let find = |plural: &str| {
        served
            .clone()
            .find(|t| t.plural == plural)
            .cloned()
            .ok_or(ApiError::NoResource)
    };
    let owned = |s: &str| Some(s.to_string());
    let target = match rest {
        // `namespaces/{name}/status` is the namespace's own subresource.
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => Target {
            t: find("namespaces")?,
            ns: None,
            name: owned(ns),
            sub: owned(sub),
        },
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => {
            let t = find(plural)?;
            if !t.namespaced {
                return Err(ApiError::NoResource);
            }
            Target {
                t,
                ns: owned(ns),
                name: tail.first().and_then(|s| owned(s)),
                sub: tail.get(1).and_then(|s| owned(s)),
            }
        }
        [plural, tail @ ..] if tail.len() <= 2 => {
            let t = find(plural)?;
            if t.namespaced && !tail.is_empty() {
                return Err(ApiError::NoResource);
            }
            Target {
                t,
                ns: None,
                name: tail.first().and_then(|s| owned(s)),
                sub: tail.get(1).and_then(|s| owned(s)),
            }
        }
        _ => return Err(ApiError::NoResource),
    };
    if target.sub.as_deref().is_some_and(|s| s != "status") {
        return Err(ApiError::NoResource);
    }
    Ok(target)
}

fn verb(method: &Method, has_name: bool, watch: bool, content_type: &str) -> &'static str {
    match (method.as_str(), has_name) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) if content_type.starts_with("application/apply-patch") => "patch",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn forbidden_error(tg: &Target, verb: &str) -> ApiError {
    let t = &tg.t;
    let what = match &tg.name {
        Some(n) => format!("{} \"{n}\"", qualified(&t.group, &t.plural)),
        None => qualified(&t.group, &t.plural),
    };
    let scope = match &tg.ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    ApiError::Forbidden(format!(
        "{what} is forbidden: User \"system:anonymous\" cannot {verb} resource \"{}\" in API \
         group \"{}\" {scope}",
        t.plural, t.group
    ))
}

fn flag(params: &Params, key: &str) -> bool {
    params
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.eq_ignore_ascii_case("all"))
}

fn parse_body(body: &Bytes, yaml_ok: bool) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) if !yaml_ok => Err(ApiError::BadRequest(format!(
            "the body of the request could not be decoded: {e}"
        ))),
        Err(_) => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))
        }
    }
}

async fn resource(shared: &Arc<Shared>, tg: Target, req: &Req) -> Result<Response, ApiError> {
    let p = &req.params;
    let watch = flag(p, "watch");
    let verb = verb(&req.method, tg.name.is_some(), watch, &req.content_type);
    if verb == "unknown" || (tg.name.is_none() && matches!(verb, "update" | "patch")) {
        return Err(ApiError::MethodNotAllowed);
    }
    if tg.name.is_some() && req.method == Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    if tg.sub.is_some() && !matches!(verb, "get" | "update" | "patch") {
        return Err(ApiError::MethodNotAllowed);
    }
    shared.with(|s| {
        let denied = s.forbidden.iter().any(|(g, pl, ns)| {
            *g == tg.t.group
                && *pl == tg.t.plural
                && ns.as_ref().is_none_or(|ns| Some(ns) == tg.ns.as_ref())
        });
        let verb_denied = s
            .forbidden_verbs
            .iter()
            .any(|(g, pl, v)| *g == tg.t.group && *pl == tg.t.plural && v == verb);
        if denied || verb_denied {
            Err(forbidden_error(&tg, verb))
        } else {
            Ok(())
        }
    })?;
    if verb == "watch" {
        return start_watch(shared, &tg, p);
    }
    let opts = WriteOpts {
        manager: p.get("fieldManager").cloned().unwrap_or_default(),
        dry_run: p.get("dryRun").is_some_and(|v| v == "All"),
        force: flag(p, "force"),
        status_only: tg.sub.is_some(),
    };
    let name = tg.name.clone().unwrap_or_default();
    let t = &tg.t;
    let ns = tg.ns().to_string();
    if matches!(verb, "create" | "update" | "patch") {
        let body_name = if verb == "create" {
            parse_body(&req.body, false)
                .ok()
                .and_then(|b| b["metadata"]["name"].as_str().map(str::to_string))
                .unwrap_or_default()
        } else {
            name.clone()
        };
        let rejected = shared.with(|s| {
            s.admission_rejects
                .iter()
                .any(|(k, n)| *k == t.kind && *n == body_name)
        });
        if rejected {
            return Err(ApiError::invalid(
                &t.group,
                &t.kind,
                &body_name,
                "admission webhook \"fake.switchyard.test\" denied the request: rejected by test",
            ));
        }
    }
    let (code, out) = match verb {
        "get" => (StatusCode::OK, shared.with(|s| s.store.get(t, &ns, &name))?),
        "list" => (StatusCode::OK, list(shared, &tg, p)?),
        "create" => {
            let body = parse_body(&req.body, false)?;
            let created = shared.with(|s| s.store.create(t, &ns, body, &opts))?;
            (StatusCode::CREATED, created)
        }
        "update" => {
            let body = parse_body(&req.body, false)?;
            let updated = shared.with(|s| s.store.replace(t, &ns, &name, body, &opts))?;
            (StatusCode::OK, updated)
        }
        "patch" => patch(shared, &tg, req, &opts)?,
        "delete" => {
            let mut options = if req.body.is_empty() {
                json!({})
            } else {
                parse_body(&req.body, false)?
            };
            if let Some(policy) = p.get("propagationPolicy") {
                options["propagationPolicy"] = json!(policy);
            }
            let dry_run =
                opts.dry_run || options["dryRun"].as_array().is_some_and(|a| !a.is_empty());
            match shared.with(|s| s.store.delete(t, &ns, &name, &options, dry_run))? {
                Deleted::Pending(obj) => (StatusCode::OK, obj),
                // Custom resources answer with the object, built-ins with a Status.
                Deleted::Gone(obj) if t.custom => (StatusCode::OK, obj),
                Deleted::Gone(obj) => (
                    StatusCode::OK,
                    json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": t.group, "kind": t.plural,
                                    "uid": obj["metadata"]["uid"]},
                    }),
                ),
            }
        }
        "deletecollection" => {
            let victims = list(shared, &tg, p)?;
            let mut gone = Vec::new();
            for v in victims["items"].as_array().into_iter().flatten() {
                let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = v["metadata"]["name"].as_str().unwrap_or_default();
                if let Ok(Deleted::Gone(o) | Deleted::Pending(o)) =
                    shared.with(|s| s.store.delete(t, ns, name, &json!({}), opts.dry_run))
                {
                    gone.push(o);
                }
            }
            let mut out = victims;
            out["items"] = Value::Array(gone);
            (StatusCode::OK, out)
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    if t.plural == "customresourcedefinitions" && !opts.dry_run && verb != "get" {
        schedule_crd_establish(shared, t, &out);
    }
    // kube-rs `get_metadata`/`list_metadata` ask for PartialObjectMetadata(List).
    let out = if verb == "get" && req.accept.contains("as=PartialObjectMetadata") {
        metadata_only(&out, "PartialObjectMetadata")
    } else if verb == "list" && req.accept.contains("as=PartialObjectMetadataList") {
        let items: Vec<Value> = out["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| metadata_only(o, "PartialObjectMetadata"))
            .collect();
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
               "metadata": out["metadata"], "items": items})
    } else {
        out
    };
    Ok(json_response(code, &out))
}

fn metadata_only(obj: &Value, kind: &str) -> Value {
    json!({"kind": kind, "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn list(shared: &Arc<Shared>, tg: &Target, p: &Params) -> Result<Value, ApiError> {
    let labels = LabelSelector::parse(p.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(p.get("fieldSelector").map_or("", String::as_str))?;
    let (items, rv) = shared.with(|s| {
        (
            s.store.list(&tg.t, tg.ns.as_deref(), &labels, &fields),
            s.store.resource_version(),
        )
    });
    // Continue tokens are plain offsets: the fake does not model list snapshots.
    let start: usize = match p.get("continue") {
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid continue token {c:?}")))?,
        None => 0,
    };
    let limit = p
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let end = start + page.len();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if end < total {
        metadata["continue"] = json!(end.to_string());
        metadata["remainingItemCount"] = json!(total - end);
    }
    Ok(json!({
        "kind": format!("{}List", tg.t.kind), "apiVersion": tg.t.api_version(),
        "metadata": metadata, "items": page,
    }))
}

fn patch(
    shared: &Arc<Shared>,
    tg: &Target,
    req: &Req,
    opts: &WriteOpts,
) -> Result<(StatusCode, Value), ApiError> {
    let t = &tg.t;
    let ns = tg.ns();
    let name = tg.name.as_deref().unwrap_or_default();
    let media = req
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    match media {
        "application/apply-patch+yaml" => {
            if opts.manager.is_empty() {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    "fieldManager: Required value: is required for apply patch",
                ));
            }
            let body = parse_body(&req.body, true)?;
            let (obj, created) = shared.with(|s| s.store.apply(t, ns, name, body, opts))?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((code, obj))
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            if media.starts_with("application/strategic") && t.custom {
                return Err(ApiError::UnsupportedMediaType(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml"
                        .into(),
                ));
            }
            let body = parse_body(&req.body, false)?;
            let opts = with_default_manager(opts);
            let obj = shared.with(|s| {
                s.store.patch(
                    t,
                    ns,
                    name,
                    |o| {
                        merge_patch(o, &body);
                        Ok(())
                    },
                    &opts,
                )
            })?;
            Ok((StatusCode::OK, obj))
        }
        "application/json-patch+json" => {
            let ops = parse_body(&req.body, false)?;
            let opts = with_default_manager(opts);
            let obj =
                shared.with(|s| s.store.patch(t, ns, name, |o| json_patch(o, &ops), &opts))?;
            Ok((StatusCode::OK, obj))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/apply-patch+yaml (got {other:?})"
        ))),
    }
}

/// Non-apply writes without `fieldManager` are attributed like kubectl's default.
fn with_default_manager(opts: &WriteOpts) -> WriteOpts {
    let mut o = opts.clone();
    if o.manager.is_empty() {
        o.manager = "unknown".into();
    }
    o
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// RFC 6902 JSON patch (add, remove, replace, test, copy, move).
fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::Invalid {
        message: m,
        name: String::new(),
        group: String::new(),
        kind: String::new(),
    };
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("a JSON patch must be an array".into()))?;
    for op in ops {
        let path = op["path"].as_str().unwrap_or_default();
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| bad(format!("missing value for {path}")))
        };
        match op["op"].as_str().unwrap_or_default() {
            "add" => add_at(doc, path, value()?).map_err(bad)?,
            "remove" => {
                remove_at(doc, path).map_err(bad)?;
            }
            "replace" => {
                let slot = doc.pointer_mut(path).ok_or_else(|| {
                    bad(format!(
                        "replace operation does not apply: doc is missing path: {path}"
                    ))
                })?;
                *slot = value()?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(bad(format!("testing value {path} failed")));
                }
            }
            op_name @ ("copy" | "move") => {
                let from = op["from"].as_str().unwrap_or_default();
                let v = if op_name == "move" {
                    remove_at(doc, from).map_err(bad)?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| bad(format!("missing path {from}")))?
                };
                add_at(doc, path, v).map_err(bad)?;
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown JSON patch op {other:?}"
                )));
            }
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(&str, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((parent, unescape(last)))
}

fn add_at(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(last, v);
            Ok(())
        }
        Some(Value::Array(a)) if last == "-" => {
            a.push(v);
            Ok(())
        }
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i <= a.len() => {
                a.insert(i, v);
                Ok(())
            }
            _ => Err(format!("invalid array index in {path}")),
        },
        _ => Err(format!(
            "add operation does not apply: doc is missing path: {path}"
        )),
    }
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path}");
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// After a CRD write, marks it Established now or after the configured delay.
fn schedule_crd_establish(shared: &Arc<Shared>, crd_type: &ResourceType, crd: &Value) {
    let Some(name) = crd["metadata"]["name"].as_str().map(str::to_string) else {
        return;
    };
    if discovery::crd_established(crd) {
        return;
    }
    let delay = shared.with(|s| s.crd_delay);
    if delay.is_zero() {
        shared.with(|s| s.store.establish_crd(crd_type, &name));
        return;
    }
    let shared = Arc::clone(shared);
    let crd_type = crd_type.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        shared.with(|s| s.store.establish_crd(&crd_type, &name));
    });
}

fn event_line(t: &ResourceType, kind: &str, obj: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": present(t, obj)}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A BOOKMARK event: the object carries only the resourceVersion the
/// client may resume from.
fn bookmark_line(t: &ResourceType, rv: u64) -> Bytes {
    let bookmark = json!({
        "apiVersion": t.api_version(), "kind": t.kind,
        "metadata": {"resourceVersion": rv.to_string()},
    });
    Bytes::from(json!({"type": "BOOKMARK", "object": bookmark}).to_string() + "\n")
}

/// Starts a watch: replays what the requested resourceVersion has not seen, then follows
/// new events until `timeoutSeconds`, the client leaving, or server shutdown.
fn start_watch(shared: &Arc<Shared>, tg: &Target, p: &Params) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(p.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(p.get("fieldSelector").map_or("", String::as_str))?;
    let rv_param = p.get("resourceVersion").map_or("", String::as_str);
    let from: Option<u64> = match rv_param {
        "" | "0" => None,
        rv => Some(
            rv.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?,
        ),
    };
    let send_initial = flag(p, "sendInitialEvents");
    let bookmarks = flag(p, "allowWatchBookmarks");
    let bookmark_interval = shared.with(|s| s.bookmark_interval);
    let timeout = p
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let t = tg.t.clone();
    let ns = tg.ns.clone();
    let matches = move |ev: &Event| {
        ev.group == t.group
            && ev.plural == t.plural
            && ns.as_ref().is_none_or(|ns| *ns == ev.namespace)
            && labels.matches(&ev.object)
            && fields.matches(&ev.object)
    };
    let t = tg.t.clone();
    let (initial, mut events, mut last) = shared.with(|s| {
        // Subscribing under the lock means no event falls between replay and follow.
        let events = s.store.events.subscribe();
        let current = s.store.resource_version();
        let mut lines = Vec::new();
        match from {
            Some(rv) if !send_initial && rv < s.store.compacted() => {
                let status = ApiError::Expired(format!(
                    "too old resource version: {rv} ({})",
                    s.store.compacted()
                ))
                .status_body();
                let line = json!({"type": "ERROR", "object": status}).to_string() + "\n";
                lines.push(Bytes::from(line));
                return (lines, None, current);
            }
            Some(rv) if !send_initial => {
                for ev in s.store.history_since(rv).iter().filter(|e| matches(e)) {
                    lines.push(event_line(&t, ev.kind, &ev.object));
                }
            }
            _ => {
                for obj in s.store.list(
                    &t,
                    None,
                    &LabelSelector::default(),
                    &FieldSelector::default(),
                ) {
                    let ev = Event {
                        rv: 0,
                        kind: "ADDED",
                        group: t.group.clone(),
                        plural: t.plural.clone(),
                        namespace: obj["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .into(),
                        object: obj,
                    };
                    if matches(&ev) {
                        lines.push(event_line(&t, "ADDED", &ev.object));
                    }
                }
                if send_initial {
                    let bookmark = json!({
                        "apiVersion": t.api_version(), "kind": t.kind,
                        "metadata": {"resourceVersion": current.to_string(),
                                     "annotations": {"k8s.io/initial-events-end": "true"}},
                    });
                    let line = json!({"type": "BOOKMARK", "object": bookmark}).to_string() + "\n";
                    lines.push(Bytes::from(line));
                }
            }
        }
        (lines, Some(events), current)
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut shutdown = shared.shutdown.subscribe();
    tokio::spawn(async move {
        for line in initial {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let Some(events) = events.as_mut() else {
            return;
        };
        if *shutdown.borrow_and_update() {
            return;
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let every = bookmark_interval.max(Duration::from_millis(10));
        let mut bookmark_due = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                // The end of the watch wins over a bookmark due at the same moment.
                biased;
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
                _ = bookmark_due.tick(), if bookmarks => {
                    // `last` is every event this watch has been offered, sent
                    // or filtered out: resuming from it loses nothing.
                    if tx.send(Ok(bookmark_line(&t, last))).await.is_err() {
                        return;
                    }
                }
                ev = events.recv() => match ev {
                    Ok(ev) if ev.rv > last && matches(&ev) => {
                        last = ev.rv;
                        if tx.send(Ok(event_line(&t, ev.kind, &ev.object))).await.is_err() {
                            return;
                        }
                    }
                    Ok(ev) => last = last.max(ev.rv),
                    // A lagging watcher is cut off; the client re-lists, as with a real server.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}
