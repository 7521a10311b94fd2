//! Names and arguments as a user would type them into a shell: every command vpnca suggests
//! (`vpnca export 'Hans Peter' --out DIR --key`) and every name in a message goes through
//! [`quote`], so that it can be copied as it is and shows what the name really holds.

use std::borrow::Cow;

/// `s` as one POSIX shell word, quoted only when it has to be.
///
/// - Letters (any script), digits and `-_./:@%+,` and `=` (not first) are left as they are:
///   `alice`, `vpn.example.com`, `José`.
/// - Anything else (spaces, `*`, `$`, quotes, …) is put in single quotes, a `'` in it written
///   as `'\''`: `'Hans Peter'`, `'O'\''Brien'`, `''` for the empty string.
/// - A character that does not show what it is (control characters, white space other than
///   the ASCII space, zero-width and bidirectional formatting characters) makes the word
///   `$'…'` (dollar-single-quotes, POSIX.1-2024, bash, zsh, ksh) with that character's UTF-8
///   bytes as `\xHH`: `$'bob\n'`, `$'Hans\xc2\xa0Peter'`. A name can then never rewrite the
///   terminal or pass for another.
pub fn quote(s: &str) -> Cow<'_, str> {
    if !s.is_empty() && s.char_indices().all(|(i, c)| plain(c, i == 0)) {
        return Cow::Borrowed(s);
    }
    if s.chars().any(hidden) {
        let mut out = String::with_capacity(s.len() + 8);
        out.push_str("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if hidden(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return Cow::Owned(out);
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    out.push_str(&s.replace('\'', r"'\''"));
    out.push('\'');
    Cow::Owned(out)
}

/// `s` as a terminal shows it faithfully, for a field in a line of text (a name in `list`, the
/// `$USER` of an audit entry): every character that [`quote`] would write as an escape is
/// replaced by a visible one, nothing else changes (`José`, `Hans Peter`, quotes and `\\` stay).
///
/// - ASCII controls: `\n`, `\t`, `\r`, else `\xHH` (`\x1b`, `\x07`).
/// - Any other (DEL, C1 controls such as U+009B CSI, white space other than the space,
///   bidirectional and invisible formatting characters): `\uXXXX` in UTF-16 (`\u202e`,
///   `\u00a0`, a pair for a character above U+FFFF), the form JSON uses too, so that a JSON
///   document escaped this way is still the same JSON ([`printable_text`]).
///
/// Unlike [`quote`], the result is not meant to be read back: a `\` is left as it is.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// [`printable`] for whole messages and documents: line breaks and tabs are kept, every other
/// control or invisible character escaped. What the CLI writes to standard output and error
/// passes through it, last, whatever it is (vpnca's text, a library error, a JSON line).
/// JSON stays valid and means the same: serde_json already writes `\u001b` for the ASCII
/// controls, and the others become the `\uXXXX` escapes JSON reads back as the same string.
pub fn printable_text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let shown = |c: char| !hidden(c) || (keep_lines && (c == '\n' || c == '\t'));
    if s.chars().all(shown) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            c if shown(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => {
                for unit in c.encode_utf16(&mut [0u16; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    Cow::Owned(out)
}

/// A character that needs no quoting (`first`: at the start of the word, where `=` is zsh's
/// command-path expansion).
fn plain(c: char, first: bool) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "-_./:@%+,".contains(c) || (c == '=' && !first)
    } else {
        !hidden(c)
    }
}

/// A character that must be written as an escape to be seen: controls, white space other than
/// the space, and the invisible formatting characters (Unicode's default-ignorable code points
/// and bidirectional controls).
fn hidden(c: char) -> bool {
    if c == ' ' {
        return false;
    }
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c as u32,
            0xAD | 0x34F
                | 0x61C
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFFB
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

#[cfg(test)]
mod tests {
    use super::{printable, printable_text, quote};

    // Fails when: a control, C1 or bidi character is left as it is, or a visible character
    // (José, a quote, a backslash) is escaped.
    #[test]
    fn printable_escapes_what_a_terminal_would_obey() {
        for (raw, want) in [
            ("alice", "alice"),
            ("José", "José"),
            ("Jose\u{301}", "Jose\u{301}"),
            ("O'Brien \\ \"x\"", "O'Brien \\ \"x\""),
            ("a\u{1b}]0;title\u{7}b", r"a\x1b]0;title\x07b"),
            ("a\u{1b}[2J", r"a\x1b[2J"),
            ("bob\nmallory\t\r", r"bob\nmallory\t\r"),
            ("x\u{9b}2J\u{7f}", r"x\u009b2J\u007f"),
            ("ab\u{202e}c", r"ab\u202ec"),
            ("Hans\u{a0}Peter", r"Hans\u00a0Peter"),
            ("tag\u{e0041}", r"tag\udb40\udc41"),
        ] {
            assert_eq!(printable(raw), want, "{raw:?}");
        }
        assert_eq!(
            printable_text("line 1\n\tline 2\u{1b}[A\n"),
            "line 1\n\tline 2\\x1b[A\n"
        );
    }

    /// A JSON line escaped by `printable_text` is still JSON, and means the same.
    // Fails when: DEL or a C1 control is written as `\xHH` (not JSON), or a character above
    // U+FFFF as anything but a UTF-16 pair.
    #[test]
    fn printable_text_keeps_json_the_same() {
        let raw = "a\u{1b}]0;t\u{7}\u{9b}[2J\u{202e}\u{7f}\u{a0}\u{e0041}\n\\José\"";
        let line = serde_json::json!({ "name": raw }).to_string();
        let shown = printable_text(&line);
        assert!(
            !shown.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{7f}']),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(back["name"], raw);
    }

    #[test]
    fn quotes_only_what_needs_it() {
        for (raw, want) in [
            ("alice", "alice"),
            ("vpn.example.com", "vpn.example.com"),
            ("alice@example.com", "alice@example.com"),
            ("Jose\u{301}", "Jose\u{301}"),
            ("a=b", "a=b"),
            ("=cmd", "'=cmd'"),
            ("", "''"),
            ("Hans Peter", "'Hans Peter'"),
            ("O'Brien", r"'O'\''Brien'"),
            ("*.example.com", "'*.example.com'"),
            ("$(id)", "'$(id)'"),
            ("~root", "'~root'"),
            ("bob\n", r"$'bob\n'"),
            ("a\u{1b}[2Jb", r"$'a\x1b[2Jb'"),
            ("Hans\u{a0}Peter", r"$'Hans\xc2\xa0Peter'"),
            ("ab\u{202e}c", r"$'ab\xe2\x80\xaec'"),
            ("it's\tme\\", r"$'it\'s\tme\\'"),
        ] {
            assert_eq!(quote(raw), want, "{raw:?}");
        }
    }

    /// What a POSIX shell (dash, and bash for `$'…'`) reads back is the original string.
    #[test]
    fn a_shell_reads_back_the_original() {
        for (shell, raw) in [
            ("sh", "Hans Peter"),
            ("sh", "O'Brien"),
            ("sh", "*.example.com"),
            ("sh", "$(id) `id` \"x\" ; & | < > ! # ~ { } [ ] ? \\"),
            ("sh", "José"),
            ("bash", "bob\n\t\r\u{1b}\u{7f}"),
            ("bash", "Hans\u{a0}Peter\u{202e}\u{200b}"),
            ("bash", "it's \\ me"),
        ] {
            let script = format!("printf %s {}", quote(raw));
            let o = std::process::Command::new(shell)
                .args(["-c", &script])
                .output()
                .unwrap_or_else(|e| panic!("{shell} is required: {e}"));
            assert!(o.status.success(), "{script}");
            assert_eq!(String::from_utf8_lossy(&o.stdout), raw, "{script}");
        }
    }
}
