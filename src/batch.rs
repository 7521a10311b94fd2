//! Batches: many certificates issued, signed or revoked by one command.
//!
//! Input files are CSV with a header line or JSON lines (one object per line), UTF-8 with or
//! without BOM, LF or CRLF ([`read_records`]). The whole input is checked before anything is
//! done ([`parse_issue_rows`], [`parse_revoke_rows`]).
//!
//! Issuing ([`Store::issue_stream`]) unlocks once, generates keys and signs on all cores, and
//! commits the results in chunks: each chunk is one transaction, so a SIGKILL loses at most
//! the chunk being written and never leaves half a record; a re-run reports what exists and
//! issues the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::ca::{IssueRequest, Signed, Subject, Target, Validity, sign_prepared};
use crate::cert::{CertKind, CertRecord, CertState, RevocationReason};
use crate::crl::CrlOutcome;
use crate::export::Existing;
use crate::name::San;
use crate::ovpn::{ProfileBase, ProfileContext};
use crate::serial::Serial;
use crate::store::{self, Store, audit_append, update_record};
use crate::{Error, Result, fsutil};

/// Certificates committed per transaction by default.
pub const DEFAULT_CHUNK: usize = 250;

/// The longest field accepted in a batch file (a name is at most 64 characters; SAN lists can
/// be longer).
const MAX_FIELD_BYTES: usize = 4096;

/// The input format of a batch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl std::str::FromStr for BatchFormat {
    type Err = Error;
    /// `csv`, `jsonl` (or `json`), in any case.
    fn from_str(s: &str) -> Result<BatchFormat> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(BatchFormat::Csv),
            "jsonl" | "json" => Ok(BatchFormat::Jsonl),
            _ => Err(Error::input(
                "--format",
                format!("{s:?} is not csv or jsonl"),
            )),
        }
    }
}

/// One input record: its line number and its fields by (lower-case) column name.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based line number in the input.
    pub line: usize,
    /// Field values by column name; empty values are left out.
    pub fields: BTreeMap<String, String>,
    /// A problem that makes the whole record unusable (e.g. a malformed JSON line).
    pub error: Option<String>,
}

/// A bad input line.
#[derive(Debug, Clone, Serialize)]
pub struct RowError {
    /// 1-based line number (0 when the item is a file, see `file`).
    pub line: usize,
    /// The input file, for batches of files (sign-req).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The name on that line, when there is one.
    pub name: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl RowError {
    /// An error on the line of `r`, naming its name when it has one.
    fn at(r: &Record, reason: String) -> RowError {
        RowError {
            line: r.line,
            file: None,
            name: r.fields.get("name").cloned(),
            reason,
        }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match &self.file {
            Some(file) => file.clone(),
            None => format!("line {}", self.line),
        };
        match &self.name {
            Some(n) => write!(f, "{at} ({}): {}", crate::shell::quote(n), self.reason),
            None => write!(f, "{at}: {}", self.reason),
        }
    }
}

/// Columns of identity-provider user exports that are read as `name` when the file has none of
/// the command's required columns (`name`; for revocations `name` or `serial`): Okta's
/// `login`, SCIM's and Okta reports' `userName`, Azure AD's (Entra ID's) `userPrincipalName`,
/// Google Workspace's `primaryEmail`, compared without case. Exactly one of them must be there:
/// with two or more, vpnca does not guess and asks for `--column name=COLUMN`.
pub const NAME_ALIASES: &[&str] = &["username", "login", "userprincipalname", "primaryemail"];

/// Columns read as `email` when the file has no `email` column: Azure AD's `mail`. (Okta's and
/// SCIM exports call it `email` already.)
pub const EMAIL_ALIASES: &[&str] = &["mail"];

/// One of our columns read from a column of the file under another name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappedColumn {
    /// Our column (`name`, `email`, …).
    pub column: String,
    /// The file's column, as spelt in its header (or first JSON line that has it).
    pub from: String,
    /// Recognised from [`NAME_ALIASES`] / [`EMAIL_ALIASES`] (not given with `--column`).
    pub automatic: bool,
}

/// How the columns of a batch file were read: what was mapped, what was left unread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnReport {
    /// Our columns read from a column of another name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped: Vec<MappedColumn>,
    /// The file's columns that vpnca does not read, each once, as spelt in the file (header
    /// order; for JSON lines, order of first appearance).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Ignored columns that look like a misspelling of one of our columns that is not read
    /// (`emial` → `email`): (theirs, ours), for a warning.
    #[serde(skip)]
    pub near_misses: Vec<(String, String)>,
}

impl ColumnReport {
    /// True when every column was read under its own name.
    pub fn is_empty(&self) -> bool {
        self.mapped.is_empty() && self.ignored.is_empty()
    }
}

/// A batch file read: its records, and how its columns were read.
#[derive(Debug, Clone)]
pub struct Batch {
    /// One record per non-empty line.
    pub records: Vec<Record>,
    /// Mapped and ignored columns.
    pub columns: ColumnReport,
}

/// Parses `--column OURS=THEIRS` arguments (OURS one of `known`, THEIRS a column of the file,
/// compared without case; each OURS at most once). Returns (ours, theirs) pairs.
pub fn parse_column_map(args: &[String], known: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in args {
        let bad = |reason: String| Error::input(format!("--column {a:?}"), reason);
        let Some((ours, theirs)) = a.split_once('=') else {
            return Err(bad(
                "expected OURS=THEIRS, our column then the file's, e.g. name=login".into(),
            ));
        };
        let (ours, theirs) = (ours.trim().to_ascii_lowercase(), theirs.trim());
        if ours.is_empty() || theirs.is_empty() {
            return Err(bad(
                "expected OURS=THEIRS, our column then the file's, e.g. name=login".into(),
            ));
        }
        if !known.contains(&ours.as_str()) {
            return Err(bad(format!(
                "{ours:?} is not a column this command reads (its columns: {})",
                known.join(", ")
            )));
        }
        if out.iter().any(|(o, _)| *o == ours) {
            return Err(bad(format!("the {ours} column is mapped twice")));
        }
        out.push((ours, theirs.to_owned()));
    }
    Ok(out)
}

