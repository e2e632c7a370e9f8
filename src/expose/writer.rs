//! A direct writer of the exposition formats for the per-object families.
//!
//! These families hold one series per object per metric (a few million lines at 100k
//! objects), so they are written straight into the output buffer: each object's label set is
//! escaped once and copied into every series, values are formatted with itoa/ryu, and the
//! lines that did not change since the previous render are copied as they were
//! ([`Family::raw`], kept by the renderer's cache). prometheus-client still encodes the small fixed families (watch health, self,
//! process) and the output formats are identical in shape.

use crate::{expose::Format, model::text};

/// The family types the per-object families use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Gauge,
    Counter,
}

/// An exposition being written, in one format.
pub struct Writer {
    pub out: String,
    format: Format,
}

impl Writer {
    /// An empty exposition with `capacity` bytes reserved.
    pub fn new(format: Format, capacity: usize) -> Writer {
        Writer::reusing(format, String::with_capacity(capacity))
    }

    /// An exposition written into `out` (cleared first), reusing its allocation.
    pub fn reusing(format: Format, mut out: String) -> Writer {
        out.clear();
        Writer { out, format }
    }

    /// Writes the HELP and TYPE lines and returns a writer for the family's samples.
    /// `name` is without the `stallwatch_` prefix and, for counters, without `_total`.
    pub fn family(&mut self, name: &str, help: &str, ty: Type) -> Family<'_> {
        let mut sample = String::with_capacity(name.len() + 17);
        sample.push_str("stallwatch_");
        sample.push_str(name);
        let described = match (ty, self.format) {
            (Type::Counter, Format::Text004) => {
                sample.push_str("_total");
                sample.clone()
            }
            (Type::Counter, Format::OpenMetrics) => {
                let base = sample.clone();
                sample.push_str("_total");
                base
            }
            (Type::Gauge, _) => sample.clone(),
        };
        let o = &mut self.out;
        o.push_str("# HELP ");
        o.push_str(&described);
        o.push(' ');
        o.push_str(help);
        o.push_str("\n# TYPE ");
        o.push_str(&described);
        o.push_str(if ty == Type::Counter { " counter\n" } else { " gauge\n" });
        Family { out: &mut self.out, sample }
    }
}

/// Writes the samples of one family.
pub struct Family<'a> {
    out: &'a mut String,
    sample: String,
}

impl Family<'_> {
    /// One sample: `prefix` is an already escaped `k="v",…` list (see [`labels`]); `extra`
    /// labels are escaped here.
    pub fn sample(&mut self, prefix: &str, extra: &[(&str, &str)], value: f64) {
        sample(self.out, &self.sample, prefix, extra, value);
    }

    /// Appends bytes already written as whole samples of this family (pre-rendered lines).
    pub fn raw(&mut self, lines: &str) {
        self.out.push_str(lines);
    }

    /// Appends a pre-rendered [`head`] and the value that completes it.
    pub fn value_after(&mut self, head: &str, value: f64) {
        self.out.push_str(head);
        push_value(self.out, value);
        self.out.push('\n');
    }
}

/// One sample line of the family whose sample name is `name` (with `stallwatch_`, and
/// `_total` for a counter), as [`Family::sample`] writes it.
pub fn sample(out: &mut String, name: &str, prefix: &str, extra: &[(&str, &str)], value: f64) {
    head(out, name, prefix, extra);
    push_value(out, value);
    out.push('\n');
}

