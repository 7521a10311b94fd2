//! easy-rsa command lines (docs/easy-rsa.md#command-table): `vpnca [EASY-RSA OPTIONS] VERB
//! ARGS…` as easy-rsa 3.2 spells them, translated into vpnca's own command line before clap
//! parses it, so that `vpnca --help`, the man pages and the option lists stay vpnca's. The
//! completions add the verbs of [`VERBS`] (src/cli/reference.rs).
//!
//! What is read, with easy-rsa's precedence: the global options before the verb (`--days=N`,
//! `--pki-dir=DIR`, `--req-cn=CN`, … in the `=` form easy-rsa takes and in the space form
//! vpnca's own options take) over `EASYRSA_*` environment variables over the `set_var` lines
//! of a vars file (vars.rs). A setting without a meaning in vpnca is named in one note; a verb
//! without one exits 2 saying what to do instead.
//!
//! The layer engages for easy-rsa's own verbs, and for the verbs vpnca shares with easy-rsa
//! (`revoke`, `renew`, `sign-req`) only when the command line has an easy-rsa option or the
//! environment an `EASYRSA_*` variable: a plain `vpnca renew NAME` never reads a `vars` file.

mod vars;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What to do with a command line.
#[derive(Debug)]
pub(super) enum Plan {
    /// Parse these arguments (the program name first).
    Run(Vec<OsString>),
    /// Nothing to run (`update-db`): exit 0.
    Done,
}

/// The result of [`translate`]: the plan, or an error message (exit 2); and the notes to
/// print to standard error either way.
#[derive(Debug)]
pub(super) struct Translation {
    pub plan: Result<Plan, String>,
    pub notes: Vec<String>,
}

/// easy-rsa verbs that are not vpnca command names or aliases, with what they do here: for
/// the completions (src/cli/reference.rs) and the reference test.
pub(super) const VERBS: &[(&str, &str)] = &[
    ("clean-all", "easy-rsa: init-pki"),
    (
        "build-serverClient-full",
        "easy-rsa: server NAME --template server-client",
    ),
    ("sign", "easy-rsa: sign-req"),
    ("revoke-issued", "easy-rsa: revoke"),
    (
        "revoke-renewed",
        "easy-rsa: revoke NAME's superseded certificates",
    ),
    ("revoke-expired", "easy-rsa: not here (revoke --serial)"),
    ("show-ca", "easy-rsa: show ca"),
    ("show-crl", "easy-rsa: list --status revoked"),
    ("show-req", "easy-rsa: not here (openssl req)"),
    ("show-expire", "easy-rsa: status --warn-days N"),
    ("show-revoke", "easy-rsa: list --status revoked"),
    ("show-renew", "easy-rsa: list --status superseded"),
    ("export-p12", "easy-rsa: export NAME --format p12"),
    (
        "export-p8",
        "easy-rsa: not here (export --format pem-encrypted)",
    ),
    ("export-p7", "easy-rsa: not here (export)"),
    ("export-p1", "easy-rsa: not here (export --key)"),
    ("update-db", "easy-rsa: not needed (exit 0)"),
    (
        "gen-req",
        "easy-rsa: not here (client, server, or openssl req + sign-req)",
    ),
    (
        "import-req",
        "easy-rsa: not here (sign-req FILE --name NAME)",
    ),
    ("set-pass", "easy-rsa: not here (passwd)"),
    ("gen-dh", "easy-rsa: not here (not needed)"),
    ("expire", "easy-rsa: not needed (renew)"),
    ("renew-ca", "easy-rsa: not here"),
    ("inline", "easy-rsa: not here (profile)"),
    ("verify-cert", "easy-rsa: not here (verify, openssl verify)"),
    ("gen-tls-crypt", "easy-rsa: not here (openvpn --genkey)"),
];

/// Where a setting came from, for notes and errors.
#[derive(Debug, Clone)]
struct Setting {
    value: String,
    from: String,
}

