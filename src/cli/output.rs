//! What every command prints, and how: the `outln!`, `outp!` and `errln!` macros (standard
//! output and error that never panic), [`Out`] (`--json` or human text), warnings, and the
//! shapes certificates and CRLs are printed in (docs/json.md).
//!
//! Nothing read from the store reaches the terminal as it is (docs/security.md#terminal-output):
//! each stored field in a line of text goes through [`printable`] (a newline in a name cannot
//! forge a line), everything written to standard output goes through
//! [`vpnca::shell::printable_text`] at the end (no control sequence, whatever printed it: a
//! library message, a JSON line, which stays the same JSON), and each message to standard error
//! is one line ([`err_line`]).

/// `println!` for the CLI: a failure to write standard output (a full disk, a closed pipe) is
/// recorded for `main` to report, never a panic; later output is dropped.
macro_rules! outln {
    () => {
        $crate::cli::output::out_fmt(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::cli::output::out_fmt(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `print!` for the CLI, see [`outln!`].
macro_rules! outp {
    ($($t:tt)*) => {
        $crate::cli::output::out_fmt(format_args!($($t)*))
    };
}

/// `eprintln!` for the CLI: one message, one line (see [`err_line`]); standard error that
/// cannot be written is ignored (there is nowhere left to say so), never a panic.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::cli::output::err_line(format_args!($($t)*))
    };
}

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use vpnca::{CertRecord, Store};

/// The first error writing standard output; `main` reports it.
pub(super) static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> =
    std::sync::Mutex::new(None);

/// Writes to standard output, recording the first failure instead of panicking; after one,
/// nothing more is written. Control and invisible characters are escaped ([`terminal`]).
pub(crate) fn out_fmt(args: std::fmt::Arguments<'_>) {
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_none()
        && let Err(e) = std::io::stdout()
            .lock()
            .write_all(terminal(args).as_bytes())
    {
        *failed = Some(e);
    }
}

/// `args` formatted, with every control character other than the line break and the tab, and
/// every invisible formatting character, written as a visible escape
/// ([`vpnca::shell::printable_text`]). Standard output and error carry only this.
pub(super) fn terminal(args: std::fmt::Arguments<'_>) -> String {
    let text = args.to_string();
    match vpnca::shell::printable_text(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// Records a failure to write standard output met outside [`out_fmt`] (buffered writers).
pub(super) fn stdout_failed(e: std::io::Error) {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(e);
}

/// Writes one message to standard error as one line, every control character in it (a line
/// break too: an error quoting a stored name cannot forge a second line) and every invisible
/// one written as a visible escape ([`printable`]); a failure is ignored.
pub(crate) fn err_line(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut line = printable(&text).into_owned();
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// How a command prints its result: one JSON document (`--json`) or text for people.
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    /// Prints `v` as one JSON line with `--json`, else runs `human`.
    pub(super) fn doc(&self, v: &Value, human: impl FnOnce()) {
        if self.json {
            outln!("{v}");
        } else {
            human();
        }
    }

    /// [`Out::doc`] for a command that changed the store: the document carries the store's
    /// new head ([`with_head`]).
    pub(super) fn changed(&self, store: &Store, mut v: Value, human: impl FnOnce()) {
        if self.json {
            with_head(store, &mut v);
        }
        self.doc(&v, human);
    }
}

/// Adds `state_head` to the JSON object `v`: the store's head now, `SEQ:ROOT` as `vpnca
/// verify` prints it, for a script to note outside the store and check later with
/// `vpnca verify --head` (docs/json.md#the-state-head); null for a format-1 store. Every
/// command that changes the store prints it (JSON lines: in each line printed after the store
/// was opened, the last one holding the head after the whole batch).
pub(super) fn with_head(store: &Store, v: &mut Value) {
    if let Value::Object(m) = v {
        m.insert(
            "state_head".into(),
            json!(store.state_head().ok().flatten()),
        );
    }
}

/// A name or argument as one shell word, quoted only when needed (`alice`, `'Hans Peter'`):
/// every command vpnca suggests, and every name in its messages, goes through it so that it
/// can be copied as it is. The rules are [`vpnca::shell::quote`]'s, which library messages use
/// too.
pub(super) fn sh(s: &str) -> std::borrow::Cow<'_, str> {
    vpnca::shell::quote(s)
}

/// A stored field (a name, a `$USER`, a subject) as one line of text shows it: control
/// characters, line breaks included, and invisible ones as visible escapes (`al\x1bice`,
/// `\u202e`), anything else as it is (`José`). See [`vpnca::shell::printable`].
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    vpnca::shell::printable(s)
}

/// What readers without the passphrase say when the store has no state-signing key yet.
pub(super) const UNVERIFIED: &str = "read from the database unverified: the store has no state-signing key yet (a store made by an older vpnca, or a format-1 store); run `vpnca verify` once with the passphrase to certify one";

/// `warning: …` on standard error.
pub(super) fn warn(msg: &str) {
    errln!("warning: {msg}");
}

pub(super) fn record_json(r: &CertRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "status".into(),
            json!(r.status(vpnca::store_now()).as_str()),
        );
    }
    v
}

pub(super) fn human_record(r: &CertRecord) -> String {
    format!(
        "{:<7} {:<32} {:<10} expires {}  serial {}",
        r.kind.as_str(),
        printable(&r.name),
        r.status(vpnca::store_now()).as_str(),
        vpnca::fmt_time(r.not_after),
        r.serial
    )
}

pub(super) fn print_issued(out: &Out, store: &Store, r: &CertRecord) {
    out.changed(store, record_json(r), || {
        outln!("Issued {} certificate {} (serial {}), valid until {}", r.kind.as_str(), sh(&r.name), r.serial, vpnca::fmt_time(r.not_after));
        outln!("Certificate: {}", store.issued_path(&r.name).display());
        if r.has_key {
            outln!("Its key is encrypted in the store; `vpnca export {} --out DIR --key` writes it out.", sh(&r.name));
        }
    });
}

pub(super) fn crl_json(c: &vpnca::CrlInfo, path: &Path) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("path".into(), json!(path));
    }
    v
}
