//! Docker's authorization plugin protocol (AuthZ API v1) and the requests
//! cordon judges in it.
//!
//! dockerd POSTs JSON to `/Plugin.Activate` (answered with
//! `{"Implements": ["authz"]}`), then, for every API call, to
//! `/AuthZPlugin.AuthZReq` before handling it and `/AuthZPlugin.AuthZRes`
//! after. The request body of the API call comes base64-encoded in
//! `RequestBody`, and only when it is JSON and under 1 MiB.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::json::Json;

/// What dockerd sends to `/AuthZPlugin.AuthZReq` (and `AuthZRes`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PluginRequest {
    /// The user authenticated by TLS, if any.
    #[serde(rename = "User")]
    pub user: String,
    /// How the user was authenticated.
    #[serde(rename = "UserAuthNMethod")]
    pub user_authn_method: String,
    /// The API call's HTTP method.
    #[serde(rename = "RequestMethod")]
    pub method: String,
    /// The API call's URI, with its query, e.g. `/v1.41/containers/create?name=web`.
    #[serde(rename = "RequestUri")]
    pub uri: String,
    /// The API call's body, base64 in the JSON.
    #[serde(rename = "RequestBody")]
    pub body: Option<String>,
    /// The API call's headers.
    #[serde(rename = "RequestHeaders")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// The answer to `/AuthZPlugin.AuthZReq` and `AuthZRes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginResponse {
    /// Let the call through.
    #[serde(rename = "Allow")]
    pub allow: bool,
    /// Why not (shown to the user by the Docker client).
    #[serde(rename = "Msg", default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
    /// The plugin failed.
    #[serde(rename = "Err", default, skip_serializing_if = "String::is_empty")]
    pub err: String,
}