/// The easy-rsa global options given before the verb.
#[derive(Debug, Default)]
struct CmdLine {
    days: Option<Setting>,
    pki: Vec<Setting>,
    req_cn: Option<Setting>,
    san: Vec<Setting>,
    vars: Option<Setting>,
    passin: Option<Setting>,
    passout: Option<Setting>,
    algo: Option<Setting>,
    key_size: Option<Setting>,
    curve: Option<Setting>,
    digest: Option<Setting>,
    nopass: bool,
    silent: bool,
    /// Options accepted without a meaning here: (as written, why).
    ignored: Vec<(String, &'static str)>,
    /// Whether any easy-rsa option was given.
    any: bool,
}

/// What an easy-rsa global option is.
enum Opt {
    Value(fn(&mut CmdLine) -> &mut Option<Setting>),
    Pki,
    San,
    Batch,
    Silent,
    SilentBatch,
    Nopass,
    /// Accepted, no meaning here; `true`: takes a value.
    Ignored(bool, &'static str),
    /// Refused: what to do instead.
    Refused(&'static str),
}

fn option(name: &str) -> Option<Opt> {
    const CN_ONLY: &str = "vpnca's subjects are CN only";
    const OPENSSL: &str = "vpnca does not run OpenSSL";
    const FILES: &str = "vpnca writes every file itself, with its own modes";
    const EXTS: &str = "vpnca's templates fix the extensions (docs/profiles.md)";
    Some(match name {
        "--days" => Opt::Value(|c| &mut c.days),
        "--pki-dir" | "--pki" => Opt::Pki,
        "--req-cn" => Opt::Value(|c| &mut c.req_cn),
        "--subject-alt-name" | "--san" => Opt::San,
        "--vars" => Opt::Value(|c| &mut c.vars),
        "--passin" => Opt::Value(|c| &mut c.passin),
        "--passout" => Opt::Value(|c| &mut c.passout),
        "--use-algo" | "--algo" => Opt::Value(|c| &mut c.algo),
        "--keysize" => Opt::Value(|c| &mut c.key_size),
        "--curve" => Opt::Value(|c| &mut c.curve),
        "--digest" => Opt::Value(|c| &mut c.digest),
        "-b" | "--batch" => Opt::Batch,
        "-s" | "--silent" => Opt::Silent,
        "--sb" | "--sbatch" | "--silent-batch" => Opt::SilentBatch,
        "--nopass" | "--no-pass" => Opt::Nopass,
        "--dn-mode" | "--req-c" | "--req-st" | "--req-city" | "--req-org" | "--req-email"
        | "--req-ou" | "--req-serial" => Opt::Ignored(true, CN_ONLY),
        "--ssl-cnf" | "--ssl-conf" => Opt::Ignored(true, OPENSSL),
        "--force-safe-ssl" | "-S" | "--silent-ssl" => Opt::Ignored(false, OPENSSL),
        "--tmp-dir" | "--keep-tmp" | "--umask" => Opt::Ignored(true, FILES),
        "--noumask" | "--no-umask" | "--nolockfile" | "--no-lockfile" => Opt::Ignored(false, FILES),
        "--noinline" | "--no-inline" => Opt::Ignored(false, "vpnca writes no inline files"),
        "--ns-cert" | "--ns-comment" => Opt::Ignored(false, "vpnca writes no Netscape extensions"),
        "--copy-ext" => Opt::Ignored(false, "vpnca ignores a request's extensions"),
        "--auto-san" => Opt::Ignored(false, "vpnca adds DNS:NAME to every server certificate"),
        "--san-crit" | "--san-critical" | "--bc-crit" | "--bc-critical" | "--ku-crit"
        | "--ku-critical" | "--eku-crit" | "--eku-critical" | "--rawca" | "--raw-ca" => {
            Opt::Ignored(false, EXTS)
        }
        "--subca-len" => Opt::Ignored(true, EXTS),
        "--text" | "--notext" | "--no-text" => Opt::Ignored(false, "issued/NAME.crt is PEM only"),
        "--new-subj" | "--new-subject" => {
            Opt::Ignored(true, "vpnca names a certificate NAME or the request's CN")
        }
        "--usefn" => Opt::Ignored(true, "a .p12's friendly name is NAME"),
        "-v" | "--verbose" => Opt::Ignored(false, "no verbose mode"),
        "--force-vars" => Opt::Ignored(false, "vars files are read without a shell"),
        "--startdate" | "--enddate" => {
            Opt::Refused("vpnca counts a certificate's validity from now: give --days=N instead")
        }
        _ => return None,
    })
}

/// The `EASYRSA_*` settings vpnca maps (the others are noted as ignored).
const MAPPED: &[&str] = &[
    "EASYRSA_PKI",
    "EASYRSA_REQ_CN",
    "EASYRSA_CA_EXPIRE",
    "EASYRSA_CERT_EXPIRE",
    "EASYRSA_CRL_DAYS",
    "EASYRSA_PRE_EXPIRY_WINDOW",
    "EASYRSA_ALGO",
    "EASYRSA_KEY_SIZE",
    "EASYRSA_CURVE",
    "EASYRSA_VARS_FILE",
    "EASYRSA_SILENT",
];

/// Why an `EASYRSA_*` setting has no effect here.
fn ignored_why(name: &str) -> &'static str {
    match name {
        "EASYRSA_BATCH" => "vpnca never asks for confirmation",
        "EASYRSA_NO_PASS" => "keys are always encrypted in the store",
        "EASYRSA_DIGEST" => "vpnca chooses the signature hash for the key",
        "EASYRSA_EXTRA_EXTS" => "use --san, or a template (docs/profiles.md)",
        "EASYRSA_DN"
        | "EASYRSA_REQ_COUNTRY"
        | "EASYRSA_REQ_PROVINCE"
        | "EASYRSA_REQ_CITY"
        | "EASYRSA_REQ_ORG"
        | "EASYRSA_REQ_EMAIL"
        | "EASYRSA_REQ_OU"
        | "EASYRSA_REQ_SERIAL"
        | "EASYRSA_PRESERVE_DN" => "vpnca's subjects are CN only",
        "EASYRSA_OPENSSL" | "EASYRSA_SSL_CONF" | "EASYRSA_EXT_DIR" => "vpnca does not run OpenSSL",
        "EASYRSA" | "EASYRSA_TEMP_DIR" => "vpnca needs no easy-rsa folder",
        _ => "not an easy-rsa setting vpnca uses",
    }
}

/// easy-rsa's `show-expire` window when `--days` and `EASYRSA_PRE_EXPIRY_WINDOW` are unset.
const PRE_EXPIRY_WINDOW: &str = "90";

/// Translates an easy-rsa command line. `env` holds the environment's `EASYRSA_*` variables
/// and `VPNCA_PKI`; `pwd` is the working directory (`$PWD` in a vars file, `./vars`).
pub(super) fn translate(argv: Vec<OsString>, env: &[(String, String)], pwd: &Path) -> Translation {
    let mut notes = Vec::new();
    let plan = plan(argv, env, pwd, &mut notes);
    Translation { plan, notes }
}

fn plan(
    argv: Vec<OsString>,
    env: &[(String, String)],
    pwd: &Path,
    notes: &mut Vec<String>,
) -> Result<Plan, String> {
    let mut cmd = CmdLine::default();
    // vpnca's own global options before the verb, kept as written.
    let mut native: Vec<OsString> = Vec::new();
    let mut i = 1;
    while let Some(a) = argv.get(i).and_then(|a| a.to_str()) {
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (a, None),
        };
        if name == "--json" && inline.is_none() {
            native.push(argv[i].clone());
            i += 1;
            continue;
        }
        if name == "--passphrase-file" || name == "--checkpoint" {
            native.push(argv[i].clone());
            if inline.is_none() {
                if let Some(v) = argv.get(i + 1) {
                    native.push(v.clone());
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        let Some(opt) = option(name) else {
            let clap_word = match name {
                "-h" | "--help" | "--usage" => "--help",
                "-V" | "--version" => "--version",
                _ if cmd.any => return Err(format!("Unknown option '{name}'")),
                // An unknown option, or one of vpnca's: clap's to answer.
                _ => return Ok(Plan::Run(argv)),
            };
            return Ok(Plan::Run(vec![argv[0].clone(), clap_word.into()]));
        };
        let takes_value = matches!(
            opt,
            Opt::Value(_) | Opt::Pki | Opt::San | Opt::Ignored(true, _)
        );
        let value = if takes_value {
            match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    let v = argv.get(i).and_then(|v| v.to_str()).map(str::to_owned);
                    Some(v.ok_or_else(|| format!("Missing value to option: {name}"))?)
                }
            }
        } else {
            None
        };
        i += 1;
        if name != "--pki" {
            cmd.any = true;
        }
        let setting = |v: String| Setting {
            from: format!("{name}={v}"),
            value: v,
        };
        match opt {
            Opt::Value(field) => {
                let v = value.unwrap_or_default();
                if v.is_empty() {
                    return Err(format!("Missing value to option: {name}"));
                }
                *field(&mut cmd) = Some(setting(v));
            }
            Opt::Pki => cmd.pki.push(setting(value.unwrap_or_default())),
            Opt::San => cmd.san.push(setting(value.unwrap_or_default())),
            Opt::Batch => cmd
                .ignored
                .push((name.to_owned(), ignored_why("EASYRSA_BATCH"))),
            Opt::Silent => cmd.silent = true,
            Opt::SilentBatch => {
                cmd.silent = true;
                cmd.ignored
                    .push((name.to_owned(), ignored_why("EASYRSA_BATCH")));
            }
            Opt::Nopass => cmd.nopass = true,
            Opt::Ignored(_, why) => cmd.ignored.push((a.to_owned(), why)),
            Opt::Refused(what) => return Err(format!("{name}: {what}")),
        }
    }
    let Some(verb) = argv.get(i).and_then(|v| v.to_str()).map(str::to_owned) else {
        if cmd.any {
            return Err(
                "easy-rsa options need a command after them (e.g. build-client-full NAME)".into(),
            );
        }
        return Ok(Plan::Run(argv));
    };
    let rest: Vec<OsString> = argv[i + 1..].to_vec();
    let shared = matches!(verb.as_str(), "revoke" | "renew" | "sign-req");
    let env_context = env.iter().any(|(k, _)| k.starts_with("EASYRSA"));
    let Some(kind) = verb_kind(&verb) else {
        if cmd.any {
            return Err(format!(
                "easy-rsa options go with easy-rsa commands; `vpnca {verb}` takes vpnca's own (see `vpnca {verb} --help`)"
            ));
        }
        return Ok(Plan::Run(argv));
    };
    if shared && !cmd.any && !env_context {
        return Ok(Plan::Run(argv));
    }
    if let VerbKind::Refused(what) = kind {
        return Err(format!(
            "easy-rsa's `{verb}` has no equivalent in vpnca: {what}"
        ));
    }

    let s = Settings::resolve(&cmd, env, pwd, !matches!(kind, VerbKind::Init), notes)?;
    let mut out: Vec<OsString> = vec![argv[0].clone()];
    out.extend(native.iter().cloned());
    if let Some(p) = &s.pki {
        out.push("--pki".into());
        out.push(p.value.clone().into());
    }
    if let Some(f) = s.passphrase_file(&cmd, &verb)? {
        if native.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a.starts_with("--passphrase-file"))
        }) {
            return Err(
                "give the store passphrase once: --passphrase-file or --passin=file:".into(),
            );
        }
        out.push("--passphrase-file".into());
        out.push(f.into());
    }
    let words: Vec<String> = rest
        .iter()
        .filter_map(|a| a.to_str().map(str::to_owned))
        .collect();
    let has = |flag: &str| {
        words
            .iter()
            .any(|w| *w == flag || w.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    };
    let push = |out: &mut Vec<OsString>, flag: &str, v: Option<String>| {
        if let Some(v) = v
            && !has(flag)
        {
            out.push(flag.into());
            out.push(v.into());
        }
    };
    let sans = |out: &mut Vec<OsString>| {
        for v in s.sans(&cmd) {
            out.push("--san".into());
            out.push(v.into());
        }
    };
    match kind {
        VerbKind::Init => {
            out.push("init-pki".into());
            out.extend(rest);
        }
        VerbKind::BuildCa => {
            if words.iter().any(|w| w == "subca") {
                return Err(
                    "build-ca subca: make a sub-CA with `vpnca ca --sub-ca --csr-out FILE`".into(),
                );
            }
            out.push("build-ca".into());
            out.extend(rest);
            push(
                &mut out,
                "--cn",
                s.get(&cmd.req_cn, "EASYRSA_REQ_CN").map(|v| v.value),
            );
            push(&mut out, "--days", s.days(&cmd, "EASYRSA_CA_EXPIRE")?);
            push(&mut out, "--algo", s.algorithm(&cmd)?);
        }
        VerbKind::BuildFull(target, template) => {
            out.push(target.into());
            out.extend(rest);
            if let Some(t) = template {
                push(&mut out, "--template", Some(t.into()));
            }
            push(&mut out, "--days", s.days(&cmd, "EASYRSA_CERT_EXPIRE")?);
            push(&mut out, "--algo", s.algorithm(&cmd)?);
            sans(&mut out);
        }
        VerbKind::SignReq => {
            let (Some(ty), Some(name)) = (words.first(), words.get(1)) else {
                return Err("sign-req takes TYPE NAME (client, server or serverClient)".into());
            };
            let (ty, template) = match ty.as_str() {
                "client" | "server" => (ty.as_str(), None),
                "serverClient" => ("server", Some("server-client")),
                "ca" => return Err("vpnca does not sign sub-CAs; a sub-CA of vpnca's root is not supported (see `vpnca ca --sub-ca` for the other way round)".into()),
                other => return Err(format!("sign-req {other}: vpnca signs client, server and serverClient requests")),
            };
            out.extend(["sign-req".into(), ty.into(), name.into()]);
            for (k, w) in rest.iter().enumerate().skip(2) {
                match w.to_str() {
                    Some("nopass") => {}
                    Some(p) if p.starts_with("preserve") || p.starts_with("newsubj") => {
                        notes.push(format!(
                            "easy-rsa's `{p}` has no effect: vpnca's subjects are CN only"
                        ));
                    }
                    _ => out.push(rest[k].clone()),
                }
            }
            if let Some(t) = template {
                push(&mut out, "--template", Some(t.into()));
            }
            push(&mut out, "--days", s.days(&cmd, "EASYRSA_CERT_EXPIRE")?);
            sans(&mut out);
        }
        VerbKind::Revoke { renewed } => {
            out.push("revoke".into());
            out.extend(rest);
            if renewed {
                out.push("--renewed-only".into());
            }
        }
        VerbKind::Renew => {
            out.push("renew".into());
            out.extend(rest);
            push(&mut out, "--days", s.days(&cmd, "EASYRSA_CERT_EXPIRE")?);
            push(&mut out, "--algo", s.algorithm(&cmd)?);
        }
        VerbKind::GenCrl => {
            out.push("gen-crl".into());
            out.extend(rest);
            push(&mut out, "--days", s.days(&cmd, "EASYRSA_CRL_DAYS")?);
        }
        VerbKind::ShowCert => {
            out.push("show-cert".into());
            out.extend(rest.into_iter().filter(|w| w != "full"));
        }
        VerbKind::ShowCa => {
            out.extend(["show".into(), "ca".into()]);
            out.extend(rest.into_iter().filter(|w| w != "full"));
        }
        VerbKind::List(status) => {
            if verb == "show-crl" {
                notes.push(format!(
                    "the CRL itself is {}/crl.pem (`openssl crl -in {0}/crl.pem -noout -text` prints it); its number and nextUpdate: `vpnca status`",
                    s.pki_dir().display()
                ));
            }
            out.extend(["list".into(), "--status".into(), status.into()]);
            out.extend(rest);
        }
        VerbKind::ShowExpire => {
            let days = s
                .days(&cmd, "EASYRSA_PRE_EXPIRY_WINDOW")?
                .unwrap_or_else(|| PRE_EXPIRY_WINDOW.to_owned());
            out.extend(["status".into(), "--warn-days".into(), days.into()]);
            out.extend(rest);
        }
        VerbKind::ExportP12 => {
            let Some(name) = rest.first().cloned() else {
                return Err("export-p12 takes NAME".into());
            };
            out.extend(["export".into(), name, "--format".into(), "p12".into()]);
            for w in &rest[1..] {
                match w.to_str() {
                    Some("nokey") => return Err(format!(
                        "export-p12 NAME nokey: a certificate without its key is `vpnca export NAME --out {}` (PEM)",
                        s.pki_dir().join("issued").display()
                    )),
                    Some("nopass") => notes.push("export-p12 nopass: vpnca encrypts every .p12 (the passphrase from --passout=file:FILE, a prompt, or generated and printed once)".into()),
                    Some("noca" | "nofn" | "usefn" | "legacy") => notes.push(format!(
                        "export-p12 {}: no effect (the .p12 holds the CA chain; its friendly name is NAME; AES-256-CBC)",
                        w.to_string_lossy()
                    )),
                    _ => out.push(w.clone()),
                }
            }
            push(
                &mut out,
                "--out",
                Some(s.pki_dir().join("private").display().to_string()),
            );
            if let Some(p) = &cmd.passout
                && !has("--key-passphrase-file")
            {
                out.push("--key-passphrase-file".into());
                out.push(file_form(p)?.into());
            }
        }
        VerbKind::UpdateDb => {
            notes.push(
                "update-db is not needed: vpnca computes expiry whenever it reads the store".into(),
            );
            s.finish(&cmd, notes);
            return Ok(Plan::Done);
        }
        VerbKind::Refused(_) => unreachable!("handled above"),
    }
    s.finish(&cmd, notes);
    Ok(Plan::Run(out))
}

