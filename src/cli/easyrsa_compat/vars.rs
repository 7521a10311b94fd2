//! easy-rsa `vars` files, read without a shell: `set_var NAME VALUE` and `set_var NAME
//! "VALUE"` lines, comments and blank lines, and the guard block easy-rsa's own vars.example
//! carries. Anything else is shell code, which vpnca never runs: it is an error naming the
//! line (easy-rsa itself refuses `export`, `unset`, `NAME=VALUE` and backticks in a vars file).

use std::path::Path;

use anyhow::{Context, Result, bail};
use vpnca::fsutil::{InputLimit, read_bounded};

/// One `set_var` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VarLine {
    /// EASYRSA_CERT_EXPIRE, …
    pub name: String,
    /// The value, quotes removed, `$PWD` expanded.
    pub value: String,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// A vars file, read.
#[derive(Debug, Clone)]
pub(super) struct VarsFile {
    /// In file order; for a name set twice the first line counts (easy-rsa's `set_var` sets
    /// only what is still unset).
    pub vars: Vec<VarLine>,
}

impl VarsFile {
    /// The value of `name`, if the file sets it.
    pub fn get(&self, name: &str) -> Option<&VarLine> {
        self.vars.iter().find(|v| v.name == name)
    }
}

/// Reads and parses the vars file at `path` (at most [`InputLimit::EASYRSA_VARS`]); `pwd`
/// is what `$PWD` stands for.
pub(super) fn read(path: &Path, pwd: &Path) -> Result<VarsFile> {
    let bytes = read_bounded(path, &InputLimit::EASYRSA_VARS)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "the easy-rsa vars file {} is not UTF-8 text",
            path.display()
        )
    })?;
    let vars =
        parse(&text, pwd).with_context(|| format!("easy-rsa vars file {}", path.display()))?;
    Ok(VarsFile { vars })
}

/// The guard block of easy-rsa 3.1/3.2's vars.example (it stops anyone sourcing the file by
/// hand); its lines run nothing here.
const GUARD_START: &str = r#"if [ -z "$EASYRSA_CALLER" ]; then"#;

/// Parses a vars file's text.
pub(super) fn parse(text: &str, pwd: &Path) -> Result<Vec<VarLine>> {
    let mut vars: Vec<VarLine> = Vec::new();
    let mut in_guard = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if in_guard {
            if line == "fi" {
                in_guard = false;
            } else if !(line.starts_with("echo ") || line == "return 1") {
                bail!(not_set_var(n, line));
            }
            continue;
        }
        if line == GUARD_START {
            in_guard = true;
            continue;
        }
        let Some(rest) = line
            .strip_prefix("set_var")
            .filter(|r| r.starts_with([' ', '\t']))
        else {
            bail!(not_set_var(n, line));
        };
        let words = words(rest, pwd).map_err(|e| anyhow::anyhow!("line {n}: {e}: {line}"))?;
        let (name, value) = match words.as_slice() {
            [name] => (name.clone(), String::new()),
            [name, value] => (name.clone(), value.clone()),
            _ => bail!(
                "line {n}: set_var takes a name and one value (quote a value with spaces): {line}"
            ),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("line {n}: {name:?} is not a variable name: {line}");
        }
        if name == "EASYRSA_PASSIN" || name == "EASYRSA_PASSOUT" {
            bail!(
                "line {n}: {name}: a vars file may not hold passwords (easy-rsa refuses it too); give the store passphrase in $VPNCA_PASSPHRASE or --passin=file:FILE"
            );
        }
        if vars.iter().all(|v| v.name != name) {
            vars.push(VarLine {
                name,
                value,
                line: n,
            });
        }
    }
    if in_guard {
        bail!("the `{GUARD_START}` block has no `fi`");
    }
    Ok(vars)
}

fn not_set_var(n: usize, line: &str) -> String {
    format!(
        "line {n}: not a set_var line: {line} (vpnca reads only `set_var NAME VALUE` lines, comments and blank lines of a vars file, and runs no shell code)"
    )
}

