//! JSONPath (RFC 9535) expressions from the config, parsed once at load.
//!
//! Besides the compiled query, each path remembers which top-level field of the object it
//! starts in (`status`, `spec`, …). Decoding keeps the other top-level fields as unparsed bytes,
//! so an event costs a DOM only for the small parts that the configured paths actually read.

use std::fmt;

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;
use serde_json_path::JsonPath;

/// A JSONPath (RFC 9535) over an object, parsed once at config load.
#[derive(Clone)]
pub struct ObjectPath {
    source: String,
    query: JsonPath,
    /// The first segment when it names one top-level field; `None` for `$`, `$..x`, `$.*`.
    root: Option<String>,
}

impl fmt::Debug for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Two paths are the same when their source text is; used to keep watches across reloads.
impl PartialEq for ObjectPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl ObjectPath {
    /// Parses a path; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<ObjectPath, String> {
        let query = JsonPath::parse(source).map_err(|e| {
            format!("invalid JSONPath {source:?}: {e}; expected RFC 9535 syntax such as $.status.phase")
        })?;
        Ok(ObjectPath { source: source.to_string(), query, root: root_field(source) })
    }

    pub(crate) fn conditions() -> ObjectPath {
        ObjectPath::parse("$.status.conditions").expect("static path")
    }

    /// The path as written in the config.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The top-level field this path reads, if it reads only one.
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// The single value the path selects; several or none count as absent.
    pub fn first<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.query.query(v).at_most_one().ok().flatten()
    }
}

impl<'de> Deserialize<'de> for ObjectPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectPath::parse(&s).map_err(D::Error::custom)
    }
}

/// `$.status.phase` → `status`, `$['spec'].x` → `spec`; anything else → None.
fn root_field(source: &str) -> Option<String> {
    let rest = source.trim().strip_prefix('$')?;
    if let Some(dot) = rest.strip_prefix('.') {
        if dot.starts_with('.') || dot.starts_with('*') {
            return None;
        }
        let end = dot.find(['.', '[']).unwrap_or(dot.len());
        let name = &dot[..end];
        return (!name.is_empty()).then(|| name.to_string());
    }
    let inner = rest.strip_prefix('[')?;
    let quote = inner.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &inner[1..];
    let end = body.find(quote)?;
    body[end + 1..].starts_with(']').then(|| body[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roots() {
        let r = |s: &str| ObjectPath::parse(s).unwrap().root().map(str::to_string);
        assert_eq!(r("$.status.phase").as_deref(), Some("status"));
        assert_eq!(r("$.spec").as_deref(), Some("spec"));
        assert_eq!(r("$['status']['x']").as_deref(), Some("status"));
        assert_eq!(r("$[\"spec\"].a").as_deref(), Some("spec"));
        assert_eq!(r("$.spec.containers[0].image").as_deref(), Some("spec"));
        assert_eq!(r("$..image"), None);
        assert_eq!(r("$.*"), None);
        assert_eq!(r("$"), None);
    }

    #[test]
    fn first_selects_one_value() {
        let p = ObjectPath::parse("$.status.phase").unwrap();
        assert_eq!(p.first(&json!({"status": {"phase": "Running"}})), Some(&json!("Running")));
        assert_eq!(p.first(&json!({"status": {}})), None);
        let many = ObjectPath::parse("$.a[*]").unwrap();
        assert_eq!(many.first(&json!({"a": [1, 2]})), None);
    }

    #[test]
    fn invalid_path_message() {
        let e = ObjectPath::parse("status.phase").unwrap_err();
        assert!(e.starts_with("invalid JSONPath \"status.phase\""), "{e}");
    }
}
