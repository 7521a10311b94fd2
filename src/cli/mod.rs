//! The CLI: parse arguments, get passphrases, call the library, print. No PKI logic here.

/// `println!` for the CLI: a failure to write standard output (a full disk, a closed pipe) is
/// recorded for `main` to report, never a panic; later output is dropped.
macro_rules! outln {
    () => {
        $crate::cli::out_fmt(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::cli::out_fmt(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `print!` for the CLI, see [`outln!`].
macro_rules! outp {
    ($($t:tt)*) => {
        $crate::cli::out_fmt(format_args!($($t)*))
    };
}

/// `eprintln!` for the CLI: standard error that cannot be written is ignored (there is nowhere
/// left to say so), never a panic.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::cli::err_fmt(format_args!("{}\n", format_args!($($t)*)))
    };
}

mod args;
#[cfg(feature = "aws")]
mod aws;
mod batch;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{CommandFactory, Parser};
use serde_json::{Value, json};

use args::{Cli, Command, ExportFormat, KeyOpts};
use vpnca::{
    CertKind, CertRecord, CrlOptions, Csr, IssueRequest, KdfParams, KeyAlgorithm, KeyExport,
    ListFilter, Passphrase, RenewOptions, RevocationReason, San, Serial, Store, Target, Validity,
};

/// Exit code: a check found a problem.
const EXIT_PROBLEM: u8 = 1;
/// Exit code: an error (bad input, wrong passphrase, …); nothing was changed.
const EXIT_ERROR: u8 = 2;
/// Exit code: an AWS call failed (the service refused, or could not be reached).
#[cfg(feature = "aws")]
const EXIT_AWS: u8 = 3;

/// The first error writing standard output; `main` reports it.
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

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
fn stdout_failed(e: std::io::Error) {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert(e);
}

/// Writes to standard error; a failure is ignored.
pub(crate) fn err_fmt(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.json;
    let result = run(cli);
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
    let out_error = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            if json {
                outln!("{}", json!({"error": msg}));
            }
            errln!("error: {msg}");
            exit_code(&e)
        }
    };
    match out_error {
        // The reader went away (`vpnca list | head -1`): what it read is all it wanted.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        // Output that could not be delivered is a failure, even after the work was done.
        Some(e) => {
            errln!(
                "error: writing to standard output failed ({e}); the output is incomplete{}",
                if code == 0 {
                    ", but the command itself completed (see `vpnca log`)"
                } else {
                    ""
                }
            );
            ExitCode::from(if code == 0 { EXIT_ERROR } else { code })
        }
        None => ExitCode::from(code),
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    #[cfg(feature = "aws")]
    if let Some(vpnca::Error::Aws { .. } | vpnca::Error::RemoteMismatch { .. }) =
        e.downcast_ref::<vpnca::Error>()
    {
        return EXIT_AWS;
    }
    let _ = e;
    EXIT_ERROR
}

/// Help and version go to stdout with exit 0; a usage error goes to stderr with exit 2 and,
/// when `--json` is among the arguments, also as `{"error": …}` on stdout like every other
/// error.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if std::env::args_os().any(|a| a == "--json") {
        let msg = e.render().to_string();
        let first = msg
            .lines()
            .next()
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: ");
        outln!("{}", json!({"error": first}));
    }
    let _ = e.print();
    ExitCode::from(EXIT_ERROR)
}

struct Out {
    json: bool,
}

impl Out {
    fn doc(&self, v: &Value, human: impl FnOnce()) {
        if self.json {
            outln!("{v}");
        } else {
            human();
        }
    }
}

fn warn(msg: &str) {
    errln!("warning: {msg}");
}

fn note_nopass(nopass: &Option<String>) -> Result<()> {
    match nopass.as_deref() {
        None => Ok(()),
        Some("nopass") => {
            errln!(
                "note: `nopass` is accepted for easy-rsa compatibility; vpnca always keeps private keys encrypted in the store (use `vpnca export --key` for a plain key file)"
            );
            Ok(())
        }
        Some(other) => {
            bail!("unexpected argument {other:?} (only easy-rsa's `nopass` is accepted here)")
        }
    }
}

/// A passphrase for something new (an exported key, a PKCS#12 file) from FILE, checked.
fn read_new_secret_file(path: &Path) -> Result<Passphrase> {
    let p = read_secret_file(path)?;
    p.check_new()
        .with_context(|| format!("the passphrase in {}", path.display()))?;
    Ok(p)
}

fn read_secret_file(path: &Path) -> Result<Passphrase> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("reading passphrase file {}", path.display()))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("passphrase file {} is not UTF-8 text", path.display()))?;
    let first = text.lines().next().unwrap_or("");
    Ok(Passphrase::new(first.to_owned()))
}

