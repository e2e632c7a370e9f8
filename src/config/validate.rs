//! Checks of names the API server would reject, so a typo fails at load time, not as a 400 or
//! an empty watch in production.

/// A target name: it becomes the `target` label, so it must be short and plain.
pub(super) fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key `name`: {name:?} is not a valid target name; use 1-63 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A namespace name (RFC 1123 label).
pub(crate) fn validate_dns_label(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok { Ok(()) } else { Err(format!("{ns:?} is not a valid namespace name (lowercase RFC 1123 label)")) }
}