/// `file:PATH` of `--passin`/`--passout`: the only form vpnca takes (the others put a
/// passphrase on the command line or in the environment of every child).
fn file_form(s: &Setting) -> Result<String, String> {
    match s.value.strip_prefix("file:") {
        Some(p) if !p.is_empty() => Ok(p.to_owned()),
        _ => Err(format!(
            "{}: vpnca takes only file:PATH here; or set $VPNCA_PASSPHRASE (the store passphrase)",
            s.from
        )),
    }
}

enum VerbKind {
    Init,
    BuildCa,
    /// vpnca's verb, and a template.
    BuildFull(&'static str, Option<&'static str>),
    SignReq,
    Revoke {
        renewed: bool,
    },
    Renew,
    GenCrl,
    ShowCert,
    ShowCa,
    /// `list --status STATUS`.
    List(&'static str),
    ShowExpire,
    ExportP12,
    UpdateDb,
    /// No equivalent: what to do instead.
    Refused(&'static str),
}

fn verb_kind(verb: &str) -> Option<VerbKind> {
    use VerbKind::*;
    Some(match verb {
        "init-pki" | "clean-all" => Init,
        "build-ca" => BuildCa,
        "build-server-full" => BuildFull("build-server-full", None),
        "build-client-full" => BuildFull("build-client-full", None),
        "build-serverClient-full" => BuildFull("server", Some("server-client")),
        "sign-req" | "sign" => SignReq,
        "revoke" | "revoke-issued" => Revoke { renewed: false },
        "revoke-renewed" => Revoke { renewed: true },
        "renew" => Renew,
        "gen-crl" => GenCrl,
        "show-cert" => ShowCert,
        "show-ca" => ShowCa,
        "show-crl" | "show-revoke" => List("revoked"),
        "show-renew" => List("superseded"),
        "show-expire" => ShowExpire,
        "export-p12" => ExportP12,
        "update-db" => UpdateDb,
        "set-pass" | "set-rsa-pass" | "set-ec-pass" | "set-ed-pass" | "set-ca-pass" => {
            Refused("one passphrase protects every key in the store: change it with `vpnca passwd`")
        }
        "gen-dh" => Refused(
            "AWS Client VPN needs no DH parameters; for OpenVPN write `dh none` (ECDHE) in the server configuration, or make them with `openssl dhparam -out dh.pem 2048`",
        ),
        "gen-req" => Refused(
            "vpnca makes the key itself: `vpnca client NAME` or `vpnca server NAME`; for a key made elsewhere, `openssl req -new -newkey rsa:2048 -keyout NAME.key -out NAME.req`, then `vpnca sign-req NAME.req --type client`",
        ),
        "import-req" => Refused(
            "vpnca signs a request file where it is: `vpnca sign-req FILE --type client --name NAME` (or copy it to <pki>/reqs/NAME.req for `sign-req client NAME`)",
        ),
        "revoke-expired" => Refused(
            "revoke one certificate by serial: `vpnca revoke --serial HEX` (`vpnca list` shows the serials)",
        ),
        "expire" => Refused(
            "not needed: `vpnca renew NAME` issues the new certificate and marks the old one superseded",
        ),
        "renew-ca" => {
            Refused("vpnca cannot renew its CA in place; `vpnca status` warns before it expires")
        }
        "inline" => Refused(
            "`vpnca profile NAME --config endpoint.ovpn` (or --remote HOST) writes the .ovpn with the certificate and key inline",
        ),
        "export-p8" => Refused(
            "`vpnca export NAME --out DIR --format pem-encrypted` writes an encrypted PKCS#8 key",
        ),
        "export-p7" => {
            Refused("`vpnca export NAME --out DIR` writes the certificate and the CA chain (PEM)")
        }
        "export-p1" => Refused("`vpnca export NAME --out DIR --key` writes the key (PKCS#8 PEM)"),
        "show-req" => {
            Refused("`openssl req -in FILE -noout -text` shows a request; vpnca keeps none")
        }
        "verify-cert" => Refused(
            "`vpnca show NAME` shows a certificate's status; `vpnca verify` checks the whole store; `openssl verify -CAfile pki/ca.crt pki/issued/NAME.crt` checks one",
        ),
        "import-ca" => Refused(
            "`vpnca import-easyrsa PATH` moves a whole easy-rsa PKI into a new store; `vpnca ca --sub-ca` makes a CA signed by another",
        ),
        "self-sign-server" | "self-sign-client" => Refused(
            "vpnca issues certificates from its CA: `vpnca server NAME`, `vpnca client NAME`",
        ),
        "import-tls-key" | "gen-tls-auth" | "gen-tls-crypt" | "gen-tls-cryptv2" => Refused(
            "AWS Client VPN uses no TLS key; for OpenVPN, `openvpn --genkey secret ta.key` (or `tls-crypt-v2-server`)",
        ),
        "serial" | "check-serial" => {
            Refused("vpnca's serials are random 128-bit numbers, unique in the store")
        }
        "display-dn" | "show-eku" | "x509-eku" => {
            Refused("`openssl x509 -in FILE -noout -subject -ext extendedKeyUsage`")
        }
        "rand" | "random" => Refused("`openssl rand -hex N`"),
        "show-host" | "write" => Refused("vpnca has no easy-rsa folder or support files"),
        v if v.starts_with("gen-tls-") => {
            Refused("AWS Client VPN uses no TLS key; for OpenVPN, `openvpn --genkey secret ta.key`")
        }
        _ => return None,
    })
}

/// The settings of one command line: options, environment, vars file.
struct Settings<'a> {
    env: &'a [(String, String)],
    vars: Option<vars::VarsFile>,
    pki: Option<Setting>,
    /// The store folder when nothing sets it: $VPNCA_PKI, else ./pki.
    default_pki: PathBuf,
}

impl<'a> Settings<'a> {
    fn resolve(
        cmd: &CmdLine,
        env: &'a [(String, String)],
        pwd: &Path,
        read_vars: bool,
        notes: &mut Vec<String>,
    ) -> Result<Settings<'a>, String> {
        let env_get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let same = |a: &Setting, b: &Setting| a.value == b.value;
        // The store: command line (all alike) > $VPNCA_PKI / $EASYRSA_PKI (alike) > vars.
        let mut pki = cmd.pki.first().cloned();
        if let Some(p) = &pki
            && let Some(q) = cmd.pki.iter().find(|q| !same(p, q))
        {
            return Err(format!("two store folders: {} and {}", p.from, q.from));
        }
        let vpnca_env = env_get("VPNCA_PKI").map(|v| Setting {
            value: v,
            from: "$VPNCA_PKI".into(),
        });
        let easy_env = env_get("EASYRSA_PKI").map(|v| Setting {
            value: v,
            from: "$EASYRSA_PKI".into(),
        });
        if pki.is_none() {
            if let (Some(a), Some(b)) = (&vpnca_env, &easy_env)
                && !same(a, b)
            {
                return Err(format!(
                    "$VPNCA_PKI ({}) and $EASYRSA_PKI ({}) name different store folders; unset one",
                    a.value, b.value
                ));
            }
            pki = easy_env.clone();
        }
        let explicit = pki.is_some() || vpnca_env.is_some();
        let default_pki = vpnca_env
            .as_ref()
            .map_or_else(|| PathBuf::from("./pki"), |v| v.value.clone().into());
        let mut vars = None;
        if read_vars {
            let given = cmd.vars.clone().or_else(|| {
                env_get("EASYRSA_VARS_FILE").map(|v| Setting {
                    value: v,
                    from: "$EASYRSA_VARS_FILE".into(),
                })
            });
            let path = match given {
                Some(g) => {
                    let p = PathBuf::from(&g.value);
                    if !p.is_file() {
                        return Err(format!("Missing vars file: {} ({})", p.display(), g.from));
                    }
                    Some(p)
                }
                None => {
                    // easy-rsa's search (select_vars): the first that exists.
                    let store = pki
                        .as_ref()
                        .map_or_else(|| default_pki.clone(), |p| p.value.clone().into());
                    let mut c: Vec<PathBuf> = Vec::new();
                    if explicit {
                        c.push(store.join("vars"));
                    }
                    if let Some(e) = env_get("EASYRSA") {
                        c.push(Path::new(&e).join("vars"));
                    }
                    let in_store = if !explicit && env_get("EASYRSA").is_none() {
                        Some(pwd.join("pki/vars"))
                    } else {
                        None
                    };
                    c.extend(in_store.clone());
                    c.push(pwd.join("vars"));
                    let found = c.into_iter().find(|p| p.is_file());
                    // The store folder is untrusted storage (docs/security.md): a vars file
                    // found there is not used unless it is named. Someone who can write the
                    // store could otherwise plant validity, key type or CRL settings.
                    if let Some(f) = &found
                        && (explicit && *f == store.join("vars") || in_store.as_ref() == Some(f))
                    {
                        return Err(format!(
                            "{} is inside the store folder, which vpnca treats as untrusted storage (whoever can write the store could plant settings there): vpnca does not read it unless it is named; move it next to the store (./vars), or name it with --vars={} or $EASYRSA_VARS_FILE",
                            f.display(),
                            f.display()
                        ));
                    }
                    found
                }
            };
            if let Some(p) = path {
                let v = vars::read(&p, pwd).map_err(|e| format!("{e:#}"))?;
                notes.push(format!(
                    "reading easy-rsa settings from vars file {}",
                    p.display()
                ));
                vars = Some(v);
            }
        }
        if pki.is_none()
            && vpnca_env.is_none()
            && let Some(v) = vars.as_ref().and_then(|v| v.get("EASYRSA_PKI"))
        {
            pki = Some(Setting {
                value: v.value.clone(),
                from: format!("EASYRSA_PKI (vars line {})", v.line),
            });
        }
        Ok(Settings {
            env,
            vars,
            pki,
            default_pki,
        })
    }

