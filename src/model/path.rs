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
    /// Parses a path; the error says what is wrong with it. The length and nesting limits are
    /// checked first, so a hostile path can neither overflow the parser's stack nor make it run
    /// for minutes (its time doubles with each nested filter).
    pub fn parse(source: &str) -> Result<ObjectPath, String> {
        check_limits(source)?;
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

/// The longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// The deepest accepted nesting of brackets and parentheses.
pub const MAX_NESTING: usize = 16;
/// The deepest accepted nesting of filter selectors (`[?…[?…]…]`).
pub const MAX_FILTER_NESTING: usize = 4;

/// Rejects paths over [`MAX_PATH_LEN`], [`MAX_NESTING`] or [`MAX_FILTER_NESTING`] with an error
/// naming the path (cut, if long) and the limit. Quoted names are skipped, so `$['[[[']` is fine.
fn check_limits(source: &str) -> Result<(), String> {
    let shown = || {
        let mut s = String::new();
        crate::model::text::neutralise_into(&mut s, source, 80);
        s
    };
    if source.len() > MAX_PATH_LEN {
        return Err(format!(
            "JSONPath \"{}\" is {} bytes long; at most {MAX_PATH_LEN} are accepted",
            shown(),
            source.len()
        ));
    }
    // One entry per open bracket or parenthesis: whether it holds a filter.
    let mut open: Vec<bool> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' | '(' => {
                open.push(false);
                if open.len() > MAX_NESTING {
                    return Err(format!(
                        "JSONPath \"{}\" nests brackets and parentheses more than {MAX_NESTING} deep",
                        shown()
                    ));
                }
            }
            ']' | ')' => {
                open.pop();
            }
            '?' => {
                if let Some(last) = open.last_mut() {
                    *last = true;
                }
                if open.iter().filter(|f| **f).count() > MAX_FILTER_NESTING {
                    return Err(format!(
                        "JSONPath \"{}\" nests filters (`[?…]`) more than {MAX_FILTER_NESTING} deep",
                        shown()
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
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

    #[test]
    fn deep_nesting_rejected_before_parsing() {
        // 1,000 levels overflowed the parser's stack and killed the process.
        let deep = format!("$.a{}{}", "[?(".repeat(1000), ")]".repeat(1000));
        let e = ObjectPath::parse(&deep).unwrap_err();
        assert!(e.contains("is 5003 bytes long"), "{e}");
        let deep = format!("${}0{}", "[".repeat(MAX_NESTING + 1), "]".repeat(MAX_NESTING + 1));
        let e = ObjectPath::parse(&deep).unwrap_err();
        assert!(e.contains("more than 16 deep") && e.starts_with("JSONPath \"$[[[["), "{e}");
        // Brackets inside quoted names do not count.
        let quoted = format!("$['{}']", "[".repeat(100));
        assert!(ObjectPath::parse(&quoted).is_ok());
    }

    /// `[?@` nesting doubled the parse time per level: a valid 120-byte path froze HTTP for
    /// about 15 s. Past the limit it is an error; at the limit it parses quickly.
    #[test]
    fn nested_filters_bounded_in_depth_and_time() {
        let nest = |n: usize| format!("$.a{}.b{}", "[?@.x".repeat(n), "]".repeat(n));
        let e = ObjectPath::parse(&nest(MAX_FILTER_NESTING + 1)).unwrap_err();
        assert!(e.contains("nests filters"), "{e}");
        let e = ObjectPath::parse(&nest(20)).unwrap_err();
        assert!(e.contains("nests filters") && e.contains("$.a[?@.x"), "{e}");
        let start = std::time::Instant::now();
        for _ in 0..10 {
            ObjectPath::parse(&nest(MAX_FILTER_NESTING)).unwrap();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
    }
}