/// The passphrase for an exported key or PKCS#12 file: FILE, else a confirmed prompt on a
/// terminal (empty = generate), else generated. Returns whether it was generated.
fn export_passphrase(file: &Option<PathBuf>) -> Result<(Passphrase, bool)> {
    if let Some(f) = file {
        return Ok((read_new_secret_file(f)?, false));
    }
    if std::io::stdin().is_terminal() {
        let p = Passphrase::new(
            rpassword::prompt_password("passphrase for the exported key (empty: generate one): ")
                .context("reading the passphrase")?,
        );
        if !p.expose().is_empty() {
            let again = Passphrase::new(
                rpassword::prompt_password("passphrase for the exported key (again): ")
                    .context("reading the passphrase")?,
            );
            if !p.ct_eq(&again) {
                bail!("the two passphrases differ; nothing was written");
            }
            return Ok((p, false));
        }
    }
    Ok((vpnca::pkcs12::generate_passphrase()?, true))
}

/// The store passphrase: --passphrase-file, $VPNCA_PASSPHRASE, or a terminal prompt
/// (confirmed when `new`).
fn passphrase(cli_file: &Option<PathBuf>, env: &str, new: bool, what: &str) -> Result<Passphrase> {
    let flag = if env == "VPNCA_NEW_PASSPHRASE" {
        "--new-passphrase-file"
    } else {
        "--passphrase-file"
    };
    if let Some(f) = cli_file {
        return read_secret_file(f);
    }
    if let Ok(v) = std::env::var(env) {
        return Ok(Passphrase::new(v));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no {what}: set ${env} or use {flag} FILE (there is no terminal to prompt on)");
    }
    let p = Passphrase::new(
        rpassword::prompt_password(format!("{what}: ")).context("reading the passphrase")?,
    );
    if new {
        let again = Passphrase::new(
            rpassword::prompt_password(format!("{what} (again): "))
                .context("reading the passphrase")?,
        );
        if !p.ct_eq(&again) {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(p)
}

fn open_unlocked(cli: &Cli) -> Result<Store> {
    let mut store = Store::open(&cli.pki)?;
    let pass = passphrase(
        &cli.passphrase_file,
        "VPNCA_PASSPHRASE",
        false,
        "store passphrase",
    )?;
    store.unlock(&pass)?;
    Ok(store)
}

fn kdf(memory: Option<u32>, time: Option<u32>) -> Result<KdfParams> {
    let mut k = KdfParams::default();
    if let Some(m) = memory {
        k.m_kib = m
            .checked_mul(1024)
            .ok_or_else(|| anyhow!("--kdf-memory-mib {m} is too large"))?;
    }
    if let Some(t) = time {
        k.t = t;
    }
    k.check()?;
    Ok(k)
}

fn algorithm(a: &Option<String>) -> Result<KeyAlgorithm> {
    let alg = match a {
        Some(s) => s.parse()?,
        None => KeyAlgorithm::default(),
    };
    warn_client_vpn(alg);
    Ok(alg)
}

/// Client VPN takes RSA-2048 (and RSA-1024, too weak for vpnca to make or sign) only.
fn warn_client_vpn(alg: KeyAlgorithm) {
    if !alg.aws_client_vpn_compatible() {
        warn(&format!(
            "AWS Client VPN accepts only RSA-2048 keys (and RSA-1024, which is too weak for vpnca to make or sign); a {alg} certificate works with OpenVPN but not with Client VPN"
        ));
    }
}

fn validity(days: Option<u32>, ttl: &Option<String>) -> Result<Validity> {
    Ok(match (days, ttl) {
        (_, Some(t)) => Validity::parse_ttl(t)?,
        (Some(d), None) => Validity::Days(d),
        (None, None) => Validity::Default,
    })
}

fn sans(list: &[String]) -> Result<Vec<San>> {
    list.iter()
        .map(|s| San::parse(s).map_err(Into::into))
        .collect()
}

fn record_json(r: &CertRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "status".into(),
            json!(r.status(vpnca::store_now()).as_str()),
        );
    }
    v
}

fn human_record(r: &CertRecord) -> String {
    format!(
        "{:<7} {:<32} {:<10} expires {}  serial {}",
        r.kind.as_str(),
        r.name,
        r.status(vpnca::store_now()).as_str(),
        vpnca::fmt_time(r.not_after),
        r.serial
    )
}

fn select(store: &Store, name: &Option<String>, serial: &Option<String>) -> Result<CertRecord> {
    match (name, serial) {
        (_, Some(s)) => Ok(store.by_serial(&s.parse::<Serial>()?)?),
        (Some(n), None) if n == "ca" && store.by_name("ca")?.is_empty() => Ok(store.ca()?),
        (Some(n), None) => Ok(store.current(n)?),
        (None, None) => bail!("give a NAME or --serial HEX"),
    }
}

