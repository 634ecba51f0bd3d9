//! The host objects Helm puts in front of templates: `.Files` (Get, GetBytes,
//! Glob, Lines, AsConfig, AsSecrets) and `.Capabilities` (KubeVersion,
//! APIVersions.Has, HelmVersion), plus `toToml`.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;

use super::Error;
use crate::value::{Object, Value};

/// What `helm template` (Helm v4.2) reports without a cluster.
pub const DEFAULT_KUBE_VERSION: &str = "v1.36.0";

/// Helm's default API versions (its client-go scheme), in Helm's order.
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1",
    "resource.k8s.io/v1beta2",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha2",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// `.Files`: the chart's non-template files.
pub struct Files(pub Rc<BTreeMap<String, Rc<[u8]>>>);

pub fn files_value(f: Rc<BTreeMap<String, Rc<[u8]>>>) -> Value {
    Value::Object(Rc::new(Files(f)))
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

impl Files {
    fn get(&self, name: &str) -> String {
        self.0
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

impl Object for Files {
    fn type_name(&self) -> &'static str {
        "files"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Get" | "GetBytes" | "Glob" | "Lines" | "AsConfig" | "AsSecrets"
        )
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let arg = |n: usize| -> Result<String, String> {
            match args.get(n) {
                Some(Value::String(s)) => Ok(s.to_string()),
                Some(v) => Err(format!(
                    "wrong type for value; expected string; got {}",
                    v.type_name()
                )),
                None => Err(format!(
                    "wrong number of args for {name}: want 1 got {}",
                    args.len()
                )),
            }
        };
        let no_args = || -> Result<(), String> {
            if args.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want 0 got {}",
                    args.len()
                ))
            }
        };
        Some((|| match name {
            "Get" => Ok(Value::str(self.get(&arg(0)?))),
            "GetBytes" => Ok(Value::Bytes(
                self.0
                    .get(&arg(0)?)
                    .cloned()
                    .unwrap_or_else(|| Rc::from(&[][..])),
            )),
            "Lines" => {
                let p = arg(0)?;
                let Some(b) = self.0.get(&p) else {
                    return Ok(Value::list(Vec::new()));
                };
                let s = String::from_utf8_lossy(b).into_owned();
                let s = s.strip_suffix('\n').unwrap_or(&s).to_string();
                Ok(Value::list(s.split('\n').map(Value::str).collect()))
            }
            "Glob" => {
                let pat = arg(0)?;
                let re = glob_regex(&pat).map_err(|e| e.to_string())?;
                let m: BTreeMap<String, Rc<[u8]>> = self
                    .0
                    .iter()
                    .filter(|(k, _)| re.is_match(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok(files_value(Rc::new(m)))
            }
            "AsConfig" => {
                no_args()?;
                let m: BTreeMap<String, Value> = self
                    .0
                    .iter()
                    .map(|(k, v)| {
                        (
                            base(k).to_string(),
                            Value::str(String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect();
                if m.is_empty() {
                    return Ok(Value::str(""));
                }
                Ok(Value::str(
                    crate::yaml::to_yaml(&Value::map(m))?
                        .trim_end_matches('\n')
                        .to_string(),
                ))
            }
            "AsSecrets" => {
                no_args()?;
                let m: BTreeMap<String, Value> = self
                    .0
                    .iter()
                    .map(|(k, v)| {
                        (
                            base(k).to_string(),
                            Value::str(base64::engine::general_purpose::STANDARD.encode(v)),
                        )
                    })
                    .collect();
                if m.is_empty() {
                    return Ok(Value::str(""));
                }
                Ok(Value::str(
                    crate::yaml::to_yaml(&Value::map(m))?
                        .trim_end_matches('\n')
                        .to_string(),
                ))
            }
            _ => Err(format!("can't evaluate field {name} in type files")),
        })())
    }
    fn display(&self) -> String {
        crate::gofmt::sprint_value(&self.to_data())
    }
    fn to_data(&self) -> Value {
        Value::map(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::Bytes(v.clone())))
                .collect(),
        )
    }
}

/// gobwas/glob with '/' as separator: `*` and `?` stay within a path segment, `**` crosses them.
fn glob_regex(pat: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("^");
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                re.push_str(".*");
                i += 1;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let mut cls = String::from("[");
                i += 1;
                if chars.get(i) == Some(&'!') {
                    cls.push('^');
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    if chars[i] == '\\' {
                        cls.push('\\');
                    }
                    cls.push(chars[i]);
                    i += 1;
                }
                cls.push(']');
                re.push_str(&cls);
            }
            '{' => {
                let mut alts = Vec::new();
                let mut cur = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '}' {
                    if chars[i] == ',' {
                        alts.push(regex::escape(&std::mem::take(&mut cur)));
                    } else {
                        cur.push(chars[i]);
                    }
                    i += 1;
                }
                alts.push(regex::escape(&cur));
                re.push_str(&format!("(?:{})", alts.join("|")));
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re)
}

/// `.Capabilities.KubeVersion`: fields and Go's `String()`.
struct KubeVersion {
    version: String,
    major: String,
    minor: String,
}

impl Object for KubeVersion {
    fn type_name(&self) -> &'static str {
        "*common.KubeVersion"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" | "GitVersion" | "String" => Some(Value::str(self.version.as_str())),
            "Major" => Some(Value::str(self.major.as_str())),
            "Minor" => Some(Value::str(self.minor.as_str())),
            _ => None,
        }
    }
    fn display(&self) -> String {
        self.version.clone()
    }
    fn value_repr(&self) -> String {
        // The struct's fields: Version, GitVersion (the same), Major, Minor.
        format!(
            "{{{} {} {} {}}}",
            self.version, self.version, self.major, self.minor
        )
    }
    fn to_data(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert("Version".to_string(), Value::str(self.version.as_str()));
        m.insert("Major".to_string(), Value::str(self.major.as_str()));
        m.insert("Minor".to_string(), Value::str(self.minor.as_str()));
        Value::map(m)
    }
}