/// Reads a batch file into records. `allowed` lists the column names the caller understands;
/// `required` must be among the header's columns (CSV) — one of them, when several are given.
/// Other columns are ignored; an identity-provider export without a `name` column is read
/// through [`NAME_ALIASES`] and [`EMAIL_ALIASES`]. [`read_batch`] also takes an explicit
/// mapping and says which columns were mapped or ignored. File-level problems (binary data, no
/// header, unbalanced quotes, a repeated column) are errors; problems of single lines are left
/// in [`Record::error`] for the caller.
pub fn read_records(
    data: &[u8],
    format: Option<BatchFormat>,
    source: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<Vec<Record>> {
    read_batch(data, format, source, allowed, required, &[]).map(|b| b.records)
}

/// [`read_records`] with an explicit column mapping `map` of (ours, theirs) pairs (see
/// [`parse_column_map`]; `--column name=login`), which wins over a column named like ours and
/// over the automatic aliases. Returns the records and a [`ColumnReport`].
pub fn read_batch(
    data: &[u8],
    format: Option<BatchFormat>,
    source: &str,
    allowed: &[&str],
    required: &[&str],
    map: &[(String, String)],
) -> Result<Batch> {
    let bad = |reason: String| Error::input(format!("batch file {source}"), reason);
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    if data.contains(&0) {
        return Err(bad(
            "it contains NUL bytes: a binary file, not CSV or JSON lines".into(),
        ));
    }
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        bad(format!("line {line} is not UTF-8 text"))
    })?;
    if text.trim().is_empty() {
        return Err(bad(format!(
            "it is empty (expected a CSV header such as `{}` or JSON lines)",
            required.join(",")
        )));
    }
    let format = format.unwrap_or_else(|| {
        if text.trim_start().starts_with('{') {
            BatchFormat::Jsonl
        } else {
            BatchFormat::Csv
        }
    });
    let spec = Spec {
        allowed,
        required,
        map,
    };
    match format {
        BatchFormat::Csv => read_csv(text, &spec).map_err(bad),
        BatchFormat::Jsonl => read_jsonl(text, &spec).map_err(bad),
    }
}

/// What the caller reads.
struct Spec<'a> {
    allowed: &'a [&'a str],
    required: &'a [&'a str],
    map: &'a [(String, String)],
}

/// Why the columns of a file cannot be read; `no_required` when none of the required ones is
/// there (a CSV file without a header, often).
struct ColumnError {
    message: String,
    no_required: bool,
}

impl From<String> for ColumnError {
    fn from(message: String) -> Self {
        ColumnError {
            message,
            no_required: false,
        }
    }
}

/// Which of our columns each of the file's columns feeds (`columns`: the file's column names
/// as spelt, in order), and the report. `what` names the file's columns in messages
/// ("header", "JSON lines").
fn plan_columns(
    columns: &[String],
    spec: &Spec<'_>,
    what: &str,
) -> std::result::Result<(Vec<Vec<String>>, ColumnReport), ColumnError> {
    let lower: Vec<String> = columns.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut feeds: Vec<Vec<String>> = vec![Vec::new(); columns.len()];
    let mut report = ColumnReport::default();
    // 1. --column ours=theirs.
    for (ours, theirs) in spec.map {
        let at: Vec<usize> = (0..columns.len())
            .filter(|&i| lower[i].eq_ignore_ascii_case(theirs))
            .collect();
        let i = match at.as_slice() {
            [i] => *i,
            [] => {
                return Err(format!(
                    "--column {ours}={theirs}: the {what} has no column {theirs:?} (it has: {})",
                    quoted_list(columns)
                )
                .into());
            }
            _ => {
                return Err(format!(
                    "--column {ours}={theirs}: the column {theirs:?} appears twice in the {what}"
                )
                .into());
            }
        };
        feeds[i].push(ours.clone());
        report.mapped.push(MappedColumn {
            column: ours.clone(),
            from: columns[i].clone(),
            automatic: false,
        });
    }
    let explicit = |ours: &str| spec.map.iter().any(|(o, _)| o == ours);
    // 2. Our columns under their own names, unless mapped explicitly.
    for (i, c) in lower.iter().enumerate() {
        if spec.allowed.contains(&c.as_str()) && !explicit(c) {
            feeds[i].push(c.clone());
        }
    }
    let read = |feeds: &[Vec<String>], ours: &str| feeds.iter().flatten().any(|o| o == ours);
    // 3. Identity-provider columns, when the file has none of the required ones.
    let mut aliases: Vec<(&str, &[&str])> = Vec::new();
    if !spec.required.iter().any(|r| read(&feeds, r)) && spec.allowed.contains(&"name") {
        aliases.push(("name", NAME_ALIASES));
    }
    if spec.allowed.contains(&"email") && !read(&feeds, "email") {
        aliases.push(("email", EMAIL_ALIASES));
    }
    for (ours, list) in aliases {
        let found: Vec<usize> = (0..columns.len())
            .filter(|&i| list.contains(&lower[i].as_str()) && feeds[i].is_empty())
            .collect();
        match found.as_slice() {
            [] => {}
            [i] => {
                feeds[*i].push(ours.to_owned());
                report.mapped.push(MappedColumn {
                    column: ours.to_owned(),
                    from: columns[*i].clone(),
                    automatic: true,
                });
            }
            several => {
                return Err(format!(
                    "the {what} has no {ours} column, and several columns could be it: {}; vpnca does not guess: choose one with --column {ours}=COLUMN, or call it {ours} in the {what}",
                    quoted_list(&several.iter().map(|&i| columns[i].clone()).collect::<Vec<_>>())
                )
                .into());
            }
        }
    }
    if !spec.required.iter().any(|r| read(&feeds, r)) {
        return Err(ColumnError {
            message: format!(
                "the {what} has no {} column (it has: {}); name the one to read with --column {}=COLUMN, or call it so in the {what}",
                spec.required.join(" or "),
                quoted_list(columns),
                spec.required.first().copied().unwrap_or("name")
            ),
            no_required: true,
        });
    }
    // Unread columns, each once; the ones that look like a misspelt column of ours.
    let mut seen = HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        if !feeds[i].is_empty() || !seen.insert(lower[i].clone()) {
            continue;
        }
        report.ignored.push(c.clone());
        let is_alias =
            NAME_ALIASES.contains(&lower[i].as_str()) || EMAIL_ALIASES.contains(&lower[i].as_str());
        // Short names are left alone: LDAP's `sn` (surname) is no misspelt `san`.
        if !is_alias && lower[i].chars().count() >= 4 {
            let unread = spec.allowed.iter().copied().filter(|o| !read(&feeds, o));
            if let Some(ours) = crate::name::suggestions(&lower[i], unread)
                .into_iter()
                .next()
            {
                report.near_misses.push((c.clone(), ours));
            }
        }
    }
    Ok((feeds, report))
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_csv(text: &str, spec: &Spec<'_>) -> std::result::Result<Batch, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(str::to_owned)
        .collect();
    let (feeds, columns) = plan_columns(&headers, spec, "header").map_err(|e| {
        if e.no_required {
            format!(
                "line 1: {}; the first line of a CSV batch is its header, e.g. `{}`",
                e.message,
                spec.allowed.join(",")
            )
        } else {
            format!("line 1: {}", e.message)
        }
    })?;
    // A column that is read must be there once (an unread one may repeat).
    let mut seen_headers = HashSet::new();
    for (h, f) in headers.iter().zip(&feeds) {
        if !f.is_empty() && !seen_headers.insert(h.to_ascii_lowercase()) {
            return Err(format!(
                "line 1: the column {h:?} appears twice in the header"
            ));
        }
    }
    let mut out = Vec::new();
    let (mut line, mut counted) = (1usize, 0usize);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(&e))?;
        // Count lines from the byte offset (csv's own line counter is off by one after CRLF).
        let mut byte = rec
            .position()
            .map_or(0, |p| p.byte() as usize)
            .min(text.len());
        // After a CRLF, the record's offset points at its '\n'.
        while matches!(text.as_bytes().get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        line += bytecount_newlines(&text.as_bytes()[counted..byte]);
        counted = byte;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let mut r = Record {
            line,
            fields: BTreeMap::new(),
            error: None,
        };
        if rec.len() > headers.len() {
            r.error = Some(format!(
                "{} fields, but the header has {} columns",
                rec.len(),
                headers.len()
            ));
        }
        if rec.iter().any(|v| v.contains('\n') || v.contains('\r')) {
            return Err(format!(
                "line {line}: a quoted field runs over several lines: an unbalanced \" quote? (every later line would be swallowed into it)"
            ));
        }
        for (ours, v) in feeds.iter().zip(rec.iter()) {
            for h in ours {
                if v.len() > MAX_FIELD_BYTES {
                    r.error = Some(format!(
                        "the {h} field is {} bytes long (at most {MAX_FIELD_BYTES})",
                        v.len()
                    ));
                } else if !v.is_empty() {
                    r.fields.insert(h.clone(), v.to_owned());
                }
            }
        }
        out.push(r);
    }
    Ok(Batch {
        records: out,
        columns,
    })
}