/// The shell words of the rest of a `set_var` line: bare words, "double-quoted" (with `$PWD`
/// or `${PWD}` expanded, no other `$`, `` ` `` or `\`), 'single-quoted'; a `#` after blank
/// space starts a comment. Anything that would make a shell do more is refused.
fn words(s: &str, pwd: &Path) -> std::result::Result<Vec<String>, String> {
    let pwd = pwd.display().to_string();
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => break,
                '\'' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => word.push(c),
                            None => return Err("a ' quote is not closed".into()),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('$') => word.push_str(&dollar(&mut chars, &pwd)?),
                            Some('`' | '\\') => {
                                return Err("` and \\ are shell code, not read here".into());
                            }
                            Some(c) => word.push(c),
                            None => return Err("a \" quote is not closed".into()),
                        }
                    }
                }
                '$' => {
                    chars.next();
                    word.push_str(&dollar(&mut chars, &pwd)?);
                }
                '`' | '\\' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '{' | '}' | '*' | '?'
                | '[' | ']' | '~' => {
                    return Err(format!(
                        "{c:?} is shell code, not read here (quote the value)"
                    ));
                }
                c => {
                    chars.next();
                    word.push(c);
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// After a `$`: `PWD` or `{PWD}` becomes `pwd`; any other expansion is refused.
fn dollar(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    pwd: &str,
) -> std::result::Result<String, String> {
    let rest: String = chars.clone().take(5).collect();
    if rest.starts_with("{PWD}") {
        chars.nth(4);
        return Ok(pwd.to_owned());
    }
    if rest.starts_with("PWD")
        && !rest[3..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        chars.nth(2);
        return Ok(pwd.to_owned());
    }
    Err("only $PWD is expanded in a vars file; write the value out".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text, Path::new("/work"))
            .expect("parses")
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect()
    }

    fn err(text: &str) -> String {
        format!(
            "{:#}",
            parse(text, Path::new("/work")).expect_err("refused")
        )
    }

    #[test]
    fn set_var_lines_comments_and_the_guard_block() {
        let text = r#"
# a comment
if [ -z "$EASYRSA_CALLER" ]; then
	echo "You appear to be sourcing an Easy-RSA *vars* file." >&2
	return 1
fi
set_var EASYRSA_CERT_EXPIRE	30
  set_var EASYRSA_REQ_CN "Corp VPN CA"   # trailing comment
set_var EASYRSA_PKI "$PWD/pki"
set_var EASYRSA_DIGEST 'sha512'
set_var EASYRSA_BATCH ""
set_var EASYRSA_CERT_EXPIRE 99
set_var EASYRSA_EXTRA ${PWD}/x
"#;
        assert_eq!(
            ok(text),
            [
                ("EASYRSA_CERT_EXPIRE", "30"),
                ("EASYRSA_REQ_CN", "Corp VPN CA"),
                ("EASYRSA_PKI", "/work/pki"),
                ("EASYRSA_DIGEST", "sha512"),
                ("EASYRSA_BATCH", ""),
                ("EASYRSA_EXTRA", "/work/x"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    /// Negative cases are data: each line is refused with its own reason, never run.
    #[test]
    fn shell_code_is_refused_not_run() {
        for (text, want) in [
            ("export EASYRSA_CERT_EXPIRE=30", "not a set_var line"),
            ("EASYRSA_CERT_EXPIRE=30", "not a set_var line"),
            ("unset EASYRSA_PKI", "not a set_var line"),
            ("rm -rf /tmp/x", "not a set_var line"),
            ("set_var EASYRSA_REQ_CN `hostname`", "shell code"),
            ("set_var EASYRSA_REQ_CN \"$(hostname)\"", "only $PWD"),
            ("set_var EASYRSA_REQ_CN $HOME", "only $PWD"),
            ("set_var EASYRSA_REQ_CN x; touch /tmp/p", "shell code"),
            ("set_var EASYRSA_REQ_CN Corp VPN", "one value"),
            ("set_var EASYRSA_REQ_CN \"open", "not closed"),
            ("set_var EASYRSA_PASSIN pass:x", "passwords"),
            ("set_var easyrsa_x 1", "not a variable name"),
            ("set_varEASYRSA_X 1", "not a set_var line"),
            (
                "if [ -z \"$EASYRSA_CALLER\" ]; then\nrm -rf /\nfi",
                "not a set_var line",
            ),
            ("if [ -z \"$EASYRSA_CALLER\" ]; then\necho x", "no `fi`"),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