/// A sample line up to its value: the name, the labels and the space before the value.
pub fn head(out: &mut String, name: &str, prefix: &str, extra: &[(&str, &str)]) {
    out.push_str(name);
    if !prefix.is_empty() || !extra.is_empty() {
        out.push('{');
        out.push_str(prefix);
        for (i, (k, v)) in extra.iter().enumerate() {
            if i > 0 || !prefix.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_into(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// A boolean as a sample value: 1 or 0.
pub fn gauge_bool(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// `k="v",…` with values escaped, to be reused as the prefix of many samples.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 4).sum());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape_into(&mut s, v);
        s.push('"');
    }
    s
}

/// The longest label value written, in bytes: longer values (a 20 KB condition reason) are cut
/// at a character boundary and end in `…[+N bytes]`. Room for any valid name, label value or
/// image reference with digest.
pub const MAX_LABEL_VALUE: usize = 1024;

/// Label-value escaping of both formats (backslash, double quote and newline), bounded at
/// [`MAX_LABEL_VALUE`] bytes; other control characters, escape sequences and bidi overrides
/// from the cluster are written visibly (`\x1b` arrives in an alert as the text `\x1b`).
pub fn escape_into(out: &mut String, v: &str) {
    if v.len() <= MAX_LABEL_VALUE
        && !v.bytes().any(|b| b < 0x20 || matches!(b, b'\\' | b'"' | 0x7f | 0xc2 | 0xe2))
    {
        out.push_str(v);
        return;
    }
    let mut end = v.len().min(MAX_LABEL_VALUE);
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    let mut one = [0u8; 4];
    for c in v[..end].chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if text::is_unsafe(c) => {
                // The visible form starts with a backslash, which the format escapes.
                let mut shown = String::new();
                text::neutralise_into(&mut shown, c.encode_utf8(&mut one), usize::MAX);
                out.push('\\');
                out.push_str(&shown);
            }
            c => out.push(c),
        }
    }
    if end < v.len() {
        out.push_str("…[+");
        out.push_str(itoa::Buffer::new().format(v.len() - end));
        out.push_str(" bytes]");
    }
}

/// Integral values as integers (`3`, not `3.0`), others shortest round-trip; NaN and
/// infinities as the formats spell them.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        out.push_str(ryu::Buffer::new().format(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_in_both_formats() {
        for (format, help_name, sample_name) in [
            (Format::Text004, "stallwatch_x_total", "stallwatch_x_total"),
            (Format::OpenMetrics, "stallwatch_x", "stallwatch_x_total"),
        ] {
            let mut e = Writer::new(format, 0);
            let mut f = e.family("x", "Things.", Type::Counter);
            f.sample(&labels(&[("a", "1")]), &[("b", "q\"\\\n")], 3.0);
            f.sample("", &[], 0.5);
            assert_eq!(
                e.out,
                format!(
                    "# HELP {help_name} Things.\n# TYPE {help_name} counter\n{sample_name}{{a=\"1\",b=\"q\\\"\\\\\\n\"}} 3\n{sample_name} 0.5\n"
                )
            );
        }
    }

    #[test]
    fn values() {
        let v = |x: f64| {
            let mut s = String::new();
            push_value(&mut s, x);
            s
        };
        assert_eq!(v(1_704_067_200.0), "1704067200");
        assert_eq!(v(-2.0), "-2");
        assert_eq!(v(0.25), "0.25");
        assert_eq!(v(f64::NAN), "NaN");
        assert_eq!(v(f64::INFINITY), "+Inf");
        assert_eq!(v(1e300), "1e300");
    }

    #[test]
    fn extra_labels_without_prefix() {
        let mut e = Writer::new(Format::Text004, 0);
        e.family("n", "N.", Type::Gauge).sample("", &[("condition", "ready")], 2.0);
        assert!(e.out.ends_with("stallwatch_n{condition=\"ready\"} 2\n"), "{}", e.out);
    }

    #[test]
    fn label_values_bounded_and_controls_visible() {
        let esc = |v: &str| {
            let mut s = String::new();
            escape_into(&mut s, v);
            s
        };
        assert_eq!(esc("a\x1b[31m\x07\0\u{202e}"), r"a\\x1b[31m\\x07\\x00\\u{202e}");
        assert_eq!(esc("ünïcødé ✓"), "ünïcødé ✓");
        let long = esc(&"r".repeat(20_000));
        assert_eq!(long, format!("{}…[+{} bytes]", "r".repeat(MAX_LABEL_VALUE), 20_000 - MAX_LABEL_VALUE));
        // A cut inside a multi-byte character keeps the text valid UTF-8 and the quotes balanced.
        let cut = esc(&format!("{}é\"", "x".repeat(MAX_LABEL_VALUE - 1)));
        assert!(cut.ends_with("x…[+3 bytes]"), "{cut}");
    }
}