fn bytecount_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => {
            format!("line {}: not UTF-8", pos.as_ref().map_or(0, |p| p.line()))
        }
        _ => match e.position() {
            Some(p) => format!("line {}: malformed CSV ({e})", p.line()),
            None => format!("malformed CSV ({e})"),
        },
    }
}

fn read_jsonl(text: &str, spec: &Spec<'_>) -> std::result::Result<Batch, String> {
    // First every line, then the columns: the keys of all lines play the part of a header.
    type Object = serde_json::Map<String, serde_json::Value>;
    let mut parsed: Vec<(usize, std::result::Result<Object, String>)> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut key_set: HashSet<String> = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        if l.len() > 16 * MAX_FIELD_BYTES {
            parsed.push((line, Err(format!("the line is {} bytes long", l.len()))));
            continue;
        }
        let obj = match serde_json::from_str::<serde_json::Value>(l) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => {
                let msg = e.to_string();
                let msg = msg
                    .rsplit_once(" at line ")
                    .map_or(msg.as_str(), |(m, _)| m);
                Err(format!("not valid JSON: {msg} (column {})", e.column()))
            }
        };
        if let Ok(m) = &obj {
            for k in m.keys() {
                if key_set.insert(k.to_ascii_lowercase()) {
                    keys.push(k.clone());
                }
            }
        }
        parsed.push((line, obj));
    }
    // Without any required key in any line, each line reports what it lacks ("missing
    // name"), as a line without one among others does.
    let (feeds, columns) = match plan_columns(&keys, spec, "JSON lines") {
        Ok(p) => p,
        Err(e) if e.no_required => (vec![Vec::new(); keys.len()], ColumnReport::default()),
        Err(e) => return Err(e.message),
    };
    let feeds_of = |k: &str| -> &[String] {
        keys.iter()
            .position(|c| c.eq_ignore_ascii_case(k))
            .map_or(&[], |i| feeds[i].as_slice())
    };
    let mut out = Vec::with_capacity(parsed.len());
    for (line, obj) in parsed {
        let mut r = Record {
            line,
            fields: BTreeMap::new(),
            error: None,
        };
        let m = match obj {
            Ok(m) => m,
            Err(e) => {
                r.error = Some(e);
                out.push(r);
                continue;
            }
        };
        for (k, v) in m {
            let ours = feeds_of(&k);
            if ours.is_empty() {
                continue;
            }
            let k = k.to_ascii_lowercase();
            let value = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => continue,
                serde_json::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for it in items {
                        match it {
                            serde_json::Value::String(s) => parts.push(s),
                            other => {
                                r.error = Some(format!("{k}: {other} is not a string"));
                            }
                        }
                    }
                    parts.join(",")
                }
                other => {
                    r.error = Some(format!("{k}: {other} is not a string or number"));
                    continue;
                }
            };
            let value = value.trim().to_owned();
            if !value.is_empty() {
                for o in ours {
                    r.fields.insert(o.clone(), value.clone());
                }
            }
        }
        out.push(r);
    }
    Ok(Batch {
        records: out,
        columns,
    })
}

/// A checked row of an issue batch.
#[derive(Debug, Clone)]
pub struct IssueRow {
    /// 1-based line number.
    pub line: usize,
    /// The request.
    pub request: IssueRequest,
}

/// The columns of an issue batch.
pub const ISSUE_COLUMNS: &[&str] = &["name", "email", "days", "san"];

/// Checks every record of an issue batch: name present and valid, not twice in the file,
/// `days` a number in range, `email` and `san` valid. `template` gives kind, algorithm and
/// profile. Returns the good rows and every bad one.
pub fn parse_issue_rows(
    records: &[Record],
    template: &IssueRequest,
) -> (Vec<IssueRow>, Vec<RowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for r in records {
        let name = r.fields.get("name").cloned();
        let err = |reason: String| RowError::at(r, reason);
        if let Some(e) = &r.error {
            errors.push(err(e.clone()));
            continue;
        }
        let Some(n) = &name else {
            errors.push(err("missing name".into()));
            continue;
        };
        let n = &match crate::name::normalize_name(n) {
            Ok(n) => n,
            Err(e) => {
                errors.push(err(e.to_string()));
                continue;
            }
        };
        if let Some(prev) = first_line.get(n) {
            errors.push(err(format!(
                "the name appears twice in the file (first on line {prev})"
            )));
            continue;
        }
        first_line.insert(n.clone(), r.line);
        let mut req = template.clone();
        req.name = n.clone();
        if let Some(d) = r.fields.get("days") {
            match d.parse::<u32>() {
                Ok(v) if (1..=crate::profile::MAX_DAYS).contains(&v) => {
                    req.validity = Validity::Days(v);
                }
                _ => {
                    errors.push(err(format!(
                        "bad days {d:?} (a whole number 1..={})",
                        crate::profile::MAX_DAYS
                    )));
                    continue;
                }
            }
        }
        let mut sans = template.sans.clone();
        let mut bad_san = None;
        if let Some(e) = r.fields.get("email") {
            match San::parse(&format!("email:{e}")) {
                Ok(s) => sans.push(s),
                Err(e) => bad_san = Some(format!("bad email: {e}")),
            }
        }
        if let Some(list) = r.fields.get("san") {
            for item in list
                .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .filter(|s| !s.is_empty())
            {
                match San::parse(item) {
                    Ok(s) => sans.push(s),
                    Err(e) => {
                        bad_san = Some(format!("bad san {item:?}: {e}"));
                        break;
                    }
                }
            }
        }
        if let Some(e) = bad_san {
            errors.push(err(e));
            continue;
        }
        req.sans = sans;
        rows.push(IssueRow {
            line: r.line,
            request: req,
        });
    }
    (rows, errors)
}

