//! Untrusted text (object keys, input lines, field values, SQS bodies) as
//! it appears in log lines and error messages: escaped with
//! `escape_debug`, so control characters, odd Unicode and quotes cannot
//! forge or break a log line, and cut short, so a long input does not
//! become a long record. One home, so every quote of input looks alike.

/// How many characters of an input value [`shown`] quotes.
pub const SHOWN_CHARS: usize = 64;

/// `text` quoted for a log line: at most [`SHOWN_CHARS`] characters,
/// escaped, in double quotes, with `…` after the quote marking truncation.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(SHOWN_CHARS * 2) + 4);
    out.push('"');
    let truncated = push_escaped(&mut out, text, SHOWN_CHARS);
    out.push('"');
    if truncated {
        out.push('…');
    }
    out
}

/// An unquoted excerpt of `text`: its first `max_chars` characters,
/// escaped, with `…` marking truncation.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    if push_escaped(&mut out, text, max_chars) {
        out.push('…');
    }
    out
}

/// Appends the first `max_chars` characters of `text`, escaped; returns
/// whether any were left out.
fn push_escaped(out: &mut String, text: &str, max_chars: usize) -> bool {
    let mut chars = text.chars();
    for c in chars.by_ref().take(max_chars) {
        out.extend(c.escape_debug());
    }
    chars.next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_truncates_and_escapes() {
        assert_eq!(shown("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "x".repeat(100);
        let s = shown(&long);
        assert!(s.ends_with('…'));
        assert_eq!(s.chars().filter(|c| *c == 'x').count(), 64);
        assert_eq!(shown(&"é".repeat(64)), format!("\"{}\"", "é".repeat(64)));
        assert_eq!(shown("\u{202e}"), "\"\\u{202e}\"");
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("a\tb\"c", 120), "a\\tb\\\"c");
        let long = "x".repeat(500);
        let e = excerpt(&long, 120);
        assert_eq!(e.chars().count(), 121);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt(&"y".repeat(120), 120), "y".repeat(120));
    }
}