    /// The store folder the command will use.
    fn pki_dir(&self) -> PathBuf {
        self.pki
            .as_ref()
            .map_or_else(|| self.default_pki.clone(), |p| PathBuf::from(&p.value))
    }

    /// `cmdline`, else `$NAME`, else the vars file's NAME.
    fn get(&self, cmdline: &Option<Setting>, name: &str) -> Option<Setting> {
        if let Some(c) = cmdline {
            return Some(c.clone());
        }
        if let Some((_, v)) = self.env.iter().find(|(n, _)| n == name) {
            return Some(Setting {
                value: v.clone(),
                from: format!("${name}"),
            });
        }
        let v = self.vars.as_ref()?.get(name)?;
        Some(Setting {
            value: v.value.clone(),
            from: format!("{name} (vars line {})", v.line),
        })
    }

    /// Days from `--days=N`, else the setting `name`; checked as easy-rsa does (digits).
    fn days(&self, cmd: &CmdLine, name: &str) -> Result<Option<String>, String> {
        let Some(s) = self.get(&cmd.days, name) else {
            return Ok(None);
        };
        match s.value.parse::<u32>() {
            Ok(_) if s.value.chars().all(|c| c.is_ascii_digit()) => Ok(Some(s.value)),
            _ => Err(format!("{}: a number of days expected", s.from)),
        }
    }