/// What happened to one batch item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// A certificate was issued (or re-issued with `renew`).
    Issued,
    /// The name already had a valid certificate; nothing was issued.
    Exists,
    /// The input item was not acceptable.
    Invalid,
    /// Issuing failed (the error says why).
    Failed,
}

/// The result of one batch item.
#[derive(Debug, Clone, Serialize)]
pub struct BatchResult {
    /// 0-based position in the input.
    #[serde(skip)]
    pub index: usize,
    /// The name.
    pub name: String,
    /// What happened.
    pub status: BatchStatus,
    /// The certificate's serial (issued or existing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Its notAfter.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_after: Option<time::OffsetDateTime>,
    /// With `renew`: the serial of the certificate it replaced (now superseded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// Files written for it (`out_dir`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    /// Why it is invalid or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BatchResult {
    fn new(index: usize, name: &str, status: BatchStatus) -> BatchResult {
        BatchResult {
            index,
            name: name.to_owned(),
            status,
            serial: None,
            not_after: None,
            replaced: None,
            files: Vec::new(),
            error: None,
        }
    }

    fn with_record(mut self, r: &CertRecord) -> BatchResult {
        self.serial = Some(r.serial.hex());
        self.not_after = Some(r.not_after);
        self
    }

    fn failed(index: usize, name: &str, e: impl std::fmt::Display) -> BatchResult {
        let mut r = BatchResult::new(index, name, BatchStatus::Failed);
        r.error = Some(e.to_string());
        r
    }
}

/// Counts of a finished batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchSummary {
    /// Certificates issued.
    pub issued: usize,
    /// Names that had a valid certificate already.
    pub exists: usize,
    /// Items refused before issuing.
    pub invalid: usize,
    /// Items that failed.
    pub failed: usize,
    /// Warnings that apply to the whole batch (e.g. a profile's foreign `<ca>`).
    pub warnings: Vec<String>,
    /// The batch stopped early because [`BatchOptions::cancel`] was set: what is counted above
    /// was committed (or decided), the rest was not issued; running the same batch again
    /// issues exactly the rest.
    pub interrupted: bool,
}

impl BatchSummary {
    fn count(&mut self, s: BatchStatus) {
        match s {
            BatchStatus::Issued => self.issued += 1,
            BatchStatus::Exists => self.exists += 1,
            BatchStatus::Invalid => self.invalid += 1,
            BatchStatus::Failed => self.failed += 1,
        }
    }
}

/// How a batch is issued.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Worker threads for key generation and signing; 0 = every core.
    pub jobs: usize,
    /// Re-issue names that have a valid certificate (the old one becomes superseded).
    pub renew: bool,
    /// Certificates per transaction.
    pub chunk: usize,
    /// Write each user's `NAME.crt`, `NAME.key` (0600, unencrypted PKCS#8) and the shared
    /// `ca.crt` here; with `profile`, also `NAME.ovpn` (0600).
    pub out_dir: Option<PathBuf>,
    /// The VPN profile to write for each user into `out_dir`.
    pub profile: Option<ProfileBase>,
    /// Counts every certificate signed (its key generated first), as the workers make them,
    /// before it is committed: a progress bar that moves from the first certificate.
    pub signed: Option<Arc<AtomicUsize>>,
    /// Set (e.g. by a SIGINT handler) to stop the batch at the next commit: the chunks
    /// committed so far stay, nothing more is issued ([`BatchSummary::interrupted`]).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            jobs: 0,
            renew: false,
            chunk: DEFAULT_CHUNK,
            out_dir: None,
            profile: None,
            signed: None,
            cancel: None,
        }
    }
}

/// One item of a batch: a request, and for CSR batches the requester's public key.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// The request.
    pub request: IssueRequest,
    /// The public key (SubjectPublicKeyInfo DER) from a CSR; `None` = generate a key.
    pub public_key: Option<Vec<u8>>,
}

impl From<IssueRequest> for BatchItem {
    fn from(request: IssueRequest) -> Self {
        BatchItem {
            request,
            public_key: None,
        }
    }
}

/// A planned item, ready for a worker.
struct Work {
    index: usize,
    prepared: crate::ca::Prepared,
    /// With `renew`: the live certificate to supersede.
    replaces: Option<Serial>,
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The files to write for one user after their certificate is committed.
fn user_files(dir: &Path, name: &str, with_profile: bool) -> Vec<PathBuf> {
    let mut v = vec![
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    ];
    if with_profile {
        v.push(dir.join(format!("{name}.ovpn")));
    }
    v
}

impl Store {
    /// Checks a request against the store's profiles (name, kind, SAN policy, validity, the
    /// keyUsage bits left for a key of `req.algorithm`) without issuing anything or making a
    /// key: the checks [`Store::issue_stream`] makes before signing, so that a batch can be
    /// refused as a whole before anything is issued. For a request signed from a CSR, use
    /// [`Store::check_item`], which takes the key type from the CSR's public key.
    pub fn check_request(&self, req: &IssueRequest) -> Result<()> {
        self.plan(req, None).map(|_| ())
    }

    /// [`Store::check_request`] for a batch item: an item with a public key (a CSR's) is
    /// checked against that key's type, one without against `request.algorithm`.
    pub fn check_item(&self, item: &BatchItem) -> Result<()> {
        let subject = item.public_key.clone().map(Subject::PublicKey);
        self.plan(&item.request, subject).map(|_| ())
    }

