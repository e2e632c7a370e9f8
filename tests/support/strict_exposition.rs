//! A strict checker of the two exposition formats, written for these tests (no promtool per
//! fuzz case): OpenMetrics 1.0 (`# EOF` last, no trailing data, counter samples `_total` or
//! `_created`, families contiguous and declared once, label sets unique per family) and text
//! 0.0.4. Both: metric and label names by the formats' grammars, label values quoted with only
//! `\\`, `\"` and `\n` escapes, no raw control characters, values that parse as floats.

use std::collections::HashSet;

fn metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn value(s: &str) -> bool {
    matches!(s, "+Inf" | "-Inf" | "NaN") || (s.parse::<f64>().is_ok() && !s.contains(['i', 'I', 'n', 'N']))
}

/// Parses `{k="v",…}` at the start of `s`; returns the label set as written and the rest.
type LabelSet = Vec<(String, String)>;

fn labels(s: &str) -> Result<(LabelSet, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    let mut out = Vec::new();
    if let Some(r) = rest.strip_prefix('}') {
        return Ok((out, r));
    }
    loop {
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '"' => break i,
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('\\') => v.push('\\'),
                    Some('"') => v.push('"'),
                    Some('n') => v.push('\n'),
                    e => return Err(format!("bad escape \\{e:?} in label value")),
                },
                c if c.is_control() => return Err(format!("raw control character {c:?} in label value")),
                c => v.push(c),
            }
        };
        if out.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("label {name} twice"));
        }
        out.push((name.to_string(), v));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        rest = rest.strip_prefix(',').ok_or("expected , or } after a label")?;
    }
}

/// Checks a whole exposition; `openmetrics` selects the format. The error names the line.
pub fn check(text: &str, openmetrics: bool) -> Result<(), String> {
    let body = if openmetrics {
        text.strip_suffix("# EOF\n").ok_or("OpenMetrics output must end with `# EOF\\n`")?
    } else {
        text
    };
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("last line not terminated".into());
    }
    let mut declared: HashSet<String> = HashSet::new();
    let mut current: Option<(String, String)> = None; // (family, type)
    let mut series: HashSet<String> = HashSet::new();
    for (n, line) in body.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.chars().any(|c| c.is_control()) {
            return Err(err("raw control character".into()));
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !metric_name(name) {
                return Err(err(format!("bad family name {name:?}")));
            }
            match kind {
                "HELP" => {}
                "TYPE" => {
                    let ty = parts.next().unwrap_or("");
                    let ok: &[&str] = if openmetrics {
                        &[
                            "counter",
                            "gauge",
                            "histogram",
                            "gaugehistogram",
                            "stateset",
                            "info",
                            "summary",
                            "unknown",
                        ]
                    } else {
                        &["counter", "gauge", "histogram", "summary", "untyped"]
                    };
                    if !ok.contains(&ty) {
                        return Err(err(format!("bad type {ty:?}")));
                    }
                    if !declared.insert(name.to_string()) {
                        return Err(err(format!("family {name} declared twice")));
                    }
                    current = Some((name.to_string(), ty.to_string()));
                    series.clear();
                }
                "UNIT" if openmetrics => {}
                _ => return Err(err(format!("unknown metadata {kind:?}"))),
            }
            continue;
        }
        if line.starts_with('#') {
            if openmetrics {
                return Err(err("comment lines are not OpenMetrics".into()));
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("sample without value".into()))?;
        let name = &line[..name_end];
        let (set, rest) = if line[name_end..].starts_with('{') {
            labels(&line[name_end..]).map_err(err)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let (family, ty) = current.as_ref().ok_or_else(|| err("sample before any TYPE".into()))?;
        let suffixes: &[&str] = match (ty.as_str(), openmetrics) {
            ("counter", true) => &["_total", "_created"],
            ("histogram", _) => &["_bucket", "_count", "_sum", "_created"],
            ("summary", _) => &["", "_count", "_sum", "_created"],
            ("info", true) => &["_info"],
            _ => &[""],
        };
        if !suffixes.iter().any(|s| name.strip_suffix(s) == Some(family.as_str())) {
            return Err(err(format!("sample {name} does not belong to family {family} ({ty})")));
        }
        let fields: Vec<&str> =
            rest.strip_prefix(' ').ok_or_else(|| err("no space before value".into()))?.split(' ').collect();
        if fields.is_empty() || fields.len() > 2 || !value(fields[0]) {
            return Err(err(format!("bad value {:?}", rest.trim())));
        }
        if openmetrics && ty == "counter" && fields[0].parse::<f64>().is_ok_and(|v| v < 0.0) {
            return Err(err("negative counter".into()));
        }
        let key = format!("{name}{set:?}");
        if !series.insert(key) {
            return Err(err("series repeated".into()));
        }
    }
    Ok(())
}

#[test]
fn strict_checker_rejects_what_it_should() {
    let ok = "# HELP a_x A.\n# TYPE a_x counter\na_x_total{l=\"q\\\"\\\\\\n\"} 1\n# EOF\n";
    assert_eq!(check(ok, true), Ok(()));
    for bad in [
        "# TYPE a counter\na_total 1\n",                 // no EOF
        "# TYPE a counter\na 1\n# EOF\n",                // counter without _total
        "# TYPE a gauge\na{l=\"x\ty\"} 1\n# EOF\n",      // raw tab
        "# TYPE a gauge\na{l=\"\\x\"} 1\n# EOF\n",       // bad escape
        "# TYPE a gauge\na{l=\"1\",l=\"2\"} 1\n# EOF\n", // duplicate label
        "# TYPE a gauge\na 1\na 2\n# EOF\n",             // repeated series
        "# TYPE a gauge\na one\n# EOF\n",                // bad value
        "# TYPE a gauge\n# TYPE a gauge\n# EOF\n",       // declared twice
        "# TYPE a gauge\na 1\n# EOF\nx\n",               // data after EOF
    ] {
        assert!(check(bad, true).is_err(), "{bad:?}");
    }
}