/// `.Capabilities.APIVersions`: ranged over as a list, asked with `Has`.
struct ApiVersions(Vec<String>);

impl Object for ApiVersions {
    fn type_name(&self) -> &'static str {
        "common.VersionSet"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn has_method(&self, name: &str) -> bool {
        name == "Has"
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if name != "Has" {
            return None;
        }
        Some(match args {
            [Value::String(s)] => Ok(Value::Bool(self.0.iter().any(|v| v == &**s))),
            [v] => Err(format!(
                "wrong type for value; expected string; got {}",
                v.type_name()
            )),
            _ => Err(format!(
                "wrong number of args for Has: want 1 got {}",
                args.len()
            )),
        })
    }
    fn display(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }
    fn to_data(&self) -> Value {
        Value::list(self.0.iter().map(|s| Value::str(s.as_str())).collect())
    }
}

/// `.Capabilities`.
pub fn capabilities_value(
    kube_version: &str,
    api_versions: Option<Vec<String>>,
) -> Result<Value, Error> {
    let v = kube_version.trim();
    let bare = v.strip_prefix('v').unwrap_or(v);
    let mut parts = bare.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("").to_string();
    let minor = parts.next().unwrap_or("").to_string();
    if major.is_empty()
        || !major.bytes().all(|c| c.is_ascii_digit())
        || !minor.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(Error::Values(format!(
            "invalid kube version {kube_version:?}"
        )));
    }
    let version = format!("v{bare}");
    let mut m = BTreeMap::new();
    m.insert(
        "KubeVersion".to_string(),
        Value::Object(Rc::new(KubeVersion {
            version,
            major,
            minor,
        })),
    );
    let apis = api_versions
        .unwrap_or_else(|| DEFAULT_API_VERSIONS.iter().map(|s| s.to_string()).collect());
    m.insert(
        "APIVersions".to_string(),
        Value::Object(Rc::new(ApiVersions(apis))),
    );
    let mut hv = BTreeMap::new();
    hv.insert("Version".to_string(), Value::str("v4.2"));
    hv.insert("GitCommit".to_string(), Value::str(""));
    hv.insert("GitTreeState".to_string(), Value::str(""));
    hv.insert("GoVersion".to_string(), Value::str(""));
    m.insert("HelmVersion".to_string(), Value::map(hv));
    Ok(Value::map(m))
}

/// `toToml`: BurntSushi/toml's encoding of a map (scalars first, then tables).
pub fn to_toml(v: &Value) -> String {
    fn scalar(v: &Value) -> Option<String> {
        Some(match v {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) | Value::Int64(i) => i.to_string(),
            Value::Float(f) => {
                if f.fract() == 0.0 && f.is_finite() {
                    format!("{f:.1}")
                } else {
                    crate::gofmt::format_float_g(*f, None)
                }
            }
            Value::String(s) => crate::gofmt::go_quote(s),
            Value::List(l) => {
                let items: Option<Vec<String>> = l.iter().map(scalar).collect();
                format!("[{}]", items?.join(", "))
            }
            _ => return None,
        })
    }
    fn table(out: &mut String, prefix: &str, m: &Value, depth: usize) {
        let Value::Map(m) = m else { return };
        if depth > crate::MAX_DATA_DEPTH {
            return;
        }
        let m = m.borrow();
        let indent = "  ".repeat(depth.saturating_sub(1));
        for (k, v) in m.iter() {
            if let Some(s) = scalar(v) {
                out.push_str(&format!("{indent}{} = {s}\n", key(k)));
            }
        }
        for (k, v) in m.iter() {
            if let Value::Map(_) = v {
                let name = if prefix.is_empty() {
                    key(k)
                } else {
                    format!("{prefix}.{}", key(k))
                };
                out.push_str(&format!("\n{indent}[{name}]\n"));
                table(out, &name, v, depth + 1);
            }
        }
    }
    fn key(k: &str) -> String {
        if !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            k.to_string()
        } else {
            crate::gofmt::go_quote(k)
        }
    }
    let mut out = String::new();
    table(&mut out, "", &v.to_data(), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stay_within_segments() {
        let re = glob_regex("files/*.conf").unwrap();
        assert!(re.is_match("files/a.conf"));
        assert!(!re.is_match("files/x/a.conf"));
        assert!(glob_regex("files/**").unwrap().is_match("files/x/a.conf"));
        assert!(glob_regex("{a,b}.txt").unwrap().is_match("b.txt"));
    }
}