fn run(cli: Cli) -> Result<u8> {
    let out = Out { json: cli.json };
    match &cli.command {
        Command::Init {
            kdf_memory_mib,
            kdf_time,
            extra,
        } => {
            if !extra.is_empty() {
                errln!("note: ignoring easy-rsa argument(s) {extra:?}");
            }
            let k = kdf(*kdf_memory_mib, *kdf_time)?;
            if cli.pki.join(vpnca::store::DB_FILE).exists() {
                return Err(vpnca::Error::AlreadyInitialized {
                    path: cli.pki.clone(),
                }
                .into());
            }
            let pass = passphrase(
                &cli.passphrase_file,
                "VPNCA_PASSPHRASE",
                true,
                "new store passphrase",
            )?;
            Store::init(&cli.pki, &pass, k)?;
            out.doc(&json!({"pki": cli.pki, "kdf": k}), || {
                outln!(
                    "Initialised an encrypted vpnca store in {}",
                    cli.pki.display()
                );
                outln!("Next: vpnca ca --cn \"My VPN CA\"");
            });
        }
        Command::Ca {
            cn,
            algo,
            days,
            sub_ca,
            csr_out,
            import_cert,
            chain,
            nopass,
        } => {
            note_nopass(nopass)?;
            let store = open_unlocked(&cli)?;
            let cn = cn.clone().unwrap_or_else(|| "vpnca CA".to_string());
            if let (Some(cert), Some(chain)) = (import_cert, chain) {
                let cert_data =
                    std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
                let chain_data =
                    std::fs::read(chain).with_context(|| format!("reading {}", chain.display()))?;
                let rec = store.import_sub_ca_cert(
                    &cert_data,
                    &cert.display().to_string(),
                    &chain_data,
                    &chain.display().to_string(),
                )?;
                out.doc(&record_json(&rec), || {
                    outln!(
                        "Sub-CA {} imported (serial {}); its chain is in {}",
                        rec.name,
                        rec.serial,
                        store.ca_path().display()
                    );
                });
            } else if *sub_ca {
                let path = csr_out
                    .as_ref()
                    .ok_or_else(|| anyhow!("--sub-ca needs --csr-out FILE"))?;
                if path.exists() {
                    return Err(vpnca::Error::FileExists { path: path.clone() }.into());
                }
                let csr = store.create_sub_ca_request(&cn, algorithm(algo)?)?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(csr.as_bytes()))
                    .with_context(|| format!("writing {}", path.display()))?;
                out.doc(&json!({"csr": path, "name": cn}), || {
                    outln!("Wrote the sub-CA request to {}.", path.display());
                    outln!("Have your parent CA sign it, then: vpnca ca --import-cert signed.crt --chain parent-chain.pem");
                });
            } else {
                let rec = store.create_root_ca(
                    &cn,
                    algorithm(algo)?,
                    days.map(Validity::Days).unwrap_or(Validity::Default),
                )?;
                out.doc(&record_json(&rec), || {
                    outln!(
                        "Created root CA {:?} (serial {}), valid until {}",
                        rec.name,
                        rec.serial,
                        vpnca::fmt_time(rec.not_after)
                    );
                    outln!("CA certificate: {}", store.ca_path().display());
                });
            }
        }
        Command::Server {
            name,
            san,
            key,
            nopass,
        } => {
            note_nopass(nopass)?;
            let req = issue_request(name, CertKind::Server, sans(san)?, key)?;
            let store = open_unlocked(&cli)?;
            let rec = store.issue(&req)?;
            print_issued(&out, &store, &rec);
        }
        Command::Client {
            name,
            batch: batch_file,
            batch_opts,
            email,
            san,
            key,
            nopass,
        } => {
            note_nopass(nopass)?;
            let mut list = sans(san)?;
            if let Some(e) = email {
                list.push(San::parse(&format!("email:{e}"))?);
            }
            if let Some(f) = batch_file {
                let template = IssueRequest {
                    name: String::new(),
                    kind: CertKind::Client,
                    profile: key.profile.clone(),
                    algorithm: algorithm(&key.algo)?,
                    validity: validity(key.days, &key.ttl)?,
                    sans: list,
                };
                return batch::client(|| open_unlocked(&cli), &out, f, batch_opts, template);
            }
            let name = name
                .as_deref()
                .ok_or_else(|| anyhow!("give a NAME or --batch FILE"))?;
            let req = issue_request(name, CertKind::Client, list, key)?;
            let store = open_unlocked(&cli)?;
            let rec = store.issue(&req)?;
            print_issued(&out, &store, &rec);
        }
        Command::SignReq {
            args,
            batch: batch_dir,
            skip_invalid,
            jobs,
            kind,
            name,
            san,
            days,
            profile,
        } => {
            if let Some(dir) = batch_dir {
                let kind = match kind.as_deref() {
                    Some("client") => CertKind::Client,
                    Some("server") => CertKind::Server,
                    Some(other) => bail!("invalid --type {other:?}: expected client or server"),
                    None => bail!("--batch needs --type client|server"),
                };
                let template = IssueRequest {
                    name: String::new(),
                    kind,
                    profile: profile.clone(),
                    algorithm: KeyAlgorithm::default(),
                    validity: validity(*days, &None)?,
                    sans: sans(san)?,
                };
                return batch::sign_req(
                    || open_unlocked(&cli),
                    &out,
                    dir,
                    template,
                    *skip_invalid,
                    *jobs,
                );
            }
            let (path, kind, name) = match args.as_slice() {
                [file] => {
                    let k = kind
                        .as_deref()
                        .ok_or_else(|| anyhow!("--type client|server is required"))?;
                    (PathBuf::from(file), k.to_string(), name.clone())
                }
                [ty, req_name] => (
                    cli.pki.join("reqs").join(format!("{req_name}.req")),
                    ty.clone(),
                    Some(name.clone().unwrap_or(req_name.clone())),
                ),
                _ => bail!("expected FILE or TYPE NAME"),
            };
            let kind: CertKind = match kind.as_str() {
                "client" => CertKind::Client,
                "server" => CertKind::Server,
                other => bail!("invalid --type {other:?}: expected client or server"),
            };
            let data =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let csr = Csr::parse(&data, &path.display().to_string())?;
            if let Some(alg) = csr.algorithm {
                warn_client_vpn(alg);
            }
            let sans = sans(san)?;
            let store = open_unlocked(&cli)?;
            let rec = store.sign_request(
                &csr,
                kind,
                name.as_deref(),
                profile.as_deref(),
                days.map(Validity::Days).unwrap_or(Validity::Default),
                sans,
            )?;
            print_issued(&out, &store, &rec);
        }
        Command::Revoke {
            name,
            reason_arg,
            serial,
            reason,
            batch: batch_file,
            format,
            strict,
        } => {
            let reason: RevocationReason = match (reason, reason_arg) {
                (Some(r), None) | (None, Some(r)) => r.parse()?,
                (None, None) => RevocationReason::Unspecified,
                (Some(_), Some(_)) => bail!("give the reason once (--reason)"),
            };
            if let Some(f) = batch_file {
                return batch::revoke(
                    || open_unlocked(&cli),
                    &out,
                    f,
                    format.as_deref(),
                    reason,
                    *strict,
                );
            }
            let target = match (name, serial) {
                (_, Some(s)) => Target::Serial(s.parse()?),
                (Some(n), None) => {
                    vpnca::name::validate_name(n)?;
                    Target::Name(n.clone())
                }
                (None, None) => bail!("give a NAME or --serial HEX"),
            };
            let store = open_unlocked(&cli)?;
            let res = store.revoke(&target, reason)?;
            let v = json!({"revoked": res.revoked.iter().map(record_json).collect::<Vec<_>>(), "crl": crl_json(&res.crl, &store.crl_path())});
            out.doc(&v, || {
                for r in &res.revoked {
                    outln!("Revoked {} {} (serial {}), reason {}", r.kind.as_str(), r.name, r.serial, reason.as_str());
                }
                outln!(
                    "Wrote CRL #{} with {} entries to {} (valid until {})",
                    res.crl.number,
                    res.crl.entries,
                    store.crl_path().display(),
                    vpnca::fmt_time(res.crl.next_update)
                );
                outln!("Upload it to your VPN (AWS Client VPN: aws ec2 import-client-vpn-client-certificate-revocation-list; OpenVPN: crl-verify).");
            });
        }
        Command::Renew {
            name,
            days,
            ttl,
            reuse_key,
            algo,
            revoke_old,
            nopass,
        } => {
            note_nopass(nopass)?;
            let opts = RenewOptions {
                validity: Some(validity(*days, ttl)?),
                reuse_key: *reuse_key,
                algorithm: match algo {
                    Some(_) => Some(algorithm(algo)?),
                    None => None,
                },
                revoke_old: *revoke_old,
            };
            let store = open_unlocked(&cli)?;
            let r = store.renew(name, &opts)?;
            let v = json!({"old": record_json(&r.old), "new": record_json(&r.new), "crl": r.crl.as_ref().map(|c| crl_json(c, &store.crl_path()))});
            out.doc(&v, || {
                outln!(
                    "Renewed {}: new serial {} valid until {}",
                    name,
                    r.new.serial,
                    vpnca::fmt_time(r.new.not_after)
                );
                outln!(
                    "Old serial {} is now {}",
                    r.old.serial,
                    r.old.status(vpnca::store_now()).as_str()
                );
                if let Some(c) = &r.crl {
                    outln!(
                        "Wrote CRL #{} ({} entries) to {}",
                        c.number,
                        c.entries,
                        store.crl_path().display()
                    );
                }
            });
        }
        Command::Crl {
            days,
            out: out_file,
            omit_expired,
            keep_expired,
        } => {
            let store = open_unlocked(&cli)?;
            let mut opts = CrlOptions::from_store(&store)?;
            if let Some(d) = days {
                opts.days = *d;
            }
            if *omit_expired {
                opts.omit_expired = true;
            } else if *keep_expired {
                opts.omit_expired = false;
            }
            let info = store.generate_crl(&opts)?;
            if let Some(f) = out_file {
                vpnca::store::write_public_file(f, info.pem.as_bytes())?;
            }
            out.doc(&crl_json(&info, &store.crl_path()), || {
                outln!(
                    "Wrote CRL #{} with {} entries to {}{} (nextUpdate {})",
                    info.number,
                    info.entries,
                    store.crl_path().display(),
                    out_file
                        .as_ref()
                        .map(|f| format!(" and {}", f.display()))
                        .unwrap_or_default(),
                    vpnca::fmt_time(info.next_update)
                );
            });
        }
        Command::List {
            status,
            kind,
            expiring_within,
        } => {
            let store = Store::open(&cli.pki)?;
            let filter = ListFilter {
                status: status.as_deref().map(str::parse).transpose()?,
                kind: kind.as_deref().map(str::parse).transpose()?,
                expiring_within_days: *expiring_within,
            };
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let written = store.list(&filter)?.iter().try_for_each(|r| {
                if out.json {
                    writeln!(w, "{}", record_json(r))
                } else {
                    writeln!(w, "{}", human_record(r))
                }
            });
            if let Err(e) = written.and_then(|()| w.flush()) {
                stdout_failed(e);
            }
        }
        Command::Show { name, serial, pem } => {
            let store = Store::open(&cli.pki)?;
            let r = select(&store, name, serial)?;
            let details = vpnca::x509::describe(&r.der)?;
            let mut v = record_json(&r);
            if let Value::Object(m) = &mut v {
                m.insert("subject".into(), json!(details.subject));
                m.insert("issuer".into(), json!(details.issuer));
                m.insert("sans".into(), json!(details.sans));
                m.insert("key_algorithm".into(), json!(details.key_algorithm));
                m.insert("fingerprint_sha256".into(), json!(r.fingerprint_sha256()));
                m.insert("pem".into(), json!(r.pem()));
            }
            out.doc(&v, || {
                outln!("name:        {}", r.name);
                outln!("kind:        {}", r.kind.as_str());
                outln!("status:      {}", r.status(vpnca::store_now()).as_str());
                outln!("serial:      {}", r.serial);
                outln!("subject:     {}", details.subject);
                outln!("issuer:      {}", details.issuer);
                outln!("SANs:        {}", details.sans.join(", "));
                outln!("key:         {}", details.key_algorithm);
                outln!("not before:  {}", vpnca::fmt_time(r.not_before));
                outln!("not after:   {}", vpnca::fmt_time(r.not_after));
                if let (Some(t), Some(reason)) = (r.revoked_at, r.reason) {
                    outln!("revoked:     {} ({})", vpnca::fmt_time(t), reason.as_str());
                }
                if let Some(s) = &r.superseded_by {
                    outln!("superseded by serial {s}");
                }
                outln!("SHA-256:     {}", r.fingerprint_sha256());
                outln!(
                    "key stored:  {}",
                    if r.has_key {
                        "yes (encrypted)"
                    } else {
                        "no (signed from a CSR)"
                    }
                );
                if *pem {
                    outp!("{}", r.pem());
                }
            });
        }
        Command::Export {
            name,
            serial,
            out: dir,
            format,
            key,
            key_passphrase_file,
        } => {
            let store = open_unlocked(&cli)?;
            let r = select(&store, name, serial)?;
            let mut generated = None;
            let key_export = match (format, key, key_passphrase_file) {
                (ExportFormat::Pem, _, Some(f)) => KeyExport::Encrypted(read_new_secret_file(f)?),
                (ExportFormat::Pem, true, None) => KeyExport::Plain,
                (ExportFormat::Pem, false, None) => KeyExport::None,
                (ExportFormat::PemEncrypted | ExportFormat::P12, _, f) => {
                    let (p, was_generated) = export_passphrase(f)?;
                    if was_generated {
                        generated = Some(p.clone());
                    }
                    if *format == ExportFormat::P12 {
                        KeyExport::Pkcs12(p)
                    } else {
                        KeyExport::Encrypted(p)
                    }
                }
            };
            let rep = store.export(&r, dir, &key_export)?;
            let mut v = serde_json::to_value(&rep)?;
            if let (Some(p), Value::Object(m)) = (&generated, &mut v) {
                m.insert("passphrase".into(), json!(p.expose_str()));
            }
            out.doc(&v, || {
                for f in &rep.files {
                    outln!("wrote {}", f.display());
                }
                if let Some(p) = &generated {
                    outln!("passphrase (shown once, not stored): {}", p.expose_str());
                }
                if rep.key == "plain" {
                    errln!("note: {}.key is an UNENCRYPTED private key (mode 0600): import it where needed, then delete it", rep.name);
                }
            });
        }
        Command::Profile {
            name,
            batch: batch_file,
            config,
            remote,
            proto,
            server_name,
            random_hostname_prefix,
            key_passphrase_file,
            out: out_file,
        } => {
            let base = match (config, remote) {
                (Some(f), _) => {
                    let data =
                        std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                    vpnca::ovpn::ProfileBase::Endpoint {
                        config: vpnca::ovpn::ClientConfig::parse(&data, &f.display().to_string())?,
                        random_hostname_prefix: *random_hostname_prefix,
                    }
                }
                (None, Some(r)) => {
                    let (host, port) = vpnca::ovpn::parse_remote(r)?;
                    vpnca::ovpn::ProfileBase::Plain {
                        host,
                        port,
                        proto: proto.as_deref().unwrap_or("udp").parse()?,
                        server_name: server_name.clone(),
                    }
                }
                (None, None) => bail!("give --config FILE or --remote HOST[:PORT]"),
            };
            let key_pass = key_passphrase_file
                .as_ref()
                .map(|f| read_new_secret_file(f))
                .transpose()?;
            if let Some(f) = batch_file {
                let dir = out_file
                    .as_deref()
                    .ok_or_else(|| anyhow!("--batch needs --out DIR"))?;
                return batch::profile(
                    || open_unlocked(&cli),
                    &out,
                    f,
                    &base,
                    key_pass.as_ref(),
                    dir,
                );
            }
            let name = name
                .as_deref()
                .ok_or_else(|| anyhow!("give a NAME or --batch FILE"))?;
            let path = out_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{name}.ovpn")));
            let store = open_unlocked(&cli)?;
            let rec = store.current(name)?;
            let rep = store.write_profile(&rec, &base, key_pass.as_ref(), &path)?;
            for w in &rep.warnings {
                warn(w);
            }
            out.doc(&serde_json::to_value(&rep)?, || {
                outln!(
                    "wrote {} (mode 0600): {}'s certificate and {} key inline",
                    rep.path.display(),
                    rep.name,
                    if rep.key_encrypted { "encrypted" } else { "UNENCRYPTED" }
                );
                outln!("Hand it to the user over a private channel, then delete it (see docs/commands-delivery.md).");
            });
        }
        Command::ImportEasyrsa {
            path,
            easyrsa_passphrase_file,
            dry_run,
        } => return import_easyrsa(&cli, &out, path, easyrsa_passphrase_file, *dry_run),
        #[cfg(feature = "aws")]
        Command::Acm { command } => return aws::acm(&cli, &out, command),
        #[cfg(feature = "aws")]
        Command::ClientVpn { command } => return aws::clientvpn(&cli, &out, command),
        Command::Status {
            warn_days,
            #[cfg(feature = "aws")]
                aws: with_aws,
            #[cfg(feature = "aws")]
            aws_opts,
        } => {
            let store = Store::open(&cli.pki)?;
            let rep = store.status(*warn_days)?;
            #[cfg(feature = "aws")]
            if *with_aws {
                let local = serde_json::to_value(&rep)?;
                if !out.json {
                    print_status(&rep, *warn_days);
                }
                let (remote, attention) = aws::status(&store, &out, *warn_days, aws_opts)?;
                if out.json {
                    outln!("{}", json!({"local": local, "aws": remote}));
                } else if let Some(f) = remote["findings"].as_array() {
                    for f in f {
                        outln!("ATTENTION: {}", f["message"].as_str().unwrap_or_default());
                    }
                }
                return Ok(if rep.findings.is_empty() && !attention {
                    0
                } else {
                    EXIT_PROBLEM
                });
            }
            out.doc(&serde_json::to_value(&rep)?, || {
                print_status(&rep, *warn_days)
            });
            return Ok(if rep.findings.is_empty() {
                0
            } else {
                EXIT_PROBLEM
            });
        }
        Command::Log => {
            let store = Store::open(&cli.pki)?;
            for e in store.audit_log()? {
                if out.json {
                    outln!("{}", serde_json::to_value(&e)?);
                } else {
                    outln!(
                        "{:>5} {} {:<9} {:<24} {} {}",
                        e.seq,
                        vpnca::fmt_time(e.time),
                        e.action,
                        e.name,
                        e.serial,
                        e.user
                    );
                }
            }
        }
        Command::Verify { accept_restore } => {
            let store = open_unlocked(&cli)?;
            let rep = store.verify()?;
            let print_report = |rep: &vpnca::VerifyReport| {
                outln!(
                    "checked {} certificates, {} keys, {} audit entries",
                    rep.certificates,
                    rep.keys,
                    rep.audit_entries
                );
                for r in &rep.repaired {
                    outln!("repaired public mirror {r}");
                }
                for p in &rep.problems {
                    outln!("PROBLEM: {p}");
                }
                if rep.problems.is_empty() {
                    outln!("OK: the store is intact");
                }
            };
            let others = rep.problems.len() - rep.rollback.len();
            if !*accept_restore || rep.rollback.is_empty() || others > 0 {
                out.doc(&serde_json::to_value(&rep)?, || {
                    print_report(&rep);
                    if *accept_restore && rep.rollback.is_empty() {
                        outln!("nothing to accept: the database is not older than its checkpoint or crl.pem");
                    } else if *accept_restore {
                        outln!("NOT ACCEPTED: verify found {others} other problem(s); a restore is accepted only into an otherwise intact store");
                    }
                });
                return Ok(if rep.problems.is_empty() {
                    0
                } else {
                    EXIT_PROBLEM
                });
            }
            let restore = store.accept_restore()?.ok_or_else(|| {
                anyhow::anyhow!(
                    "the store changed while it was being verified; run the command again"
                )
            })?;
            let after = store.verify()?;
            let attention = !after.problems.is_empty() || !restore.lost_revocations.is_empty();
            out.doc(
                &serde_json::json!({"restore": restore, "verify": after}),
                || {
                    for p in &rep.rollback {
                        outln!("accepted: {p}");
                    }
                    for r in &restore.revoked_again {
                        outln!(
                            "revoked again: {} (serial {}), revoked in the newer crl.pem",
                            r.name, r.serial
                        );
                    }
                    for s in &restore.lost_revocations {
                        outln!("LOST REVOCATION: serial {s} is revoked in the newer crl.pem but unknown to this database; no CRL of this store can list it (its certificate stays valid until it expires: see docs/security.md)");
                    }
                    for f in &restore.unknown_certificates {
                        outln!("unknown certificate: {f} was issued by this CA after the copy was made; the store cannot revoke it");
                    }
                    if let Some(c) = &restore.crl {
                        outln!(
                            "wrote CRL number {} with {} entries: upload it wherever CRLs go (vpnca clientvpn push-crl)",
                            c.number, c.entries
                        );
                    }
                    print_report(&after);
                },
            );
            return Ok(if attention { EXIT_PROBLEM } else { 0 });
        }
        Command::Passwd {
            new_passphrase_file,
            kdf_memory_mib,
            kdf_time,
        } => {
            let mut store = open_unlocked(&cli)?;
            let k = match (kdf_memory_mib, kdf_time) {
                (None, None) => None,
                _ => {
                    let cur = store.kdf_params()?;
                    let mut k = kdf(*kdf_memory_mib, *kdf_time)?;
                    if kdf_memory_mib.is_none() {
                        k.m_kib = cur.m_kib;
                    }
                    if kdf_time.is_none() {
                        k.t = cur.t;
                    }
                    Some(k)
                }
            };
            let new = passphrase(
                new_passphrase_file,
                "VPNCA_NEW_PASSPHRASE",
                true,
                "new store passphrase",
            )?;
            store.change_passphrase(&new, k)?;
            out.doc(&json!({"ok": true}), || outln!("Passphrase changed."));
        }
        Command::Quickstart {
            server,
            client,
            cn,
            kdf_memory_mib,
            kdf_time,
        } => {
            return quickstart(
                &cli,
                &out,
                server,
                client,
                cn,
                kdf(*kdf_memory_mib, *kdf_time)?,
            );
        }
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "vpnca", &mut buf);
            outp!("{}", String::from_utf8_lossy(&buf));
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
            outp!("{}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(0)
}

