//! Label and field selectors checked with the API server's grammar, so a selector it would
//! answer with 400 fails at load time instead of leaving a watch unready forever.
//!
//! Labels: comma-separated requirements `key`, `!key`, `key=v`, `key==v`, `key!=v`,
//! `key in (v1,v2)`, `key notin (v1,v2)`, `key>N`, `key<N`; keys are `[prefix/]name` (prefix a
//! DNS subdomain of at most 253 characters, name at most 63 of `[A-Za-z0-9._-]` starting and
//! ending alphanumeric), values at most 63 such characters or empty.
//! Fields: comma-separated `key=v`, `key==v`, `key!=v` (`\` escapes `,`, `=`, `!` and `\`).

/// A label name or value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn is_label_word(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_none_or(u8::is_ascii_alphanumeric)
        && b.last().is_none_or(u8::is_ascii_alphanumeric)
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !l.is_empty()
                && l.len() <= 63
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        return Err(format!("label key {key:?}: prefix {p:?} is not a DNS subdomain"));
    }
    if name.is_empty() || !is_label_word(name) {
        return Err(format!(
            "label key {key:?}: the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn check_value(key: &str, v: &str) -> Result<(), String> {
    if is_label_word(v) {
        Ok(())
    } else {
        Err(format!("label {key:?}: value {v:?} must be at most 63 letters, digits, '-', '_' or '.'"))
    }
}

/// Splits on commas outside parentheses.
fn requirements(s: &str) -> Result<Vec<&str>, String> {
    let (mut out, mut depth, mut start) = (vec![], 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    out.push(&s[start..]);
    Ok(out)
}

fn check_requirement(r: &str) -> Result<(), String> {
    let r = r.trim();
    if r.is_empty() {
        return Err("empty requirement (a stray comma?)".into());
    }
    if let Some(key) = r.strip_prefix('!') {
        return check_key(key.trim());
    }
    for op in ["!=", "==", "="] {
        if let Some((k, v)) = r.split_once(op) {
            check_key(k.trim())?;
            return check_value(k.trim(), v.trim());
        }
    }
    for op in ['>', '<'] {
        if let Some((k, v)) = r.split_once(op) {
            check_key(k.trim())?;
            return v
                .trim()
                .parse::<i64>()
                .map(|_| ())
                .map_err(|_| format!("label {:?}: {op} needs an integer, not {:?}", k.trim(), v.trim()));
        }
    }
    if let Some(open) = r.find('(') {
        let head: Vec<&str> = r[..open].split_whitespace().collect();
        let [key, op] = head[..] else {
            return Err(format!("{r:?}: expected `key in (v1,v2)` or `key notin (v1,v2)`"));
        };
        if op != "in" && op != "notin" {
            return Err(format!("{r:?}: unknown operator {op:?}; use in or notin"));
        }
        check_key(key)?;
        let body = r[open + 1..].strip_suffix(')').ok_or_else(|| format!("{r:?}: missing ')'"))?;
        if body.trim().is_empty() {
            return Err(format!("{r:?}: the set of values must not be empty"));
        }
        return body.split(',').try_for_each(|v| check_value(key, v.trim()));
    }
    if r.split_whitespace().count() > 1 {
        return Err(format!(
            "{r:?}: expected an operator (=, ==, !=, in, notin, >, <) between key and value"
        ));
    }
    check_key(r)
}

/// A label selector as the API server parses it.
pub(crate) fn check_label_selector(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Ok(());
    }
    requirements(s)?
        .into_iter()
        .try_for_each(check_requirement)
        .map_err(|e| format!("invalid label selector {s:?}: {e}"))
}

/// A field selector as the API server parses it.
pub(crate) fn check_field_selector(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Ok(());
    }
    let err = |m: &str| Err(format!("invalid field selector {s:?}: {m}"));
    let mut terms = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ (',' | '=' | '!' | '\\')) => {
                    terms.last_mut().expect("a term").extend(['\\', e]);
                }
                _ => return err("'\\' must escape ',', '=', '!' or '\\'"),
            },
            ',' => terms.push(String::new()),
            c => terms.last_mut().expect("a term").push(c),
        }
    }
    for t in &terms {
        // Find the first unescaped operator.
        let b = t.as_bytes();
        let mut i = 0;
        let mut found = None;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b'!' if b.get(i + 1) == Some(&b'=') => {
                    found = Some((i, 2));
                    break;
                }
                b'=' => {
                    found = Some((i, if b.get(i + 1) == Some(&b'=') { 2 } else { 1 }));
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some((at, _)) = found else {
            return err(&format!("{t:?} is not `field=value`, `field==value` or `field!=value`"));
        };
        if t[..at].trim().is_empty() {
            return err(&format!("{t:?} has no field name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_the_api_server_accepts() {
        for s in [
            "app=web",
            "app==web,tier!=db",
            "app.kubernetes.io/name=stallwatch",
            "env in (prod, staging),!canary",
            "tier notin (db)",
            "release",
            "replicas>1",
            "app=",
            " app = web ",
        ] {
            assert_eq!(check_label_selector(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn label_selectors_the_api_server_rejects() {
        for (s, why) in [
            ("app=we b", "value"),
            ("app web", "operator"),
            ("app=web,", "empty requirement"),
            ("Bad_Prefix/app=x", "prefix"),
            ("env in ()", "must not be empty"),
            ("env in (a", "unbalanced"),
            ("env within (a)", "unknown operator"),
            ("-app=x", "name must be"),
            ("replicas>one", "integer"),
        ] {
            let e = check_label_selector(s).expect_err(s);
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn field_selectors() {
        for s in
            ["metadata.name=a", "status.phase!=Running,spec.nodeName==n1", "metadata.name=a\\,b", "spec.x="]
        {
            assert_eq!(check_field_selector(s), Ok(()), "{s}");
        }
        for s in ["metadata.name", "=a", "a=b,", "a=\\x"] {
            assert!(check_field_selector(s).is_err(), "{s}");
        }
    }
}
