//! What every command prints, and how: the `outln!`, `outp!` and `errln!` macros (standard
//! output and error that never panic), [`Out`] (`--json` or human text), warnings, and the
//! shapes certificates and CRLs are printed in (docs/json.md).

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

/// `eprintln!` for the CLI: standard error that cannot be written is ignored (there is nowhere
/// left to say so), never a panic.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::cli::output::err_fmt(format_args!("{}\n", format_args!($($t)*)))
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
/// nothing more is written.
pub(crate) fn out_fmt(args: std::fmt::Arguments<'_>) {
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_none()
        && let Err(e) = std::io::stdout().lock().write_fmt(args)
    {
        *failed = Some(e);
    }
}

/// Records a failure to write standard output met outside [`out_fmt`] (buffered writers).
pub(super) fn stdout_failed(e: std::io::Error) {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(e);
}

/// Writes to standard error; a failure is ignored.
pub(crate) fn err_fmt(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
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
}

/// A name or argument as one shell word, quoted only when needed (`alice`, `'Hans Peter'`):
/// every command vpnca suggests, and every name in its messages, goes through it so that it
/// can be copied as it is. The rules are [`vpnca::shell::quote`]'s, which library messages use
/// too.
pub(super) fn sh(s: &str) -> std::borrow::Cow<'_, str> {
    vpnca::shell::quote(s)
}

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
        r.name,
        r.status(vpnca::store_now()).as_str(),
        vpnca::fmt_time(r.not_after),
        r.serial
    )
}

pub(super) fn print_issued(out: &Out, store: &Store, r: &CertRecord) {
    out.doc(&record_json(r), || {
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