fn import_easyrsa(
    cli: &Cli,
    out: &Out,
    path: &Path,
    pass_file: &Option<PathBuf>,
    dry_run: bool,
) -> Result<u8> {
    let pass = pass_file
        .as_ref()
        .map(|f| read_secret_file(f))
        .transpose()?;
    let store = Store::open(&cli.pki)?;
    if let Ok(ca) = store.ca() {
        bail!(
            "this store already has a CA ({}); import-easyrsa needs a new store: `vpnca --pki NEWDIR init`",
            ca.name
        );
    }
    let plan = vpnca::easyrsa::plan(path, pass.as_ref())?;
    for n in &plan.notes {
        errln!("note: {n}");
    }
    for p in &plan.problems {
        errln!("problem: {}: {}", p.object, p.reason);
    }
    let report = |imported: Option<&vpnca::easyrsa::ImportReport>| {
        let mut v = serde_json::to_value(&plan).unwrap_or_default();
        v["dry_run"] = json!(dry_run);
        v["imported"] = json!(imported.is_some());
        v["crl"] = imported.map_or(
            Value::Null,
            |r| json!({"number": r.crl.number, "entries": r.crl.entries}),
        );
        v
    };
    let human = |imported: bool| {
        if let Some(ca) = &plan.ca {
            outln!("CA {} (serial {})", ca.name, ca.serial.hex());
        }
        for e in &plan.certificates {
            outln!(
                "{:<7} {:<32} {:<34} {:<10} {}",
                e.kind.as_str(),
                e.name,
                e.serial.hex(),
                serde_json::to_value(e.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                if e.key { "key" } else { "no key" }
            );
        }
        if !imported {
            outln!(
                "{} certificate(s); {}",
                plan.certificates.len(),
                if plan.problems.is_empty() {
                    "no problem found"
                } else {
                    "problems above: nothing can be imported"
                }
            );
        }
    };
    if !plan.problems.is_empty() {
        let msg = format!(
            "the easy-rsa PKI at {} has {} problem(s) (listed above); nothing was imported",
            plan.source.display(),
            plan.problems.len()
        );
        if out.json {
            // One document: the report, whose `problems` say why; the message on stderr.
            outln!("{}", report(None));
            errln!("error: {msg}");
            return Ok(EXIT_ERROR);
        }
        human(false);
        bail!(msg);
    }
    if dry_run {
        out.doc(&report(None), || human(false));
        return Ok(0);
    }
    drop(store);
    let store = open_unlocked(cli)?;
    let rep = store.import_easyrsa(&plan)?;
    out.doc(&report(Some(&rep)), || {
        human(true);
        outln!(
            "imported {} certificate(s) ({} revoked) and {} key(s) into {}; wrote CRL #{} ({} entries) to {}",
            rep.certificates,
            rep.revoked,
            rep.keys,
            cli.pki.display(),
            rep.crl.number,
            rep.crl.entries,
            store.crl_path().display()
        );
        outln!("Next: check `vpnca status` and `vpnca list`, upload the new CRL where the old one went,");
        outln!(
            "then delete or archive {} — it holds the plain-text easy-rsa keys.",
            plan.source.display()
        );
    });
    Ok(0)
}

fn print_status(rep: &vpnca::StatusReport, warn_days: u32) {
    outln!(
        "CA:   {} (until {})",
        rep.ca.as_deref().unwrap_or("none"),
        rep.ca_not_after.map(vpnca::fmt_time).unwrap_or_default()
    );
    match (rep.crl_number, rep.crl_next_update) {
        (Some(n), Some(t)) => outln!("CRL:  #{n}, nextUpdate {}", vpnca::fmt_time(t)),
        _ => outln!("CRL:  none"),
    }
    outln!(
        "certificates: {}",
        rep.counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if rep.findings.is_empty() {
        outln!("OK: nothing needs attention within {warn_days} days");
    }
    for f in &rep.findings {
        outln!("ATTENTION: {}", f.message);
    }
}

fn issue_request(
    name: &str,
    kind: CertKind,
    sans: Vec<San>,
    key: &KeyOpts,
) -> Result<IssueRequest> {
    vpnca::name::validate_name(name)?;
    Ok(IssueRequest {
        name: name.to_string(),
        kind,
        profile: key.profile.clone(),
        algorithm: algorithm(&key.algo)?,
        validity: validity(key.days, &key.ttl)?,
        sans,
    })
}

fn print_issued(out: &Out, store: &Store, r: &CertRecord) {
    out.doc(&record_json(r), || {
        outln!("Issued {} certificate {:?} (serial {}), valid until {}", r.kind.as_str(), r.name, r.serial, vpnca::fmt_time(r.not_after));
        outln!("Certificate: {}", store.issued_path(&r.name).display());
        if r.has_key {
            outln!("Its key is encrypted in the store; `vpnca export {} --out DIR --key` writes it out.", r.name);
        }
    });
}

fn crl_json(c: &vpnca::CrlInfo, path: &Path) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("path".into(), json!(path));
    }
    v
}