    /// vpnca's `--algo` from EASYRSA_ALGO, EASYRSA_KEY_SIZE and EASYRSA_CURVE (easy-rsa's
    /// defaults for what is unset); None when none is set.
    fn algorithm(&self, cmd: &CmdLine) -> Result<Option<String>, String> {
        let algo = self.get(&cmd.algo, "EASYRSA_ALGO");
        let size = self.get(&cmd.key_size, "EASYRSA_KEY_SIZE");
        let curve = self.get(&cmd.curve, "EASYRSA_CURVE");
        if algo.is_none() && size.is_none() && curve.is_none() {
            return Ok(None);
        }
        // As easy-rsa's --curve: a curve alone means ec (or ed for ed*).
        let a = match (&algo, &curve) {
            (Some(a), _) => a.value.clone(),
            (None, Some(c)) if c.value.starts_with("ed") => "ed".into(),
            (None, Some(_)) => "ec".into(),
            (None, None) => "rsa".into(),
        };
        let from = |s: &Option<Setting>| {
            s.as_ref()
                .map_or(String::new(), |s| format!(" ({})", s.from))
        };
        let v = match a.as_str() {
            "rsa" => {
                if let Some(c) = &curve {
                    return Err(format!("{}: a curve cannot be used with RSA keys", c.from));
                }
                match size.as_ref().map_or("2048", |s| s.value.as_str()) {
                    b @ ("2048" | "3072" | "4096") => format!("rsa{b}"),
                    b => {
                        return Err(format!(
                            "RSA key size {b}{}: vpnca makes 2048, 3072 or 4096-bit keys",
                            from(&size)
                        ));
                    }
                }
            }
            "ec" => match curve.as_ref().map_or("secp384r1", |c| c.value.as_str()) {
                "prime256v1" | "secp256r1" | "P-256" => "p256".into(),
                "secp384r1" | "P-384" => "p384".into(),
                c => {
                    return Err(format!(
                        "curve {c}{}: vpnca makes prime256v1 and secp384r1 keys",
                        from(&curve)
                    ));
                }
            },
            "ed" => match curve.as_ref().map_or("ed25519", |c| c.value.as_str()) {
                "ed25519" => "ed25519".into(),
                c => {
                    return Err(format!(
                        "curve {c}{}: vpnca makes ed25519 keys",
                        from(&curve)
                    ));
                }
            },
            other => {
                return Err(format!(
                    "algorithm {other}{}: must be rsa, ec or ed",
                    from(&algo)
                ));
            }
        };
        Ok(Some(v))
    }