    /// Issues a batch: every item is checked first, then keys are generated and certificates
    /// signed on `opts.jobs` threads, and the results recorded in chunks of `opts.chunk` per
    /// transaction. `sink` receives each item's result in input order, after its chunk is
    /// committed. Names with a valid certificate are `exists` (or re-issued with
    /// `opts.renew`). An error of the store itself (not of one item) stops the batch: what was
    /// committed stays, and a re-run completes the rest.
    pub fn issue_stream<I, T>(
        &self,
        items: I,
        opts: &BatchOptions,
        sink: &mut dyn FnMut(&BatchResult),
    ) -> Result<BatchSummary>
    where
        I: IntoIterator<Item = T>,
        T: Into<BatchItem>,
    {
        let items: Vec<BatchItem> = items.into_iter().map(Into::into).collect();
        let mut summary = BatchSummary::default();
        let profile_ctx = match &opts.profile {
            Some(base) => {
                let ctx = ProfileContext::new(self)?;
                // A configuration every profile would refuse stops the batch before it issues.
                ctx.check_base(base)?;
                Some(ctx)
            }
            None => None,
        };
        if opts.profile.is_some() && opts.out_dir.is_none() {
            return Err(Error::input("batch", "profiles need an output directory"));
        }
        let signer = self.signer()?;

        // 1. Plan: check each item, find existing names.
        let mut early: BTreeMap<usize, BatchResult> = BTreeMap::new();
        let mut exports: Vec<(usize, CertRecord)> = Vec::new();
        let mut work: Vec<Work> = Vec::new();
        let mut seen = HashSet::new();
        // Names with a live certificate, and those planned so far, by their look-alike key.
        let mut look_alikes = self.look_alikes()?;
        for (index, item) in items.into_iter().enumerate() {
            let name = crate::name::nfc(&item.request.name);
            if !seen.insert(name.clone()) {
                let mut r = BatchResult::new(index, &name, BatchStatus::Invalid);
                r.error = Some("the name appears twice in the batch".into());
                early.insert(index, r);
                continue;
            }
            let subject = item.public_key.map(Subject::PublicKey);
            let prepared = match self.plan(&item.request, subject) {
                Ok(p) => p,
                Err(e) => {
                    let mut r = BatchResult::new(index, &name, BatchStatus::Invalid);
                    r.error = Some(e.to_string());
                    early.insert(index, r);
                    continue;
                }
            };
            if let Err(e) = look_alikes.admit(&prepared.name) {
                let mut r = BatchResult::new(index, &name, BatchStatus::Invalid);
                r.error = Some(e.to_string());
                early.insert(index, r);
                continue;
            }
            let live = self.live(&name)?;
            match live {
                Some(rec) if !opts.renew => {
                    if opts.out_dir.is_some() && rec.has_key {
                        exports.push((index, rec.clone()));
                    }
                    early.insert(
                        index,
                        BatchResult::new(index, &name, BatchStatus::Exists).with_record(&rec),
                    );
                }
                live => work.push(Work {
                    index,
                    prepared,
                    replaces: live.map(|r| r.serial),
                }),
            }
        }

        // 2. Output files: refuse before anything is issued if one exists already. A user
        // who already has a certificate gets their files written only where none exist (so a
        // re-run after an interruption completes the set).
        if let Some(dir) = &opts.out_dir {
            fsutil::create_dir(dir, 0o700)?;
            for w in &work {
                for f in user_files(dir, &w.prepared.name, opts.profile.is_some()) {
                    if f.symlink_metadata().is_ok() {
                        return Err(Error::FileExists { path: f });
                    }
                }
            }
            // The shared chain: an identical one is no conflict (as for `export`).
            let chain = dir.join("ca.crt");
            let pem = self.ca_chain_pem()?;
            match crate::export::compare_public(&chain, pem.as_bytes())? {
                Existing::Identical => {}
                Existing::Differs => {
                    return Err(crate::export::differs(
                        &chain,
                        "this store's CA chain (another CA's, or from before the CA changed)",
                        "move it away or choose another --out",
                    ));
                }
                Existing::Missing => fsutil::create_new(&chain, pem.as_bytes(), 0o644)?,
            }
            let mut partial = Vec::new();
            exports.retain(|(_, rec)| {
                let files = user_files(dir, &rec.name, opts.profile.is_some());
                let present = files
                    .iter()
                    .filter(|f| f.symlink_metadata().is_ok())
                    .count();
                if present > 0 && present < files.len() {
                    partial.push(rec.name.clone());
                }
                present == 0
            });
            for name in partial {
                summary.warnings.push(format!(
                    "{name}: some of its files are in {} and some are missing; nothing was written for it (remove them, or use `vpnca export {} --out DIR --key`)",
                    dir.display(),
                    crate::shell::quote(&name)
                ));
            }
        }

        // Results for items decided without signing go out first where they precede work.
        let mut emit = |r: BatchResult, summary: &mut BatchSummary| {
            summary.count(r.status);
            sink(&r);
        };

        // Existing users whose files are missing (a re-run): export from the store, audited
        // first (an entry for a write that a crash then prevents is the safe direction).
        if let Some(dir) = &opts.out_dir {
            if !exports.is_empty() {
                self.write(|tx, keys| {
                    for (_, rec) in &exports {
                        let files = user_files(dir, &rec.name, opts.profile.is_some());
                        audit_append(
                            tx,
                            keys,
                            "export",
                            &rec.name,
                            &rec.serial.hex(),
                            &serde_json::json!({"key": "plain", "by": "batch",
                                "files": files.iter().map(|p| absolute(p)).collect::<Vec<_>>()}),
                        )?;
                    }
                    Ok(())
                })?;
            }
            for (index, rec) in &exports {
                let key = self.private_key(rec)?;
                let files = self.write_user_files(
                    dir,
                    rec,
                    &key,
                    opts.profile.as_ref(),
                    profile_ctx.as_ref(),
                    &mut summary.warnings,
                )?;
                if let Some(r) = early.get_mut(index) {
                    r.files = files;
                }
            }
        }

        // 3. Sign in parallel; commit in input order, chunk by chunk.
        let jobs = match opts.jobs {
            0 => default_jobs(&signer),
            n => n,
        }
        .min(work.len().max(1));
        let chunk = opts.chunk.max(1);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::sync_channel::<(usize, Result<Signed>)>(jobs * 8);
        let outcome: Result<()> = std::thread::scope(|scope| {
            for _ in 0..jobs {
                let tx = tx.clone();
                let (work, next, stop, signer) = (&work, &next, &stop, &signer);
                scope.spawn(move || {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(w) = work.get(i) else { break };
                        let signed = sign_prepared(signer, &w.prepared);
                        if let Some(n) = &opts.signed {
                            n.fetch_add(1, Ordering::Relaxed);
                        }
                        if tx.send((i, signed)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let result = (|| -> Result<()> {
                let mut pending: BTreeMap<usize, Result<Signed>> = BTreeMap::new();
                let mut batch: Vec<(usize, Result<Signed>)> = Vec::with_capacity(chunk);
                let mut expected = 0;
                let mut early_iter = std::mem::take(&mut early).into_iter().peekable();
                let mut flush = |batch: &mut Vec<(usize, Result<Signed>)>,
                                 summary: &mut BatchSummary|
                 -> Result<()> {
                    let results = self.commit_chunk(
                        &work,
                        std::mem::take(batch),
                        opts,
                        profile_ctx.as_ref(),
                        &mut summary.warnings,
                    )?;
                    for r in results {
                        while let Some((_, e)) = early_iter.next_if(|(i, _)| *i < r.index) {
                            emit(e, summary);
                        }
                        emit(r, summary);
                    }
                    Ok(())
                };
                let cancelled = || {
                    opts.cancel
                        .as_ref()
                        .is_some_and(|c| c.load(Ordering::Relaxed))
                };
                for (i, signed) in rx.iter() {
                    pending.insert(i, signed);
                    while let Some(s) = pending.remove(&expected) {
                        batch.push((expected, s));
                        expected += 1;
                        if batch.len() >= chunk {
                            flush(&mut batch, &mut summary)?;
                            if cancelled() {
                                summary.interrupted = true;
                                return Ok(());
                            }
                        }
                    }
                    if cancelled() {
                        // Between two commits: what is signed but not committed is dropped.
                        summary.interrupted = true;
                        return Ok(());
                    }
                }
                if !batch.is_empty() {
                    flush(&mut batch, &mut summary)?;
                }
                for (_, e) in early_iter {
                    emit(e, &mut summary);
                }
                Ok(())
            })();
            if result.is_err() || summary.interrupted {
                stop.store(true, Ordering::Relaxed);
                // Drain so that blocked workers can finish.
                for _ in rx.iter() {}
            }
            result
        });
        outcome?;
        summary.warnings.sort();
        summary.warnings.dedup();
        Ok(summary)
    }

    /// Records one chunk of signed certificates in one transaction, then writes mirrors and
    /// output files. Returns the results in input order.
    fn commit_chunk(
        &self,
        work: &[Work],
        batch: Vec<(usize, Result<Signed>)>,
        opts: &BatchOptions,
        profile_ctx: Option<&ProfileContext>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<BatchResult>> {
        enum Done {
            Issued(CertRecord, Option<Serial>),
            Exists(CertRecord),
            Failed(String),
        }
        let outcomes: Vec<(usize, Done)> = self.write(|tx, keys| {
            let mut out = Vec::with_capacity(batch.len());
            for (i, signed) in &batch {
                let w = &work[*i];
                let s = match signed {
                    Ok(s) => s,
                    Err(e) => {
                        out.push((*i, Done::Failed(e.to_string())));
                        continue;
                    }
                };
                let mut replaced = None;
                if let Some(old_serial) = &w.replaces {
                    let mut old = self.by_serial(old_serial)?;
                    if old.is_live(store::now()) {
                        old.state = CertState::Superseded;
                        old.superseded_by = Some(s.serial.clone());
                        update_record(tx, keys, &old)?;
                        replaced = Some(old.serial.clone());
                    }
                } else if let Some(live) = self.live(&s.name)? {
                    // Another process issued it since we planned.
                    out.push((*i, Done::Exists(live)));
                    continue;
                }
                let action = match (&replaced, &s.key) {
                    (Some(_), _) => "renew",
                    (None, None) => "sign-req",
                    (None, Some(_)) => "issue",
                };
                let rec = self.record_signed(tx, keys, s, action)?;
                if let Some(dir) = &opts.out_dir {
                    let files = user_files(dir, &rec.name, opts.profile.is_some());
                    audit_append(
                        tx,
                        keys,
                        "export",
                        &rec.name,
                        &rec.serial.hex(),
                        &serde_json::json!({"key": "plain", "by": "batch",
                            "files": files.iter().map(|p| absolute(p)).collect::<Vec<_>>()}),
                    )?;
                }
                out.push((*i, Done::Issued(rec, replaced)));
            }
            Ok(out)
        })?;
        self.sync_mirrors_batch(outcomes.iter().filter_map(|(_, d)| match d {
            Done::Issued(r, _) => Some(r.name.as_str()),
            _ => None,
        }))?;
        let keys_by_index: HashMap<usize, &crate::secret::SecretKeyDer> = batch
            .iter()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .ok()
                    .and_then(|s| s.key.as_ref())
                    .map(|k| (*i, k))
            })
            .collect();
        let mut results = Vec::with_capacity(outcomes.len());
        for (i, done) in outcomes {
            let w = &work[i];
            let name = &w.prepared.name;
            let r = match done {
                Done::Failed(e) => BatchResult::failed(w.index, name, e),
                Done::Exists(rec) => {
                    BatchResult::new(w.index, name, BatchStatus::Exists).with_record(&rec)
                }
                Done::Issued(rec, replaced) => {
                    let mut r =
                        BatchResult::new(w.index, name, BatchStatus::Issued).with_record(&rec);
                    r.replaced = replaced.map(|s| s.hex());
                    if let (Some(dir), Some(key)) = (&opts.out_dir, keys_by_index.get(&i)) {
                        match self.write_user_files(
                            dir,
                            &rec,
                            key,
                            opts.profile.as_ref(),
                            profile_ctx,
                            warnings,
                        ) {
                            Ok(f) => r.files = f,
                            Err(e) => {
                                r.error = Some(format!(
                                    "issued, but its files could not be written: {e} (use `vpnca export {} --out DIR --key`)",
                                    crate::shell::quote(name)
                                ));
                            }
                        }
                    }
                    r
                }
            };
            results.push(r);
        }
        Ok(results)
    }

    /// Writes `NAME.crt`, `NAME.key` and optionally `NAME.ovpn` into `dir`, created new.
    fn write_user_files(
        &self,
        dir: &Path,
        rec: &CertRecord,
        key: &crate::secret::SecretKeyDer,
        profile: Option<&ProfileBase>,
        ctx: Option<&ProfileContext>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<PathBuf>> {
        let key_pem = key.to_pem()?;
        let cert_pem = rec.pem();
        let mut plan: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = vec![
            (
                dir.join(format!("{}.crt", rec.name)),
                Zeroizing::new(cert_pem.clone().into_bytes()),
                0o644,
            ),
            (
                dir.join(format!("{}.key", rec.name)),
                Zeroizing::new(key_pem.as_bytes().to_vec()),
                0o600,
            ),
        ];
        if let (Some(base), Some(ctx)) = (profile, ctx) {
            let (text, w) = ctx.compose(base, &cert_pem, &key_pem)?;
            warnings.extend(w);
            plan.push((
                dir.join(format!("{}.ovpn", rec.name)),
                Zeroizing::new(text.as_bytes().to_vec()),
                0o600,
            ));
        }
        fsutil::create_all_new(&plan)
    }

    /// Revokes a batch in one transaction and writes one CRL that lists them all, as
    /// [`Store::revoke`] does ([`Store::revoke_with_crl`]: for a CA key in KMS, signed after
    /// the commit, outside the lock, and deferred when KMS cannot sign it: the revocations
    /// stand). Unknown names and serials are reported (`unknown`) and skipped, unless
    /// `strict`, which makes them an error that revokes nothing. No CRL when nothing was
    /// revoked.
    pub fn revoke_batch(
        &self,
        items: &[(Target, RevocationReason)],
        strict: bool,
    ) -> Result<(Vec<RevokeResult>, CrlOutcome)> {
        let names: Vec<String> = items
            .iter()
            .filter_map(|(t, _)| match t {
                Target::Name(n) => Some(n.clone()),
                Target::Serial(_) => None,
            })
            .collect();
        let revoke = |tx: &store::Tx<'_>,
                      keys: &store::crypto::Keys|
         -> Result<(Vec<RevokeResult>, Vec<Serial>)> {
            let t = store::now();
            let mut results = Vec::with_capacity(items.len());
            let mut revoked: Vec<Serial> = Vec::new();
            let mut done: HashSet<Serial> = HashSet::new();
            let mut unknown: Vec<String> = Vec::new();
            for (index, (target, reason)) in items.iter().enumerate() {
                let label = match target {
                    Target::Name(n) => n.clone(),
                    Target::Serial(s) => s.hex(),
                };
                let mut res = RevokeResult {
                    index,
                    target: label.clone(),
                    status: RevokeStatus::Revoked,
                    serials: Vec::new(),
                    error: None,
                    note: None,
                };
                let victims: Vec<CertRecord> = match target {
                    Target::Serial(s) => match self.by_serial(s) {
                        Ok(r) if r.kind == CertKind::Ca => {
                            res.status = RevokeStatus::Invalid;
                            res.error = Some("this is the CA itself".into());
                            vec![]
                        }
                        Ok(r) if r.state == CertState::Revoked => {
                            res.status = RevokeStatus::Already;
                            res.note = Some(nothing_to_revoke(&r));
                            vec![]
                        }
                        Ok(r) => vec![r],
                        Err(Error::NotFound { .. }) => {
                            res.status = RevokeStatus::Unknown;
                            vec![]
                        }
                        Err(e) => return Err(e),
                    },
                    Target::Name(n) => {
                        let all = self.by_name(n)?;
                        // Newest first: when nothing is left to revoke, the newest says why.
                        match all.first() {
                            None => {
                                res.status = RevokeStatus::Unknown;
                                res.note = self.did_you_mean(n);
                            }
                            Some(newest) => {
                                res.note = Some(nothing_to_revoke(newest));
                            }
                        }
                        let v: Vec<CertRecord> = all
                            .into_iter()
                            .filter(|r| r.state != CertState::Revoked && r.not_after > t)
                            .collect();
                        if v.is_empty() && res.status != RevokeStatus::Unknown {
                            res.status = RevokeStatus::Already;
                        }
                        if !v.is_empty() {
                            res.note = None;
                        }
                        v
                    }
                };
                if res.status == RevokeStatus::Unknown {
                    unknown.push(label.clone());
                }
                for mut r in victims {
                    if !done.insert(r.serial.clone()) {
                        continue;
                    }
                    crate::ca::mark_revoked(tx, keys, &mut r, *reason, t, Some("batch"))?;
                    res.serials.push(r.serial.hex());
                    revoked.push(r.serial);
                }
                results.push(res);
            }
            if strict && !unknown.is_empty() {
                return Err(Error::NotFound {
                    what: format!(
                        "{} name(s) or serial(s) not in the store: {}; nothing was revoked (--strict)",
                        unknown.len(),
                        unknown
                            .iter()
                            .map(|u| crate::shell::quote(u).into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            Ok((results, revoked))
        };
        self.revoke_with_crl(self.signer(), revoke, |_| {
            self.sync_mirrors_batch(names.iter().map(String::as_str))
        })
    }
}

/// What happened to one line of a revoke batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokeStatus {
    /// Revoked now.
    Revoked,
    /// Nothing to revoke: revoked (or expired) already.
    Already,
    /// No such name or serial in the store.
    Unknown,
    /// Not acceptable (the CA's own serial).
    Invalid,
}

/// The result of one revoke-batch line.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeResult {
    /// 0-based position in the input.
    #[serde(skip)]
    pub index: usize,
    /// The name or serial given.
    pub target: String,
    /// What happened.
    pub status: RevokeStatus,
    /// Serials revoked now.
    pub serials: Vec<String>,
    /// Why it is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For people: when and why an `already` line was revoked, or when it expired; the names
    /// an `unknown` name may have meant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why there is nothing to revoke in `r` (revoked or expired), for [`RevokeResult::note`].
fn nothing_to_revoke(r: &CertRecord) -> String {
    match (r.state, r.revoked_at) {
        (CertState::Revoked, at) => format!(
            "serial {} was revoked on {} ({})",
            r.serial,
            at.map(crate::fmt_time)
                .unwrap_or_else(|| "an unrecorded date".into()),
            r.reason.map_or("no reason recorded", |x| x.as_str())
        ),
        _ => format!(
            "serial {} expired on {}; an expired certificate is not revoked",
            r.serial,
            crate::fmt_time(r.not_after)
        ),
    }
}

/// The columns of a revoke batch.
pub const REVOKE_COLUMNS: &[&str] = &["name", "serial", "reason"];

/// Checks every record of a revoke batch: a name or a serial (not both), an optional reason
/// (else `default_reason`).
pub fn parse_revoke_rows(
    records: &[Record],
    default_reason: RevocationReason,
) -> (Vec<(usize, Target, RevocationReason)>, Vec<RowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for r in records {
        let err = |reason: String| RowError::at(r, reason);
        if let Some(e) = &r.error {
            errors.push(err(e.clone()));
            continue;
        }
        let target = match (r.fields.get("name"), r.fields.get("serial")) {
            (Some(_), Some(_)) => {
                errors.push(err("give a name or a serial, not both".into()));
                continue;
            }
            (None, None) => {
                errors.push(err("missing name (or serial)".into()));
                continue;
            }
            (Some(n), None) => match crate::name::normalize_name(n) {
                Ok(n) => Target::Name(n),
                Err(e) => {
                    errors.push(err(e.to_string()));
                    continue;
                }
            },
            (None, Some(s)) => match s.parse::<Serial>() {
                Ok(s) => Target::Serial(s),
                Err(e) => {
                    errors.push(err(e.to_string()));
                    continue;
                }
            },
        };
        let reason = match r.fields.get("reason") {
            None => default_reason,
            Some(s) => match s.parse::<RevocationReason>() {
                Ok(v) => v,
                Err(e) => {
                    errors.push(err(e.to_string()));
                    continue;
                }
            },
        };
        rows.push((r.line, target, reason));
    }
    (rows, errors)
}

/// How many threads sign a batch when `--jobs` is not given: one per core; for a CA key in
/// KMS, two per core (at most [`KMS_MAX_JOBS`]), because each thread waits for its `Sign`'s
/// round trip after generating the key, and the others keep the cores busy meanwhile
/// (measured: a 300-user RSA batch went from 73 % to 93 % of the local-CA rate with 4 threads
/// on 2 cores, docs/performance.md).
fn default_jobs(signer: &crate::ca::Signer) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match signer.issuer.key() {
        #[cfg(feature = "aws")]
        crate::ca_key::CaKey::Kms(_) => (cores * 2).min(KMS_MAX_JOBS),
        _ => cores,
    }
}

/// The most KMS `Sign` calls a batch has in flight by default: well under KMS's request quota
/// for asymmetric keys (hundreds per second per account and region, shared with other users).
#[cfg(feature = "aws")]
const KMS_MAX_JOBS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<Record>> {
        read_records(text.as_bytes(), None, "t", ISSUE_COLUMNS, &["name"])
    }

    #[test]
    fn csv_and_jsonl_are_detected_and_read() {
        let r = csv("\u{feff}name,email\r\nalice,a@example.com\r\n\"bob, jr\",\r\n").expect("csv");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].line, 2);
        assert_eq!(r[1].fields["name"], "bob, jr");
        let r = csv("{\"name\":\"alice\",\"days\":30}\n\n{\"name\":\"bob\",\"san\":[\"email:b@example.com\"]}\n")
            .expect("jsonl");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].line, 3);
        assert_eq!(r[0].fields["days"], "30");
    }

    #[test]
    fn file_level_errors() {
        for (text, phrase) in [
            ("", "empty"),
            ("alice\nbob\n", "no name column"),
            ("name,Name\nalice,bob\n", "appears twice"),
            ("login,userName\nalice,bob\n", "does not guess"),
            ("name\n\"alice\nbob\n", "line"),
        ] {
            match csv(text) {
                Err(e) => assert!(e.to_string().contains(phrase), "{text:?}: {e}"),
                Ok(r) => {
                    // An unbalanced quote swallows the rest of the file into one field: the
                    // row check then reports it.
                    let (_, errs) = parse_issue_rows(&r, &IssueRequest::new("", CertKind::Client));
                    assert!(!errs.is_empty(), "{text:?} accepted");
                }
            }
        }
    }

    fn mapped(text: &str, map: &[(&str, &str)]) -> Result<Batch> {
        let map: Vec<(String, String)> = map
            .iter()
            .map(|(o, t)| (o.to_string(), t.to_string()))
            .collect();
        read_batch(text.as_bytes(), None, "t", ISSUE_COLUMNS, &["name"], &map)
    }

    #[test]
    fn batch_columns_extra_mapped_and_recognised() {
        // Extra columns: ignored, each listed once, as spelt.
        let b = mapped(
            "name,Employee_ID,email,dept,dept\nalice,7,a@example.com,x,y\n",
            &[],
        )
        .expect("extra columns");
        assert_eq!(b.columns.ignored, vec!["Employee_ID", "dept"]);
        assert_eq!(b.records[0].fields.len(), 2, "{:?}", b.records[0].fields);
        // --column name=login wins over a `name` column (then ignored).
        let b = mapped("Name,Login\nAnna Smith,asmith\n", &[("name", "login")]).expect("map");
        assert_eq!(b.records[0].fields["name"], "asmith");
        assert_eq!(b.columns.ignored, vec!["Name"]);
        assert!(!b.columns.mapped[0].automatic);
        // Azure AD: userPrincipalName -> name, mail -> email.
        let b = mapped(
            "displayName,userPrincipalName,mail\nAnna,anna@example.com,anna.s@example.com\n",
            &[],
        )
        .expect("azure");
        assert_eq!(b.records[0].fields["name"], "anna@example.com");
        assert_eq!(b.records[0].fields["email"], "anna.s@example.com");
        assert!(b.columns.mapped.iter().all(|m| m.automatic));
        // Two candidates: no guess; an explicit choice settles it.
        let e = mapped("login,userName\na,b\n", &[]).expect_err("ambiguous");
        assert!(e.to_string().contains("--column name=COLUMN"), "{e}");
        let b = mapped("login,userName\na,b\n", &[("name", "userName")]).expect("chosen");
        assert_eq!(b.records[0].fields["name"], "b");
        // A column named by --column must be there.
        let e = mapped("name\na\n", &[("email", "mail")]).expect_err("missing");
        assert!(e.to_string().contains("no column \"mail\""), "{e}");
        // A misspelt column of ours is ignored, but flagged.
        let b = mapped("name,emial\na,a@example.com\n", &[]).expect("typo");
        assert_eq!(
            b.columns.near_misses,
            vec![("emial".to_string(), "email".to_string())]
        );
        // JSON lines: the same rules over the keys of all lines.
        let b = mapped(
            "{\"login\":\"a\",\"id\":1}\n{\"login\":\"b\",\"profile\":{}}\n",
            &[],
        )
        .expect("jsonl");
        assert_eq!(b.records[1].fields["name"], "b");
        assert!(b.records.iter().all(|r| r.error.is_none()));
        assert_eq!(b.columns.ignored, vec!["id", "profile"]);
        // --column syntax and targets.
        let known = ISSUE_COLUMNS;
        assert!(parse_column_map(&["name".into()], known).is_err());
        assert!(parse_column_map(&["serial=x".into()], known).is_err());
        assert!(parse_column_map(&["name=a".into(), "NAME=b".into()], known).is_err());
        assert_eq!(
            parse_column_map(&[" Name = Login ".into()], known).expect("ok"),
            vec![("name".to_string(), "Login".to_string())]
        );
    }

    #[test]
    fn row_errors_name_their_line() {
        let r =
            csv("name,days,san\nalice,30,\n,5,\nbad/name,,\nalice,,\nbob,0,\ncarol,,DNS:-bad\n")
                .expect("csv");
        let (rows, errs) = parse_issue_rows(&r, &IssueRequest::new("", CertKind::Client));
        assert_eq!(rows.len(), 1);
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7]);
        assert!(errs[0].reason.contains("missing name"));
        assert!(errs[2].reason.contains("twice"));
    }
}
