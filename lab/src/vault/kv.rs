//! Key/value secrets: version 1 (plain paths) and version 2 (`data/`, `metadata/`).

use super::http::{children, int_field, list_reply, multierror, ApiError, Envelope, Op, Req, Resp};
use super::version::Ver;
use crate::encode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// KV v1's "refresh interval" reported as the lease duration.
const KV1_LEASE: u64 = 2_764_800;

/// One stored version of a v2 secret.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    data: Value,
    created: SystemTime,
    deleted: Option<SystemTime>,
}

/// A KV mount of either version.
#[derive(Debug)]
pub(crate) enum KvMount {
    V1(BTreeMap<String, Value>),
    V2(BTreeMap<String, Vec<Version>>),
}

impl KvMount {
    /// An empty mount; `version` is the mount option (`"2"` for v2).
    pub fn new(version: Option<&str>) -> KvMount {
        match version {
            Some("2") => KvMount::V2(BTreeMap::new()),
            _ => KvMount::V1(BTreeMap::new()),
        }
    }

    /// Dispatches `<mount>/<sub>`.
    pub fn handle(&mut self, sub: &str, req: &Req, ver: Ver) -> Result<Resp, ApiError> {
        match self {
            KvMount::V1(store) => v1(store, sub, req, ver),
            KvMount::V2(store) => v2(store, sub, req, ver),
        }
    }
}

fn v1(
    store: &mut BTreeMap<String, Value>,
    path: &str,
    req: &Req,
    ver: Ver,
) -> Result<Resp, ApiError> {
    match req.op {
        Op::List => list_reply(children(store.keys(), path), "kv", ver),
        Op::Read => {
            let data = store.get(path).cloned().ok_or_else(ApiError::not_found)?;
            let mut env = Envelope::new(data, "kv");
            env.lease_duration = KV1_LEASE;
            env.ok(ver)
        }
        Op::Write => {
            store.insert(path.to_string(), Value::Object(req.body()?.clone()));
            Ok(Resp::no_content())
        }
        Op::Delete => {
            store.remove(path);
            Ok(Resp::no_content())
        }
        Op::Patch => Err(ApiError::unsupported_operation()),
    }
}

fn v2(
    store: &mut BTreeMap<String, Vec<Version>>,
    sub: &str,
    req: &Req,
    ver: Ver,
) -> Result<Resp, ApiError> {
    let (head, path) = sub.split_once('/').unwrap_or((sub, ""));
    match (head, req.op) {
        ("data", Op::Read) => read_data(store, path, req, ver),
        ("data", Op::Write) => write_data(store, path, req, ver),
        ("data", Op::Delete) => {
            if let Some(v) = store.get_mut(path).and_then(|vs| vs.last_mut()) {
                v.deleted = Some(SystemTime::now());
            }
            Ok(Resp::no_content())
        }
        ("metadata", Op::List) => list_reply(children(store.keys(), path), "kv", ver),
        ("metadata", Op::Read) => read_metadata(store, path, ver),
        ("metadata", Op::Delete) => {
            store.remove(path);
            Ok(Resp::no_content())
        }
        ("data" | "metadata", _) => Err(ApiError::unsupported_operation()),
        _ => Err(ApiError::new(404, vec![multierror(&["unsupported path"])])),
    }
}

fn version_meta(v: &Version, n: usize) -> Value {
    json!({
        "created_time": encode::rfc3339_nano(v.created),
        "custom_metadata": null,
        "deletion_time": v.deleted.map(encode::rfc3339_nano).unwrap_or_default(),
        "destroyed": false,
        "version": n,
    })
}

fn read_data(
    store: &BTreeMap<String, Vec<Version>>,
    path: &str,
    req: &Req,
    ver: Ver,
) -> Result<Resp, ApiError> {
    let versions = store.get(path).ok_or_else(ApiError::not_found)?;
    let n = match req.query("version").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => versions.len(),
    };
    let v = versions.get(n - 1).ok_or_else(ApiError::not_found)?;
    if v.deleted.is_some() {
        let data = json!({ "data": null, "metadata": version_meta(v, n) });
        return Ok(Resp::json(404, Envelope::new(data, "kv").render(ver)));
    }
    Envelope::new(
        json!({ "data": v.data, "metadata": version_meta(v, n) }),
        "kv",
    )
    .ok(ver)
}

fn write_data(
    store: &mut BTreeMap<String, Vec<Version>>,
    path: &str,
    req: &Req,
    ver: Ver,
) -> Result<Resp, ApiError> {
    let body = req.body()?;
    let data = match body.get("data") {
        Some(Value::Object(d)) => Value::Object(d.clone()),
        _ => return Err(ApiError::bad("no data provided")),
    };
    let current = store.get(path).map_or(0, Vec::len);
    let options = body
        .get("options")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(cas) = int_field(&options, "cas")? {
        if cas as usize != current {
            return Err(ApiError::bad(
                "check-and-set parameter did not match the current version",
            ));
        }
    }
    let v = Version {
        data,
        created: SystemTime::now(),
        deleted: None,
    };
    let meta = version_meta(&v, current + 1);
    store.entry(path.to_string()).or_default().push(v);
    Envelope::new(meta, "kv").ok(ver)
}

fn read_metadata(
    store: &BTreeMap<String, Vec<Version>>,
    path: &str,
    ver: Ver,
) -> Result<Resp, ApiError> {
    let versions = store.get(path).ok_or_else(ApiError::not_found)?;
    let (first, last) = (&versions[0], &versions[versions.len() - 1]);
    let mut all = Map::new();
    for (i, v) in versions.iter().enumerate() {
        all.insert((i + 1).to_string(), version_meta(v, i + 1));
    }
    let data = json!({
        "cas_required": false,
        "created_time": encode::rfc3339_nano(first.created),
        "current_version": versions.len(),
        "custom_metadata": null,
        "delete_version_after": "0s",
        "max_versions": 0,
        "oldest_version": 0,
        "updated_time": encode::rfc3339_nano(last.created),
        "versions": all,
    });
    Envelope::new(data, "kv").ok(ver)
}
