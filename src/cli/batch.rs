//! Batches (docs/commands-batch.md): the `--batch` forms of client, sign-req, revoke and
//! profile: read, check, call the library, report one line (or JSON line) per input row. The
//! single forms are in certificates.rs, revocation.rs and delivery.rs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use vpnca::batch::{self, BatchItem, BatchOptions, BatchResult, BatchStatus, RowError};
use vpnca::fsutil::{
    InputLimit, Output, PathKind, check_output, read_bounded, read_bounded_or_pipe,
    read_stdin_bounded,
};
use vpnca::{CertKind, Csr, IssueRequest, RevocationReason, Store};

use super::EXIT_ERROR;

/// Exit code of a batch stopped by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;
use super::args::BatchOpts;
use super::output::{Out, crl_json, warn, with_head};

/// Reads a batch file (or a pipe: `--batch <(cmd)`), or standard input for `-`: at most
/// 64 MiB ([`InputLimit::BATCH`]).
fn read_input(path: &Path) -> Result<Vec<u8>> {
    Ok(if path == Path::new("-") {
        read_stdin_bounded(&InputLimit::BATCH)?
    } else {
        read_bounded_or_pipe(path, &InputLimit::BATCH)?
    })
}

fn source_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// Reads a batch file's records with the `--column OURS=THEIRS` mapping `column`, and says
/// once, on standard error, which columns were recognised under another name, which are not
/// read, and which of those look like a misspelt column of ours.
fn read_mapped(
    data: &[u8],
    format: Option<batch::BatchFormat>,
    file: &Path,
    (known, required): (&[&str], &[&str]),
    column: &[String],
) -> Result<batch::Batch> {
    let map = batch::parse_column_map(column, known)?;
    let b = batch::read_batch(data, format, &source_name(file), known, required, &map)?;
    for m in b.columns.mapped.iter().filter(|m| m.automatic) {
        errln!(
            "note: reading the column {:?} as {} (an identity-provider export; --column {}=COLUMN chooses another)",
            m.from,
            m.column,
            m.column
        );
    }
    if !b.columns.ignored.is_empty() {
        errln!(
            "note: ignoring {} column(s) that vpnca does not read: {}",
            b.columns.ignored.len(),
            b.columns
                .ignored
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (theirs, ours) in &b.columns.near_misses {
        warn(&format!(
            "the column {theirs:?} is not read: did you mean {ours}? (--column {ours}={theirs} reads it as {ours})"
        ));
    }
    Ok(b)
}

/// Reports bad rows; an error unless `skip` (then they are listed and left out).
fn report_invalid(
    out: &Out,
    errors: &[RowError],
    skip: bool,
    (done, verb): (&str, &str),
) -> Result<()> {
    for e in errors {
        if out.json {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("status".into(), json!("invalid"));
                if let Some(r) = m.remove("reason") {
                    m.insert("error".into(), r);
                }
                if e.file.is_some() {
                    m.remove("line");
                }
            }
            outln!("{v}");
        } else {
            errln!("invalid: {e}");
        }
    }
    if !errors.is_empty() && !skip {
        let what = if errors.iter().any(|e| e.file.is_some()) {
            "request file(s)"
        } else {
            "line(s)"
        };
        if verb.is_empty() {
            bail!(
                "{} invalid {what} in the batch; nothing was {done}",
                errors.len()
            );
        }
        bail!(
            "{} invalid {what} in the batch; nothing was {done} (fix them, or use --skip-invalid to {verb} the valid ones)",
            errors.len()
        );
    }
    Ok(())
}

/// A progress bar on standard error when standard output is a terminal and not --json.
fn progress(out: &Out, len: usize) -> Option<indicatif::ProgressBar> {
    if out.json || !std::io::stdout().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    // The position counts certificates signed (each key generated first) and items decided
    // without signing, from the first one; the message counts what is committed.
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} signed  {per_sec}  eta {eta}  {msg}",
    ) {
        pb.set_style(style);
    }
    Some(pb)
}