fn quickstart(
    cli: &Cli,
    out: &Out,
    server: &str,
    clients: &[String],
    cn: &Option<String>,
    k: KdfParams,
) -> Result<u8> {
    vpnca::name::validate_dns_name(server)?;
    for c in clients {
        vpnca::name::validate_name(c)?;
    }
    // An existing store is unlocked (one prompt); a new one asks for a confirmed passphrase.
    let store = match Store::open(&cli.pki) {
        Ok(mut s) => {
            let pass = passphrase(
                &cli.passphrase_file,
                "VPNCA_PASSPHRASE",
                false,
                "store passphrase",
            )?;
            s.unlock(&pass)?;
            s
        }
        Err(vpnca::Error::NotInitialized { .. }) => {
            let pass = passphrase(
                &cli.passphrase_file,
                "VPNCA_PASSPHRASE",
                true,
                "new store passphrase",
            )?;
            Store::init(&cli.pki, &pass, k)?
        }
        Err(e) => return Err(e.into()),
    };
    let ca = match store.ca() {
        Ok(ca) => ca,
        Err(vpnca::Error::NoCa) => store.create_root_ca(
            cn.as_deref().unwrap_or("vpnca CA"),
            KeyAlgorithm::Rsa2048,
            Validity::Default,
        )?,
        Err(e) => return Err(e.into()),
    };
    let mut issued = Vec::new();
    for (name, kind) in std::iter::once((server, CertKind::Server))
        .chain(clients.iter().map(|c| (c.as_str(), CertKind::Client)))
    {
        let r = match store.live(name)? {
            Some(r) if r.kind == kind => r,
            _ => store.issue(&IssueRequest::new(name, kind))?,
        };
        issued.push(r);
    }
    let crl = store.generate_crl(&CrlOptions::from_store(&store)?)?;
    let v = json!({"pki": cli.pki, "ca": record_json(&ca), "certificates": issued.iter().map(record_json).collect::<Vec<_>>(), "crl": crl_json(&crl, &store.crl_path())});
    out.doc(&v, || {
        let pki = cli.pki.display();
        outln!("PKI ready in {pki} (every private key is encrypted in {pki}/vpnca.db)");
        outln!("  CA:      {} -> {pki}/ca.crt", ca.name);
        for r in &issued {
            outln!("  {:<7}  {} -> {}", r.kind.as_str(), r.name, store.issued_path(&r.name).display());
        }
        outln!("  CRL:     #{} -> {pki}/crl.pem (nextUpdate {})", crl.number, vpnca::fmt_time(crl.next_update));
        outln!();
        outln!("Next steps:");
        outln!("  1. Server certificate and key for ACM:  vpnca export {server} --out ./acm --key");
        outln!("     aws acm import-certificate --certificate fileb://acm/{server}.crt --private-key fileb://acm/{server}.key --certificate-chain fileb://acm/ca.crt");
        outln!("     then delete ./acm/{server}.key");
        outln!("  2. Create the Client VPN endpoint with that certificate (mutual authentication, client root chain = the same ARN).");
        outln!("  3. Per user: vpnca export NAME --out ./NAME --key   (then build the .ovpn profile)");
        outln!("  4. Offboarding: vpnca revoke NAME, then upload {pki}/crl.pem to the endpoint.");
        outln!("  5. Monitoring: vpnca status (exit 1 when something needs attention).");
    });
    Ok(0)
}
