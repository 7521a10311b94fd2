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
    use super::quote;

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
