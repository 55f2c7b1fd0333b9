//! Text from the network, made safe for a terminal and fitted to columns.
//!
//! Peer names, hostnames, meta and event names are chosen by whoever sends
//! on the group: printed raw, an escape sequence in one could move the
//! cursor, recolor or retitle the terminal, or hide other lines.

/// `s` with every character a terminal would act on instead of showing
/// replaced by `?`: C0 and C1 controls and DEL (ESC, which starts every
/// escape sequence, and the single-byte CSI among them), line and paragraph
/// separators, and the bidirectional overrides that reorder what follows.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if is_unsafe(c) { '?' } else { c }).collect()
}

/// True for the characters [`clean`] replaces.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A JSON text with the characters [`clean`] replaces written as `\uXXXX`
/// escapes: the same JSON value, safe to print on a terminal. (serde_json
/// escapes only the C0 controls; outside strings JSON is ASCII, so only
/// string contents change.)
pub fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe(c) && !c.is_ascii_control() || c == '\u{7f}' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Columns `c` takes on a terminal: two for the East Asian wide and
/// emoji blocks (Markus Kuhn's `wcwidth` ranges, emoji widened), one
/// otherwise. Off by one for rarer characters at worst; the terminal's
/// line wrapping is off while `top` draws, so a line can only be clipped.
fn columns(c: char) -> usize {
    let c = c as u32;
    let wide = matches!(c,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f000..=0x1faff
        | 0x20000..=0x3fffd);
    if wide {
        2
    } else {
        1
    }
}

/// Columns `s` takes (see [`columns`]).
pub fn width_of(s: &str) -> usize {
    s.chars().map(columns).sum()
}

/// `s` cleaned and cut to at most `width` columns, ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if width_of(s) <= width {
        return clean(s);
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = columns(c);
        // Room for the ellipsis.
        if used + w + 1 > width {
            break;
        }
        out.push(if is_unsafe(c) { '?' } else { c });
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// [`fit`], then padded with spaces to `width` columns (left-aligned).
pub fn cell(s: &str, width: usize) -> String {
    let mut out = fit(s, width);
    let pad = width.saturating_sub(width_of(&out));
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

/// [`fit`], then padded with spaces to `width` columns (right-aligned: numbers).
pub fn cell_right(s: &str, width: usize) -> String {
    let out = fit(s, width);
    let pad = width.saturating_sub(width_of(&out));
    let mut padded: String = std::iter::repeat_n(' ', pad).collect();
    padded.push_str(&out);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_controls_are_neutralized() {
        let hostile = "a\x1b[2J\x1b]0;title\x07b\r\n\u{9b}31m\u{202e}cba\u{7f}";
        let shown = clean(hostile);
        assert!(!shown.chars().any(is_unsafe), "{shown:?}");
        assert_eq!(shown, "a?[2J?]0;title?b???31m?cba?");
        // Plain text is left alone.
        assert_eq!(clean("pricing-1 ünïcode 名前"), "pricing-1 ünïcode 名前");
    }

    #[test]
    fn json_for_terminal_keeps_the_value() {
        let value = serde_json::json!({"name": "x\u{9b}y\u{202e}z\u{7f}", "n": 1});
        let text = json_for_terminal(&value.to_string());
        assert!(!text.chars().any(is_unsafe), "{text}");
        assert!(text.contains("\\u009b") && text.contains("\\u202e") && text.contains("\\u007f"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn cells_fit_their_columns() {
        assert_eq!(cell("abc", 5), "abc  ");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell_right("42", 5), "   42");
        assert_eq!(fit("", 0), "");
        // Wide characters count two columns: never more than asked.
        let wide = cell("名前名前名前", 7);
        assert!(width_of(&wide) <= 7, "{wide}");
        assert!(wide.starts_with("名前名"), "{wide}");
        // Cutting never lets a control character through.
        assert_eq!(fit("\x1b\x1b\x1b\x1b\x1b", 3), "??…");
    }
}
