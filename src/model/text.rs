//! Cluster strings made safe for text output (terminal, log line, HTML, label value).
//!
//! Anyone who can write an object's status chooses its phase, reasons and messages. Printed raw,
//! an `ESC [` sequence recolours or rewrites the on-call engineer's terminal, a newline forges a
//! report or log line, a bidi override reorders what is read. [`neutralise_into`] renders every
//! such character visibly instead (`\x1b`, `\n`, `\u{202e}`) and cuts the string at a byte bound
//! with a visible marker (`…[+N bytes]`). JSON output does not use this: serde_json escapes
//! control characters itself and keeps the value exact.

use std::borrow::Cow;

/// The bound for one value in text reports, logs and the landing page.
pub const MAX_TEXT: usize = 4096;

/// Whether `c` must not reach a terminal or a line-oriented reader as itself: C0 controls
/// (tab included, so columns stay aligned), DEL, C1 controls (U+0080–U+009F, 8-bit CSI among
/// them), line and paragraph separators and the bidirectional overrides and isolates.
pub fn is_unsafe(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `s` to `out` with unsafe characters rendered visibly and at most `max` bytes of
/// `s` kept (cut at a character boundary), followed by `…[+N bytes]` when cut.
pub fn neutralise_into(out: &mut String, s: &str, max: usize) {
    let (kept, cut) = split_at_bound(s, max);
    if !kept.chars().any(is_unsafe) {
        out.push_str(kept);
    } else {
        for c in kept.chars() {
            push_char(out, c);
        }
    }
    if cut > 0 {
        out.push_str("…[+");
        out.push_str(itoa::Buffer::new().format(cut));
        out.push_str(" bytes]");
    }
}

/// `s` neutralised and bounded at [`MAX_TEXT`]; borrowed when nothing had to change.
pub fn display(s: &str) -> Cow<'_, str> {
    bounded(s, MAX_TEXT)
}

/// `s` neutralised and bounded at `max` bytes; borrowed when nothing had to change.
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max && !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max) + 16);
    neutralise_into(&mut out, s, max);
    Cow::Owned(out)
}

/// The longest prefix of at most `max` bytes ending on a character boundary, and how many
/// bytes were left off.
fn split_at_bound(s: &str, max: usize) -> (&str, usize) {
    if s.len() <= max {
        return (s, 0);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], s.len() - end)
}

fn push_char(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && is_unsafe(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_rendered_visibly() {
        assert_eq!(display("\x1b[31mred\x1b[0m\x07\0"), "\\x1b[31mred\\x1b[0m\\x07\\x00");
        assert_eq!(display("a\nb\r\tc\x7f"), "a\\nb\\r\\tc\\x7f");
        assert_eq!(display("\u{9b}2J \u{202e}txt \u{2028}"), "\\u{9b}2J \\u{202e}txt \\u{2028}");
    }

    #[test]
    fn safe_text_is_borrowed_unchanged() {
        for s in ["Running", "ünïcødé ✓ 日本", "quotes \" and \\ stay", ""] {
            assert!(matches!(display(s), Cow::Borrowed(x) if x == s), "{s}");
        }
    }

    #[test]
    fn long_text_cut_at_char_boundary_with_marker() {
        assert_eq!(bounded("abcdef", 4), "abcd…[+2 bytes]");
        // 'é' is two bytes: a bound inside it keeps the character out.
        assert_eq!(bounded("aé", 2), "a…[+2 bytes]");
        let big = "x".repeat(1 << 20);
        let shown = display(&big);
        assert!(shown.len() < MAX_TEXT + 32, "{}", shown.len());
        assert!(shown.ends_with(&format!("…[+{} bytes]", (1 << 20) - MAX_TEXT)), "{shown:.40}");
    }

    #[test]
    fn output_never_contains_unsafe_characters() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let shown = bounded(&all, usize::MAX);
        assert!(!shown.chars().any(is_unsafe));
    }
}