    /// The SANs of `--subject-alt-name=` (repeatable, each comma-separated).
    fn sans(&self, cmd: &CmdLine) -> Vec<String> {
        cmd.san
            .iter()
            .flat_map(|s| s.value.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The store passphrase file from `--passin=file:` (or `--passout=file:` on commands
    /// that make the store's first key, where easy-rsa would ask for a new passphrase).
    fn passphrase_file(&self, cmd: &CmdLine, verb: &str) -> Result<Option<String>, String> {
        if let Some(p) = &cmd.passin {
            return file_form(p).map(Some);
        }
        match &cmd.passout {
            Some(p) if matches!(verb, "build-ca" | "init-pki" | "clean-all") => {
                file_form(p).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The note naming what was accepted without a meaning here.
    fn finish(&self, cmd: &CmdLine, notes: &mut Vec<String>) {
        let mut ignored: Vec<String> = cmd
            .ignored
            .iter()
            .map(|(o, why)| format!("{o} ({why})"))
            .collect();
        if cmd.nopass {
            ignored.push(format!("--nopass ({})", ignored_why("EASYRSA_NO_PASS")));
        }
        if let Some(d) = &cmd.digest
            && d.value != "sha256"
        {
            ignored.push(format!("{} ({})", d.from, ignored_why("EASYRSA_DIGEST")));
        }
        let mut names: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("EASYRSA"))
            .map(|(k, _)| (k.clone(), format!("${k}")))
            .collect();
        if let Some(v) = &self.vars {
            for l in &v.vars {
                if !names.iter().any(|(k, _)| *k == l.name) {
                    names.push((l.name.clone(), format!("{} (vars line {})", l.name, l.line)));
                }
            }
        }
        for (name, from) in names {
            if MAPPED.contains(&name.as_str()) {
                continue;
            }
            if name == "EASYRSA_DIGEST"
                && self
                    .get(&cmd.digest, "EASYRSA_DIGEST")
                    .is_some_and(|d| d.value == "sha256")
            {
                continue;
            }
            ignored.push(format!("{from} ({})", ignored_why(&name)));
        }
        if !ignored.is_empty() {
            notes.push(format!(
                "easy-rsa settings without effect in vpnca: {}",
                ignored.join("; ")
            ));
        }
        let silent = cmd.silent
            || self
                .get(&None, "EASYRSA_SILENT")
                .is_some_and(|s| !s.value.is_empty());
        if silent {
            notes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> (Result<Vec<String>, String>, Vec<String>) {
        let mut argv: Vec<OsString> = vec!["vpnca".into()];
        argv.extend(args.iter().map(OsString::from));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        let dir = tempfile_dir();
        let t = translate(argv, &env, &dir);
        let plan = t.plan.map(|p| match p {
            Plan::Run(a) => a[1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            Plan::Done => vec!["<done>".to_owned()],
        });
        (plan, t.notes)
    }

    /// A directory with no vars file.
    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join("vpnca-easyrsa-compat-no-vars")
    }

    fn args(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        run(args, env).0.expect("translates")
    }

    #[test]
    fn vpnca_command_lines_pass_unchanged() {
        for a in [
            &["client", "alice", "--days", "3"][..],
            &["--pki", "x", "renew", "bob"],
            &["revoke", "alice", "keyCompromise"],
            &["--help"],
            &[],
        ] {
            assert_eq!(args(a, &[]), a.to_vec());
        }
    }

    #[test]
    fn global_options_in_both_forms() {
        for a in [
            &[
                "--batch",
                "--days=30",
                "--pki-dir=/p",
                "build-client-full",
                "alice",
                "nopass",
            ][..],
            &[
                "--batch",
                "--days",
                "30",
                "--pki-dir",
                "/p",
                "build-client-full",
                "alice",
                "nopass",
            ],
        ] {
            assert_eq!(
                args(a, &[]),
                [
                    "--pki",
                    "/p",
                    "build-client-full",
                    "alice",
                    "nopass",
                    "--days",
                    "30"
                ]
            );
        }
        assert_eq!(
            args(
                &[
                    "--req-cn=Corp CA",
                    "--use-algo=ec",
                    "--curve=prime256v1",
                    "build-ca",
                    "nopass"
                ],
                &[]
            ),
            ["build-ca", "nopass", "--cn", "Corp CA", "--algo", "p256"]
        );
        assert_eq!(
            args(
                &[
                    "--subject-alt-name=DNS:a.example,IP:10.0.0.1",
                    "build-server-full",
                    "vpn.example"
                ],
                &[]
            ),
            [
                "build-server-full",
                "vpn.example",
                "--san",
                "DNS:a.example",
                "--san",
                "IP:10.0.0.1"
            ]
        );
    }

    #[test]
    fn precedence_command_line_over_environment() {
        let env = [("EASYRSA_CERT_EXPIRE", "40"), ("EASYRSA_CRL_DAYS", "9")];
        assert_eq!(
            args(&["build-client-full", "a"], &env),
            ["build-client-full", "a", "--days", "40"]
        );
        assert_eq!(
            args(&["--days=5", "build-client-full", "a"], &env),
            ["build-client-full", "a", "--days", "5"]
        );
        assert_eq!(args(&["gen-crl"], &env), ["gen-crl", "--days", "9"]);
        // vpnca's own flag after the verb wins.
        assert_eq!(
            args(&["build-client-full", "a", "--days", "7"], &env),
            ["build-client-full", "a", "--days", "7"]
        );
    }

    #[test]
    fn shared_verbs_engage_only_in_easy_rsa_context() {
        assert_eq!(args(&["renew", "bob"], &[]), ["renew", "bob"]);
        assert_eq!(
            args(&["renew", "bob"], &[("EASYRSA_CERT_EXPIRE", "30")]),
            ["renew", "bob", "--days", "30"]
        );
        assert_eq!(
            args(&["--batch", "revoke-renewed", "bob", "superseded"], &[]),
            ["revoke", "bob", "superseded", "--renewed-only"]
        );
    }

    #[test]
    fn verbs_without_a_meaning_say_what_to_do() {
        for (verb, want) in [
            ("set-pass", "vpnca passwd"),
            ("gen-dh", "dh none"),
            ("gen-req", "vpnca client NAME"),
            ("import-req", "sign-req FILE"),
        ] {
            let e = run(&[verb, "x"], &[]).0.expect_err("refused");
            assert!(e.contains(want), "{verb}: {e}");
        }
        let (p, notes) = run(&["update-db"], &[]);
        assert_eq!(p.expect("ok"), ["<done>"]);
        assert!(notes[0].contains("not needed"), "{notes:?}");
    }

    #[test]
    fn ignored_settings_are_noted_once_and_refusals_are_errors() {
        let (p, notes) = run(
            &[
                "--batch",
                "--nopass",
                "--req-org=X",
                "build-client-full",
                "a",
            ],
            &[("EASYRSA_DN", "org")],
        );
        assert_eq!(p.expect("ok"), ["build-client-full", "a"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        for w in ["--batch", "--nopass", "--req-org=X", "$EASYRSA_DN"] {
            assert!(notes[0].contains(w), "{w}: {notes:?}");
        }
        assert!(
            run(&["-s", "--batch", "build-client-full", "a"], &[])
                .1
                .is_empty()
        );
        for a in [
            &["--enddate=20300101000000Z", "build-client-full", "a"][..],
            &["--days=x", "build-client-full", "a"],
            &["--keysize=1024", "build-client-full", "a"],
            &["--passin=pass:secret", "build-client-full", "a"],
            &["--days"],
            &["--batch", "client", "a"],
        ] {
            assert!(run(a, &[]).0.is_err(), "{a:?}");
        }
    }

    #[test]
    fn passphrase_files_and_export_p12() {
        assert_eq!(
            args(
                &[
                    "--passin=file:/s/pass",
                    "--passout=file:/s/p12",
                    "export-p12",
                    "bob",
                    "nopass"
                ],
                &[("EASYRSA_PKI", "/p")]
            ),
            [
                "--pki",
                "/p",
                "--passphrase-file",
                "/s/pass",
                "export",
                "bob",
                "--format",
                "p12",
                "--out",
                "/p/private",
                "--key-passphrase-file",
                "/s/p12"
            ]
        );
    }
}