/// Where a batch item came from: a line of a file, or a request file.
#[derive(Debug, Clone)]
enum Label {
    Line(usize),
    File(String),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Line(n) => write!(f, "line {n}"),
            Label::File(s) => f.write_str(s),
        }
    }
}

fn result_line(label: Option<&Label>, r: &BatchResult) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        match label {
            Some(Label::Line(n)) => m.insert("line".into(), json!(n)),
            Some(Label::File(f)) => m.insert("file".into(), json!(f)),
            None => None,
        };
    }
    v
}

/// Runs a prepared batch and prints the results; returns the exit code.
fn run_issue(
    store: &Store,
    out: &Out,
    items: Vec<BatchItem>,
    labels: Vec<Label>,
    opts: &BatchOptions,
    invalid: usize,
) -> Result<u8> {
    let bar = progress(out, items.len());
    let t0 = std::time::Instant::now();
    // Progress from the first certificate signed, not from the first commit; and Ctrl-C stops
    // the batch at the next commit (a second one ends it at once).
    let signed = Arc::new(AtomicUsize::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let handlers = [
        signal_hook::flag::register_conditional_shutdown(
            signal_hook::consts::SIGINT,
            EXIT_INTERRUPTED.into(),
            cancel.clone(),
        ),
        signal_hook::flag::register(signal_hook::consts::SIGINT, cancel.clone()),
    ];
    let mut opts = opts.clone();
    opts.signed = Some(signed.clone());
    opts.cancel = Some(cancel.clone());
    let decided = AtomicUsize::new(0);
    let committed = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    // A KMS CA: the client every signature goes through, whose throttled attempts the
    // progress bar and the summary show (a failure to connect shows when signing fails).
    #[cfg(feature = "aws")]
    let kms = store.ca_kms_client().ok().flatten();
    let throttled = || -> u64 {
        #[cfg(feature = "aws")]
        return kms.as_ref().map_or(0, |k| k.stats().throttled);
        #[cfg(not(feature = "aws"))]
        0
    };
    let summary = std::thread::scope(|scope| {
        if let Some(pb) = &bar {
            let (signed, decided, committed, done, throttled) =
                (&signed, &decided, &committed, &done, &throttled);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    pb.set_position(
                        (signed.load(Ordering::Relaxed) + decided.load(Ordering::Relaxed)) as u64,
                    );
                    let t = throttled();
                    if t > 0 {
                        pb.set_message(format!(
                            "{} done, KMS throttled {t} time(s)",
                            committed.load(Ordering::Relaxed)
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
        let summary = issue_with_progress(
            store, out, items, &labels, &opts, &bar, &decided, &committed,
        );
        done.store(true, Ordering::Relaxed);
        summary
    });
    for h in handlers.into_iter().flatten() {
        signal_hook::low_level::unregister(h);
    }
    let summary = summary?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    for w in &summary.warnings {
        warn(w);
    }
    let secs = t0.elapsed().as_secs_f64();
    let line = format!(
        "{} issued, {} exist already, {} invalid, {} failed ({:.1} s)",
        summary.issued,
        summary.exists,
        summary.invalid + invalid,
        summary.failed,
        secs
    );
    if out.json {
        errln!("{line}");
    } else {
        outln!("{line}");
    }
    #[cfg(feature = "aws")]
    if let Some(k) = &kms {
        let st = k.stats();
        let line = format!(
            "KMS: {} signature(s) in {} request(s); {} throttled and retried with backoff",
            st.signatures, st.requests, st.throttled
        );
        if out.json {
            errln!("{line}");
        } else {
            outln!("{line}");
        }
    }
    if summary.interrupted {
        errln!(
            "interrupted: the {} certificate(s) reported above were committed; nothing else was issued. Run the same command again to issue the rest (what exists already is reported `exists`)",
            summary.issued
        );
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(if summary.failed > 0 || summary.invalid > 0 {
        EXIT_ERROR
    } else {
        0
    })
}

/// [`run_issue`]'s call of the library, printing each result as it is committed.
#[allow(clippy::too_many_arguments)]
fn issue_with_progress(
    store: &Store,
    out: &Out,
    items: Vec<BatchItem>,
    labels: &[Label],
    opts: &BatchOptions,
    bar: &Option<indicatif::ProgressBar>,
    decided: &AtomicUsize,
    committed: &AtomicUsize,
) -> vpnca::Result<vpnca::batch::BatchSummary> {
    store.issue_stream(items, opts, &mut |r: &BatchResult| {
        match r.status {
            BatchStatus::Exists | BatchStatus::Invalid => {
                decided.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        committed.fetch_add(1, Ordering::Relaxed);
        let label = labels.get(r.index);
        if out.json {
            let mut v = result_line(label, r);
            with_head(store, &mut v);
            outln!("{v}");
            return;
        }
        let label = label.map(Label::to_string).unwrap_or_default();
        let text = match r.status {
            BatchStatus::Issued => format!(
                "issued   {}  serial {}  until {}{}",
                r.name,
                r.serial.as_deref().unwrap_or(""),
                r.not_after.map(vpnca::fmt_time).unwrap_or_default(),
                r.replaced
                    .as_deref()
                    .map(|s| format!("  (replaces {s})"))
                    .unwrap_or_default()
            ),
            BatchStatus::Exists => format!(
                "exists   {}  serial {}",
                r.name,
                r.serial.as_deref().unwrap_or("")
            ),
            BatchStatus::Invalid | BatchStatus::Failed => format!(
                "{:<8} {} ({label}): {}",
                if r.status == BatchStatus::Invalid {
                    "invalid"
                } else {
                    "failed"
                },
                r.name,
                r.error.as_deref().unwrap_or("")
            ),
        };
        match bar {
            Some(pb) => {
                pb.set_message(format!("{} done", committed.load(Ordering::Relaxed)));
                if matches!(r.status, BatchStatus::Failed | BatchStatus::Invalid) {
                    pb.println(text);
                } else if let Some(e) = &r.error {
                    pb.println(format!("{text}\nwarning: {}: {e}", r.name));
                }
            }
            None => {
                outln!("{text}");
                if let Some(e) = r
                    .error
                    .as_deref()
                    .filter(|_| r.status == BatchStatus::Issued)
                {
                    errln!("warning: {}: {e}", r.name);
                }
            }
        }
    })
}

fn batch_options(opts: &BatchOpts) -> Result<BatchOptions> {
    let profile = match &opts.ovpn_config {
        Some(f) => {
            let policy =
                vpnca::ovpn::DirectivePolicy::new(&opts.allow_directive, opts.allow_foreign_ca)?;
            // Zeroized: a <tls-crypt> key or another user's <key> may be in it.
            let data = zeroize::Zeroizing::new(read_bounded(f, &InputLimit::OVPN_CONFIG)?);
            Some(vpnca::ovpn::ProfileBase::Endpoint {
                config: vpnca::ovpn::ClientConfig::parse_with(
                    &data,
                    &f.display().to_string(),
                    &policy,
                )?,
                random_hostname_prefix: false,
            })
        }
        None => None,
    };
    if opts.jobs == Some(0) {
        bail!("invalid --jobs 0: give at least 1 (or leave it out for every core)");
    }
    Ok(BatchOptions {
        jobs: opts.jobs.unwrap_or(0),
        renew: opts.renew,
        out_dir: opts.out.clone(),
        profile,
        ..BatchOptions::default()
    })
}

/// `vpnca client --batch FILE`.
pub(super) fn client(
    store_open: impl FnOnce() -> Result<Store>,
    out: &Out,
    file: &Path,
    opts: &BatchOpts,
    template: IssueRequest,
) -> Result<u8> {
    // --out is checked before anything is read or issued: a directory (or nothing yet), and
    // in it a chain file vpnca may compare (a regular file) or create.
    if let Some(dir) = &opts.out {
        check_output(dir, Output::Dir)?;
        if PathKind::of(dir)? == PathKind::Dir {
            check_output(&dir.join("ca.crt"), Output::Replace)?;
        }
    }
    let data = read_input(file)?;
    let format = opts.format.as_deref().map(str::parse).transpose()?;
    let records = read_mapped(
        &data,
        format,
        file,
        (batch::ISSUE_COLUMNS, &["name"]),
        &opts.column,
    )?
    .records;
    let (rows, mut errors) = batch::parse_issue_rows(&records, &template);
    let bopts = batch_options(opts)?;
    let store = store_open()?;
    // The profile's rules (SAN policy, validity, …) are checked for every line too, before
    // anything is issued.
    let mut good = Vec::with_capacity(rows.len());
    let mut look_alikes = store.look_alikes()?;
    for r in rows {
        match store
            .check_request(&r.request)
            .and_then(|()| look_alikes.admit(&r.request.name))
        {
            Ok(()) => good.push(r),
            Err(e) => errors.push(RowError {
                line: r.line,
                file: None,
                name: Some(r.request.name.clone()),
                reason: e.to_string(),
            }),
        }
    }
    errors.sort_by_key(|e| e.line);
    report_invalid(out, &errors, opts.skip_invalid, ("issued", "issue"))?;
    let labels = good.iter().map(|r| Label::Line(r.line)).collect();
    let items: Vec<BatchItem> = good.into_iter().map(|r| r.request.into()).collect();
    run_issue(&store, out, items, labels, &bopts, errors.len())
}

/// `vpnca sign-req --batch DIR --type T`.
pub(super) fn sign_req(
    store_open: impl FnOnce() -> Result<Store>,
    out: &Out,
    dir: &Path,
    template: IssueRequest,
    skip_invalid: bool,
    jobs: Option<usize>,
) -> Result<u8> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("csr" | "req" | "pem" | "der")
                )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "no request files (*.csr, *.req, *.pem, *.der) in {}",
            dir.display()
        );
    }
    let mut items = Vec::new();
    let mut labels = Vec::new();
    let mut errors = Vec::new();
    let mut names = std::collections::HashMap::new();
    let mut odd_algorithms = std::collections::BTreeSet::new();
    for f in &files {
        let label = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = read_bounded(f, &InputLimit::CSR)
            .map_err(|e| match e {
                vpnca::Error::Io { cause, .. } => anyhow!("cannot read it: {cause}"),
                vpnca::Error::InputFile { reason, .. } => anyhow!("{reason}"),
                e => e.into(),
            })
            .and_then(|data| Ok(Csr::parse(&data, &label)?))
            .and_then(|csr| {
                let name = csr
                    .common_name
                    .clone()
                    .ok_or_else(|| anyhow!("the request has no CN to name the certificate"))?;
                let name = vpnca::name::normalize_name(&name)?;
                Ok((csr, name))
            });
        match parsed {
            Ok((csr, name)) => {
                if let Some(prev) = names.insert(name.clone(), label.clone()) {
                    errors.push(RowError {
                        line: 0,
                        file: Some(label.clone()),
                        name: Some(name),
                        reason: format!("the same CN as {prev}"),
                    });
                    continue;
                }
                let mut req = template.clone();
                req.name = name;
                if let Some(alg) = csr.algorithm.filter(|a| !a.aws_client_vpn_compatible()) {
                    odd_algorithms.insert(alg.to_string());
                }
                items.push(BatchItem {
                    request: req,
                    public_key: Some(csr.spki_der),
                });
                labels.push(Label::File(label));
            }
            Err(e) => {
                errors.push(RowError {
                    line: 0,
                    file: Some(label.clone()),
                    name: None,
                    reason: format!("{e:#}"),
                });
            }
        }
    }
    let store = store_open()?;
    let mut good_items = Vec::with_capacity(items.len());
    let mut good_labels = Vec::with_capacity(items.len());
    let mut look_alikes = store.look_alikes()?;
    for (item, label) in items.into_iter().zip(labels) {
        match store
            .check_item(&item)
            .and_then(|()| look_alikes.admit(&item.request.name))
        {
            Ok(()) => {
                good_items.push(item);
                good_labels.push(label);
            }
            Err(e) => errors.push(RowError {
                line: 0,
                file: Some(label.to_string()),
                name: Some(item.request.name.clone()),
                reason: e.to_string(),
            }),
        }
    }
    errors.sort_by(|a, b| a.file.cmp(&b.file));
    report_invalid(out, &errors, skip_invalid, ("signed", "sign"))?;
    if !odd_algorithms.is_empty() {
        warn(&format!(
            "AWS Client VPN accepts only RSA-2048 keys; requests with {} keys give certificates that work with OpenVPN but not with Client VPN",
            odd_algorithms.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let (items, labels) = (good_items, good_labels);
    let bopts = BatchOptions {
        jobs: jobs.unwrap_or(0),
        ..BatchOptions::default()
    };
    if jobs == Some(0) {
        bail!("invalid --jobs 0: give at least 1 (or leave it out for every core)");
    }
    run_issue(&store, out, items, labels, &bopts, errors.len())
}

/// `vpnca revoke --batch FILE [--column OURS=THEIRS…]`.
pub(super) fn revoke_mapped(
    store_open: impl FnOnce() -> Result<Store>,
    out: &Out,
    file: &Path,
    format: Option<&str>,
    default_reason: RevocationReason,
    strict: bool,
    column: &[String],
) -> Result<u8> {
    let data = read_input(file)?;
    let format = format.map(str::parse).transpose()?;
    let read = read_mapped(
        &data,
        format,
        file,
        (batch::REVOKE_COLUMNS, &["name", "serial"]),
        column,
    )?;
    let (records, columns) = (read.records, read.columns);
    let (rows, errors) = batch::parse_revoke_rows(&records, default_reason);
    report_invalid(out, &errors, false, ("revoked", ""))?;
    let store = store_open()?;
    let items: Vec<_> = rows.iter().map(|(_, t, r)| (t.clone(), *r)).collect();
    let (results, outcome) = store.revoke_batch(&items, strict)?;
    let crl = outcome.crl.as_ref();
    let mut unknown = 0;
    for r in &results {
        let line = rows.get(r.index).map_or(0, |(l, _, _)| *l);
        if r.status == batch::RevokeStatus::Unknown {
            unknown += 1;
        }
        if out.json {
            let mut v = serde_json::to_value(r)?;
            if let Value::Object(m) = &mut v {
                m.insert("line".into(), json!(line));
            }
            with_head(&store, &mut v);
            outln!("{v}");
        } else {
            let status = serde_json::to_value(r.status)?;
            outln!(
                "{:<8} {} (line {line}){}{}",
                status.as_str().unwrap_or(""),
                r.target,
                if r.serials.is_empty() {
                    String::new()
                } else {
                    format!(": serial {}", r.serials.join(", "))
                },
                r.error
                    .iter()
                    .chain(&r.note)
                    .map(|e| format!(": {e}"))
                    .collect::<String>()
            );
        }
    }
    let revoked: usize = results.iter().map(|r| r.serials.len()).sum();
    let invalid = results
        .iter()
        .filter(|r| r.status == batch::RevokeStatus::Invalid)
        .count();
    let summary = match (crl, &outcome.deferred) {
        (Some(c), _) => format!(
            "{revoked} certificate(s) revoked, {unknown} unknown; wrote CRL #{} with {} entries to {} (nextUpdate {})",
            c.number,
            c.entries,
            store.crl_path().display(),
            vpnca::fmt_time(c.next_update)
        ),
        (None, Some(_)) => format!(
            "{revoked} certificate(s) revoked, {unknown} unknown; NO CRL WAS SIGNED (deferred: see the warning)"
        ),
        (None, None) => format!("nothing revoked ({unknown} unknown); the CRL is unchanged"),
    };
    if out.json {
        if crl.is_some() || outcome.deferred.is_some() {
            let mut last = json!({"crl": crl.map(|c| crl_json(c, &store.crl_path())), "revoked": revoked, "unknown": unknown});
            super::revocation::add_deferred(&mut last, outcome.deferred.as_ref());
            if !columns.is_empty() {
                last["columns"] = serde_json::to_value(&columns)?;
            }
            with_head(&store, &mut last);
            outln!("{last}");
        }
        errln!("{summary}");
    } else {
        outln!("{summary}");
        if crl.is_some() {
            super::revocation::print_upload_steps(&store);
        }
    }
    // A deferred CRL (exit 3) says more than invalid lines (2): the revocations are recorded
    // but the VPN still accepts them.
    if let Some(code) = super::revocation::after_crl(&store, crl, outcome.deferred.as_ref()) {
        return Ok(code);
    }
    Ok(if invalid > 0 { EXIT_ERROR } else { 0 })
}

/// `vpnca profile --batch FILE --out DIR`.
pub(super) fn profile(
    store_open: impl FnOnce() -> Result<Store>,
    out: &Out,
    file: &Path,
    base: &vpnca::ovpn::ProfileBase,
    key_pass: Option<&vpnca::Passphrase>,
    dir: &Path,
    column: &[String],
) -> Result<u8> {
    let data = read_input(file)?;
    let records =
        read_mapped(&data, None, file, (batch::ISSUE_COLUMNS, &["name"]), column)?.records;
    // Only the name matters here (the file may be the onboarding CSV with more columns).
    let records: Vec<batch::Record> = records
        .into_iter()
        .map(|mut r| {
            r.fields.retain(|k, _| k == "name");
            r
        })
        .collect();
    let (rows, errors) = batch::parse_issue_rows(
        &records,
        &IssueRequest::new(String::new(), CertKind::Client),
    );
    report_invalid(out, &errors, false, ("written", ""))?;
    let store = store_open()?;
    // A configuration every profile would refuse (a foreign <ca>) stops the batch once, before
    // any profile is written, instead of failing every line with the same error.
    vpnca::ovpn::ProfileContext::new(&store)?.check_base(base)?;
    let (mut written, mut exists, mut failed) = (0, 0, 0);
    let mut warnings = Vec::new();
    for row in &rows {
        let name = &row.request.name;
        let path = dir.join(format!("{name}.ovpn"));
        if path.symlink_metadata().is_ok() {
            if out.json {
                let mut v =
                    json!({"line": row.line, "name": name, "status": "exists", "path": path});
                with_head(&store, &mut v);
                outln!("{v}");
            } else {
                outln!("exists   {name}  {} (left as it is)", path.display());
            }
            exists += 1;
            continue;
        }
        let res = store
            .current(name)
            .and_then(|rec| store.write_profile(&rec, base, key_pass, &path));
        match res {
            Ok(rep) => {
                written += 1;
                warnings.extend(rep.warnings.iter().cloned());
                if out.json {
                    let mut v = json!({"line": row.line, "name": name, "status": "written", "path": rep.path});
                    with_head(&store, &mut v);
                    outln!("{v}");
                } else {
                    outln!("written  {name}  {}", rep.path.display());
                }
            }
            Err(e) => {
                failed += 1;
                if out.json {
                    let mut v = json!({"line": row.line, "name": name, "status": "failed", "error": e.to_string()});
                    with_head(&store, &mut v);
                    outln!("{v}");
                } else {
                    outln!("failed   {name} (line {}): {e}", row.line);
                }
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    for w in &warnings {
        warn(w);
    }
    // Every row is exactly one of the three: a profile that exists is neither written now nor
    // a failure (re-running a batch is how the missing ones get written).
    let summary = format!("{written} profile(s) written, {exists} exist already, {failed} failed");
    if out.json {
        errln!("{summary}");
    } else {
        outln!("{summary}");
    }
    Ok(if failed > 0 { EXIT_ERROR } else { 0 })
}