/// A `docker create` (`POST /containers/create`), as far as cordon cares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Create {
    /// `?name=`; empty when Docker will make one up.
    pub name: String,
    /// `Image`.
    pub image: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.NetworkMode`, empty when absent.
    pub network_mode: String,
    /// The keys of `NetworkingConfig.EndpointsConfig`: networks to attach.
    pub endpoints: Vec<String>,
    /// `HostConfig.Privileged`.
    pub privileged: bool,
    /// `HostConfig.CapAdd`.
    pub cap_add: Vec<String>,
    /// `HostConfig.PidMode`.
    pub pid_mode: String,
}

/// An API call cordon judges.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `POST /containers/create`.
    Create(Create),
    /// `POST /networks/{network}/connect` with `{"Container": ...}`.
    Connect {
        /// The network, as in the path (a name or an id).
        network: String,
        /// The container, as in the body (a name or an id).
        container: String,
    },
    /// `POST /containers/{container}/exec` with `"Privileged": true`.
    PrivilegedExec {
        /// The container, as in the path.
        container: String,
    },
    /// Anything else: allowed.
    Other,
}

/// The path of `uri` (percent-decoded, as Docker's router matches it)
/// without its `/v1.xx` API-version prefix, and the raw query.
pub fn split_uri(uri: &str) -> (String, &str) {
    let (raw, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = unescape(raw, false);
    let unversioned = path
        .strip_prefix("/v")
        .and_then(|rest| {
            let end = rest.find('/')?;
            let v = &rest[..end];
            (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .then(|| rest[end..].to_string())
        })
        .unwrap_or(path);
    (unversioned, query)
}

/// `%XX` decoding of a path segment or query value (`+` is a space in a
/// query, as Go's `url.ParseQuery` reads it); a `%` not followed by two
/// hex digits stays as it is.
fn unescape(s: &str, query: bool) -> String {
    let spaced;
    let s = if query && s.contains('+') {
        spaced = s.replace('+', " ");
        spaced.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The first value of query parameter `key`, as Docker reads `name` (Go's
/// `r.Form.Get`).
fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (unescape(k, true) == key).then(|| unescape(v, true))
        })
        .next()
}

/// What the plugin decides about a request it cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// Classifies a request. A call cordon judges whose body is missing or
/// not the JSON Docker expects is [`Unreadable`]: fail closed.
pub fn action(req: &PluginRequest) -> Result<Action, Unreadable> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Ok(Action::Other);
    }
    let (path, query) = split_uri(&req.uri);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let kind = match segs.as_slice() {
        ["containers", "create"] => "create",
        ["networks", _, "connect"] => "connect",
        ["containers", _, "exec"] => "exec",
        _ => return Ok(Action::Other),
    };
    let body =
        body_json(req).map_err(|e| Unreadable(format!("cannot read the {kind} request: {e}")))?;
    let field = |o: &Json, k: &str| o.get(k).filter(|v| !v.is_null()).cloned();
    let string = |o: &Json, k: &str| -> Result<String, Unreadable> {
        match field(o, k) {
            None => Ok(String::new()),
            Some(Json::String(s)) => Ok(s),
            Some(_) => Err(Unreadable(format!("{k} is not a string"))),
        }
    };
    match kind {
        "create" => {
            let host = field(&body, "HostConfig").unwrap_or(Json::Object(vec![]));
            let labels = match field(&body, "Labels") {
                None => BTreeMap::new(),
                Some(Json::Object(pairs)) => {
                    let mut m = BTreeMap::new();
                    for (k, v) in pairs {
                        match v {
                            Json::String(s) => {
                                m.insert(k, s);
                            }
                            _ => return Err(Unreadable(format!("label {k} is not a string"))),
                        }
                    }
                    m
                }
                Some(_) => return Err(Unreadable("Labels is not an object".into())),
            };
            let endpoints =
                match field(&body, "NetworkingConfig").and_then(|n| field(&n, "EndpointsConfig")) {
                    None => Vec::new(),
                    Some(Json::Object(pairs)) => pairs.into_iter().map(|(k, _)| k).collect(),
                    Some(_) => return Err(Unreadable("EndpointsConfig is not an object".into())),
                };
            let privileged = match field(&host, "Privileged") {
                None => false,
                Some(Json::Bool(b)) => b,
                Some(_) => return Err(Unreadable("Privileged is not a boolean".into())),
            };
            let cap_add = match field(&host, "CapAdd") {
                None => Vec::new(),
                Some(Json::Array(v)) => v
                    .into_iter()
                    .map(|c| match c {
                        Json::String(s) => Ok(s),
                        _ => Err(Unreadable("CapAdd holds a non-string".into())),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(Unreadable("CapAdd is not an array".into())),
            };
            Ok(Action::Create(Create {
                name: query_param(query, "name").unwrap_or_default(),
                image: string(&body, "Image")?,
                labels,
                network_mode: string(&host, "NetworkMode")?,
                endpoints,
                privileged,
                cap_add,
                pid_mode: string(&host, "PidMode")?,
            }))
        }
        "connect" => Ok(Action::Connect {
            network: segs[1].to_string(),
            container: string(&body, "Container")?,
        }),
        _ => match field(&body, "Privileged") {
            None | Some(Json::Bool(false)) => Ok(Action::Other),
            Some(Json::Bool(true)) => Ok(Action::PrivilegedExec {
                container: segs[1].to_string(),
            }),
            Some(_) => Err(Unreadable("Privileged is not a boolean".into())),
        },
    }
}

fn body_json(req: &PluginRequest) -> Result<Json, String> {
    let b64 = req
        .body
        .as_deref()
        .filter(|b| !b.is_empty())
        .ok_or("no body (dockerd passes bodies only when they are JSON and under 1 MiB)")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the body is not base64: {e}"))?;
    let j = Json::parse(&raw).map_err(|e| format!("the body is not JSON: {e}"))?;
    match j {
        Json::Object(_) => Ok(j),
        _ => Err("the body is not a JSON object".into()),
    }
}
